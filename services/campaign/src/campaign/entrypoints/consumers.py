"""NATS consumers: translate events into service-layer calls. Redelivery is safe: the handlers are
idempotent (first total wins; the result ledger counts each recipient once)."""

from __future__ import annotations

from collections.abc import Callable

from mailstify_contracts import DeliveryFailed, DeliverySucceeded, FanoutCompleted
from mailstify_messaging import BatchHandler, Delivery

from ..domain.model import Outcome
from ..service_layer import results
from ..service_layer.ports import CampaignUnitOfWork

UowFactory = Callable[[], CampaignUnitOfWork]


def fanout_completed_handler(new_uow: UowFactory) -> BatchHandler:
    async def handle(deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            event = delivery.event
            if isinstance(event, FanoutCompleted):
                await results.record_fanout_completed(new_uow(), event.account_id, event.campaign_id, event.total)

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


def delivery_outcomes_handler(new_uow: UowFactory) -> BatchHandler:
    async def handle(deliveries: list[Delivery]) -> None:
        outcomes = [outcome_of(d.event) for d in deliveries if isinstance(d.event, (DeliverySucceeded, DeliveryFailed))]
        await results.record_outcomes(new_uow(), outcomes)

    return handle
