"""The gauges every service reports about its own queues, read by a periodic pass rather than at
each message, so that measuring costs nothing per message:

- `mailstify.consumer.lag` per durable consumer the service owns: JetStream's `num_pending`
  (not yet delivered) + `num_ack_pending` (delivered, not yet acked);
- `mailstify.outbox.backlog` / `mailstify.outbox.oldest_age`: rows of the service's outbox not yet
  published, and how long the oldest has waited.

Observable gauges are read synchronously at scrape time; the pass (`QueueGauges.poll`) is async,
so it stores what it read and the callbacks report the latest values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import nats.errors
import sqlalchemy as sa
from nats.js import JetStreamContext
from opentelemetry import metrics
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import CallbackOptions, Observation
from sqlalchemy.ext.asyncio import AsyncEngine

from mailstify_contracts.topology import ConsumerSpec
from mailstify_messaging.outbox import OUTBOX_TABLE

log = logging.getLogger(__name__)

meter = metrics.get_meter("mailstify.servicekit")

_OUTBOX_QUERY = sa.text(
    f"SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) FROM {OUTBOX_TABLE}"  # noqa: S608
)


@dataclass
class _Readings:
    # durable -> (stream, lag)
    lag: dict[str, tuple[str, int]] = field(default_factory=dict)
    # service -> (rows, oldest age in seconds)
    outbox: dict[str, tuple[int, float]] = field(default_factory=dict)


# Process-wide: one set of gauges, whatever number of runtimes a test process holds.
_readings = _Readings()


def _observe_lag(_: CallbackOptions) -> Iterable[Observation]:
    for durable, (stream, lag) in list(_readings.lag.items()):
        yield Observation(lag, {"messaging.consumer.group.name": durable, "messaging.destination.name": stream})


def _observe_backlog(_: CallbackOptions) -> Iterable[Observation]:
    for rows, _age in list(_readings.outbox.values()):
        yield Observation(rows)


def _observe_age(_: CallbackOptions) -> Iterable[Observation]:
    for _rows, age in list(_readings.outbox.values()):
        yield Observation(age)


meter.create_observable_gauge(
    "mailstify.consumer.lag",
    callbacks=[_observe_lag],
    unit="{message}",
    description="Messages of a durable consumer not yet acked: pending delivery plus delivered awaiting ack",
)
meter.create_observable_gauge(
    "mailstify.outbox.backlog",
    callbacks=[_observe_backlog],
    unit="{row}",
    description="Outbox rows written but not yet published to JetStream",
)
meter.create_observable_gauge(
    "mailstify.outbox.oldest_age",
    callbacks=[_observe_age],
    unit="s",
    description="Age of the oldest outbox row not yet published (0 when the outbox is empty)",
)


@dataclass
class QueueGauges:
    """One service's part of the gauges: its consumers and its outbox."""

    service: str
    engine: AsyncEngine
    js: JetStreamContext
    consumers: Sequence[ConsumerSpec]

    async def poll(self) -> None:
        # The pass's own queries are not traffic: no spans for them.
        with suppress_instrumentation():
            await self._poll_consumers()
            await self._poll_outbox()

    async def _poll_consumers(self) -> None:
        for spec in self.consumers:
            try:
                info = await self.js.consumer_info(spec.stream, spec.durable)
            except (nats.errors.Error, TimeoutError) as exc:
                # A stale value would look healthy: report nothing until it can be read again.
                _readings.lag.pop(spec.durable, None)
                log.debug("consumer info of %s unavailable: %s", spec.durable, exc)
                continue
            _readings.lag[spec.durable] = (spec.stream, (info.num_pending or 0) + (info.num_ack_pending or 0))

    async def _poll_outbox(self) -> None:
        try:
            async with self.engine.connect() as conn:
                rows, age = (await conn.execute(_OUTBOX_QUERY)).one()
        except Exception as exc:  # database briefly away: as above
            _readings.outbox.pop(self.service, None)
            log.debug("outbox backlog of %s unavailable: %s", self.service, exc)
            return
        _readings.outbox[self.service] = (int(rows), float(age))

    def forget(self) -> None:
        """The service stopped: its readings leave the gauges."""
        _readings.outbox.pop(self.service, None)
        for spec in self.consumers:
            _readings.lag.pop(spec.durable, None)
