"""NATS consumer of CampaignSendRequested: one fan-out per request, resumable on redelivery."""

from __future__ import annotations

import logging

import nats.errors
from opentelemetry import trace

from mailstify_contracts import CampaignSendRequested
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
