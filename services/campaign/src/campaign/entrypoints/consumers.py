"""NATS consumers: translate events into service-layer calls. Redelivery is safe: the handlers are
idempotent (first total wins; the result ledger counts each recipient once)."""

from __future__ import annotations

from mailstify_contracts import (
    DeliveriesSucceeded,
    DeliveryCancelled,
    DeliveryDeferred,
    DeliveryFailed,
    DeliveryOutcomeUnknown,
    DeliverySucceeded,
    FanoutCompleted,
    FanoutFailed,
    SubscriberUnsubscribed,
)
from mailstify_messaging import BatchHandler, Delivery
from mailstify_messaging.tracing import without_statement_spans

from ..domain.model import Outcome, OutcomeKind
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
            elif isinstance(event, FanoutFailed):
                await outcomes.record_fanout_failed(
                    dependencies.uow(), event.account_id, event.campaign_id, event.published, event.reason
                )

    return handle


RecipientOutcome = DeliverySucceeded | DeliveryFailed | DeliveryOutcomeUnknown | DeliveryCancelled
RECIPIENT_OUTCOMES = (DeliverySucceeded, DeliveryFailed, DeliveryOutcomeUnknown, DeliveryCancelled)


def outcome_of(event: RecipientOutcome) -> Outcome:
    outcome: OutcomeKind
    hard_bounce = False
    if isinstance(event, DeliverySucceeded):
        outcome, detail = "sent", event.smtp_reply
    elif isinstance(event, DeliveryOutcomeUnknown):
        outcome, detail = "unknown", event.reason
    elif isinstance(event, DeliveryCancelled):
        outcome, detail = "cancelled", "campaign cancelled before this recipient was sent to"
    else:
        outcome, detail, hard_bounce = "failed", event.reason, event.hard_bounce
    return Outcome(
        campaign_id=event.campaign_id,
        account_id=event.account_id,
        subscriber_id=event.subscriber_id,
        email=event.email,
        outcome=outcome,
        detail=detail,
        round=event.round,
        hard_bounce=hard_bounce,
        reported_at=event.occurred_at,
    )


def outcomes_of(event: DeliveriesSucceeded) -> list[Outcome]:
    return [
        Outcome(
            campaign_id=event.campaign_id,
            account_id=event.account_id,
            subscriber_id=delivery.subscriber_id,
            email=delivery.email,
            outcome="sent",
            detail=delivery.smtp_reply,
            round=delivery.round,
            reported_at=event.occurred_at,
        )
        for delivery in event.deliveries
    ]


def delivery_outcomes_handler(dependencies: CampaignDependencies) -> BatchHandler:
    async def handle(deliveries: list[Delivery]) -> None:
        batch: list[Outcome] = []
        for d in deliveries:
            if isinstance(d.event, DeliveriesSucceeded):
                batch.extend(outcomes_of(d.event))
            elif isinstance(d.event, RECIPIENT_OUTCOMES):
                batch.append(outcome_of(d.event))
        with without_statement_spans():  # one batch per few hundred emails: its span says enough
            await outcomes.record_outcomes(dependencies.uow(), batch)
        deferrals = [
            (d.event.account_id, d.event.campaign_id, outcomes.deferral_note(d.event.reason, d.event.smtp_code))
            for d in deliveries
            if isinstance(d.event, DeliveryDeferred)
        ]
        await outcomes.record_deferrals(dependencies.uow(), deferrals)

    return handle


def unsubscribes_handler(dependencies: CampaignDependencies) -> BatchHandler:
    async def handle(deliveries: list[Delivery]) -> None:
        batch = [
            (d.event.account_id, d.event.campaign_id, d.event.subscriber_id)
            for d in deliveries
            if isinstance(d.event, SubscriberUnsubscribed) and d.event.campaign_id is not None
        ]
        await outcomes.record_unsubscribes(dependencies.uow(), batch)

    return handle
