"""NATS consumers: CampaignSendRequested (one fan-out per request, resumable on redelivery), and the
sends to named recipients (CampaignTestSendRequested, CampaignRecipientsRequeued)."""

from __future__ import annotations

from opentelemetry import trace

from mailstify_contracts import CampaignRecipientsRequeued, CampaignSendRequested, CampaignTestSendRequested
from mailstify_messaging import BatchHandler, Delivery, kept_in_progress

from ..service_layer.dependencies import DispatcherDependencies


def send_requested_handler(dependencies: DispatcherDependencies, heartbeat_seconds: float) -> BatchHandler:
    async def handle(deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            request = delivery.event
            if not isinstance(request, CampaignSendRequested):
                continue
            trace.get_current_span().set_attribute("campaign.id", request.campaign_id)
            # Progress so far is checkpointed: a retry resumes there. The consumer never runs out of
            # deliveries (max_deliver -1); the dispatcher decides when to give up (FanoutFailed).
            async with kept_in_progress([delivery], every=heartbeat_seconds):
                settled = await dependencies.fanouts.attempt(request, delivery.attempt)
            if not settled:
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
