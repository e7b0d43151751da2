"""NATS consumers: CampaignSendRequested (one fan-out per request, resumable on redelivery), and the
sends to named recipients (CampaignTestSendRequested, CampaignRecipientsRequeued)."""

from __future__ import annotations

import logging

import nats.errors
from opentelemetry import trace

from mailstify_contracts import CampaignRecipientsRequeued, CampaignSendRequested, CampaignTestSendRequested
from mailstify_messaging import BatchHandler, Delivery

from ..service_layer.dependencies import DispatcherDependencies
from ..service_layer.handlers import Progress

log = logging.getLogger(__name__)


def _keep_alive(delivery: Delivery) -> Progress:
    async def progress() -> None:
        try:
            # Resets the ack deadline, so a fan-out that takes longer than ack_wait is not redelivered.
            await delivery.msg.in_progress()
        except nats.errors.Error as exc:
            log.warning("could not extend the ack deadline of a send request: %s", exc)

    return progress


def send_requested_handler(dependencies: DispatcherDependencies) -> BatchHandler:
    async def handle(deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            request = delivery.event
            if not isinstance(request, CampaignSendRequested):
                continue
            trace.get_current_span().set_attribute("campaign.id", request.campaign_id)
            # Progress so far is checkpointed: a retry resumes there. The consumer never runs out of
            # deliveries (max_deliver -1); the dispatcher decides when to give up (FanoutFailed).
            if not await dependencies.fanouts.attempt(request, delivery.attempt, _keep_alive(delivery)):
                delivery.retry()

    return handle


def named_sends_handler(dependencies: DispatcherDependencies) -> BatchHandler:
    async def handle(deliveries: list[Delivery]) -> None:
        # One request at a time: a refused publish raises, and the rest of the batch comes back with it
        # (the requests already published are published again under the same msg ids: dropped).
        for delivery in deliveries:
            request = delivery.event
            if not isinstance(request, (CampaignTestSendRequested, CampaignRecipientsRequeued)):
                continue
            trace.get_current_span().set_attribute("campaign.id", request.campaign_id)
            if isinstance(request, CampaignTestSendRequested):
                await dependencies.named_sends.test_send(request)
            else:
                await dependencies.named_sends.requeue(request)

    return handle
