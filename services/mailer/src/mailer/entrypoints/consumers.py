"""JetStream consumer of DeliverEmail: translates deliveries to tasks and settlements back."""

from __future__ import annotations

import logging

from mailstify_contracts import DeliverEmail, topology
from mailstify_messaging import Delivery, PullConsumer
from mailstify_servicekit import Runtime

from ..service_layer.delivering import DeliveryService, DeliveryTask

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
