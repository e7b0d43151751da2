"""NATS consumer of CampaignSendRequested: one fan-out per request, resumable on redelivery."""

from __future__ import annotations

import logging

import nats.errors
from opentelemetry import trace

from mailstify_contracts import CampaignSendRequested
from mailstify_messaging import BatchHandler, Delivery
from mailstify_servicekit import ServiceError

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
            try:
                await dependencies.fanouts.fan_out(request, _keep_alive(delivery))
            except ServiceError as exc:
                # The audience service is down or erring: progress so far is checkpointed; try later.
                log.warning("fan-out of campaign %s interrupted: %s", request.campaign_id, exc.detail)
                delivery.retry()

    return handle
