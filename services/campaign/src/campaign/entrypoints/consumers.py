"""NATS consumers: translate events into service-layer calls. Redelivery is safe: the handlers are
idempotent (first total wins; the result ledger counts each recipient once)."""

from __future__ import annotations

from mailstify_contracts import DeliveryFailed, DeliverySucceeded, FanoutCompleted
from mailstify_messaging import BatchHandler, Delivery

from ..domain.model import Outcome
from ..service_layer.dependencies import CampaignDependencies
from ..service_layer.handlers import outcomes


def fanout_ended_handler(dependencies: CampaignDependencies) -> BatchHandler:
    async def handle(deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            event = delivery.event
            if isinstance(event, FanoutCompleted):
                await outcomes.record_fanout_completed(
                    dependencies.uow(), event.account_id, event.campaign_id, event.total
                )

    return handle


def outcome_of(event: DeliverySucceeded | DeliveryFailed) -> Outcome:
    if isinstance(event, DeliverySucceeded):
        outcome, detail = "sent", event.smtp_reply
    else:
        outcome, detail = "failed", event.reason
    return Outcome(
        campaign_id=event.campaign_id,
        account_id=event.account_id,
        subscriber_id=event.subscriber_id,
        email=event.email,
        outcome=outcome,
        detail=detail,
    )


def delivery_outcomes_handler(dependencies: CampaignDependencies) -> BatchHandler:
    async def handle(deliveries: list[Delivery]) -> None:
        batch = [outcome_of(d.event) for d in deliveries if isinstance(d.event, (DeliverySucceeded, DeliveryFailed))]
        await outcomes.record_outcomes(dependencies.uow(), batch)

    return handle
