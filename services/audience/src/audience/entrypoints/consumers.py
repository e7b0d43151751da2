"""NATS consumers: translate events into service-layer calls. Redelivery is safe: recording a
bounce twice changes nothing the second time."""

from __future__ import annotations

from mailstify_contracts import DeliveryFailed
from mailstify_messaging import BatchHandler, Delivery

from ..service_layer.dependencies import AudienceDependencies
from ..service_layer.suppression import Bounce, record_bounces


def bounces_handler(dependencies: AudienceDependencies) -> BatchHandler:
    async def handle(deliveries: list[Delivery]) -> None:
        # Only a hard bounce (the mailbox does not exist) is about the address; other failures
        # (retries exhausted, a sender-side refusal) say nothing about the recipient.
        batch = [
            Bounce(d.event.account_id, d.event.email, d.event.reason)
            for d in deliveries
            if isinstance(d.event, DeliveryFailed) and d.event.hard_bounce
        ]
        await record_bounces(dependencies.uow(), batch)

    return handle
