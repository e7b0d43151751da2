"""JetStream consumers of DeliverEmail: translate deliveries to tasks and settlements back, and
messages the deliveries consumer gave up on to service calls."""

from __future__ import annotations

import logging

from mailstify_contracts import DeliverEmail, topology
from mailstify_contracts.topology import ConsumerSpec
from mailstify_messaging import Delivery, ExhaustedMessage, ExhaustedMessageListener, PullConsumer
from mailstify_servicekit import Runtime

from ..service_layer.delivering import DeliveryService, DeliveryTask
from ..service_layer.giving_up import GiveUpService

log = logging.getLogger(__name__)


def delivery_consumer(runtime: Runtime, service: DeliveryService, batch_size: int) -> PullConsumer:
    async def handle(batch: list[Delivery]) -> None:
        deliveries: list[Delivery] = []
        for delivery in batch:
            if isinstance(delivery.event, DeliverEmail):
                deliveries.append(delivery)
            else:
                log.error("rejecting %s on the deliveries consumer", delivery.event.type)
                delivery.reject()
        tasks = [DeliveryTask(d.event, d.attempt, d.is_last_attempt) for d in deliveries]  # type: ignore[arg-type]
        settlements = await service.deliver(tasks)
        for delivery, settlement in zip(deliveries, settlements, strict=True):
            if settlement.retry:
                delivery.retry(settlement.delay)
            else:
                delivery.ack()

    return PullConsumer(runtime.jetstream(), topology.MAILER_DELIVERIES, handle, batch_size=batch_size)


def exhausted_deliveries_listener(
    runtime: Runtime, service: GiveUpService, spec: ConsumerSpec = topology.MAILER_DELIVERIES
) -> ExhaustedMessageListener:
    async def handle(exhausted: ExhaustedMessage) -> None:
        if not isinstance(exhausted.event, DeliverEmail):
            log.error("ignoring exhausted %s on the deliveries consumer", exhausted.event.type)
            return
        await service.give_up(exhausted.event, exhausted.deliveries)

    assert runtime.nc is not None, "listeners are built after NATS is connected"
    return ExhaustedMessageListener(runtime.nc, runtime.jetstream(), spec, handle)
