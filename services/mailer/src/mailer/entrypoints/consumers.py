"""JetStream consumers of DeliverEmail: translate deliveries to tasks and settlements back, and
messages the deliveries consumer gave up on (advisory listener + periodic sweep) to service calls."""

from __future__ import annotations

import logging

from nats.aio.client import Client
from nats.js import JetStreamContext

from mailstify_contracts import DeliverEmail, topology
from mailstify_contracts.topology import ConsumerSpec
from mailstify_messaging import Delivery, ExhaustedMessage, ExhaustedMessages, PullConsumer, kept_in_progress
from mailstify_messaging.tracing import without_statement_spans

from ..service_layer.dependencies import MailerDependencies
from ..service_layer.handlers.delivery import DeliveryTask, Settlement

log = logging.getLogger(__name__)


def delivery_consumer(
    js: JetStreamContext,
    dependencies: MailerDependencies,
    batch_size: int,
    spec: ConsumerSpec = topology.MAILER_DELIVERIES,
) -> PullConsumer:
    async def handle(batch: list[Delivery]) -> None:
        delivery_of: dict[int, Delivery] = {}
        tasks: list[DeliveryTask] = []
        for delivery in batch:
            if isinstance(delivery.event, DeliverEmail):
                task = DeliveryTask(delivery.event, delivery.attempt, delivery.is_last_attempt)
                delivery_of[id(task)] = delivery
                tasks.append(task)
            else:
                log.error("rejecting %s on the deliveries consumer", delivery.event.type)
                delivery.reject()

        async def settle_now(task: DeliveryTask, settlement: Settlement) -> None:
            delivery = delivery_of[id(task)]
            if settlement.retry:
                delivery.retry(settlement.delay)
            else:
                delivery.ack()
            await delivery.settle()

        # Signalled every third of the ack wait: a slow relay or a database outage must not get
        # the batch redelivered to another replica.
        async with kept_in_progress(batch, every=spec.ack_wait_seconds / 3):
            with without_statement_spans():
                await dependencies.deliveries.deliver(tasks, on_settled=settle_now)

    return PullConsumer(js, spec, handle, batch_size=batch_size)


def exhausted_deliveries(
    nc: Client,
    js: JetStreamContext,
    dependencies: MailerDependencies,
    spec: ConsumerSpec = topology.MAILER_DELIVERIES,
    sweep_interval: float = 30.0,
) -> ExhaustedMessages:
    """Deliveries the consumer gave up on, as their advisories arrive and, for those whose advisory
    no mailer heard (all replicas down at that moment), at the next sweep: each becomes a give-up
    (idempotent, so a message both paths see is reported once)."""

    async def handle(exhausted: ExhaustedMessage) -> None:
        if not isinstance(exhausted.event, DeliverEmail):
            log.error("ignoring exhausted %s on the deliveries consumer", exhausted.event.type)
            return
        await dependencies.exhausted.give_up(exhausted.event, exhausted.deliveries)

    return ExhaustedMessages(nc, js, spec, handle, sweep_interval=sweep_interval)

