"""Trace context crosses NATS and the outbox: producers put `traceparent` in the headers; a small
batch is processed inside its producers' traces, a large one links to them; an outbox row keeps the
trace of the transaction that wrote it, whenever the relay publishes it."""

from __future__ import annotations

import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mailstify_messaging import Delivery, OutboxRelay, OutgoingMessage, add_to_outbox, outbox, publish, publish_many
from mailstify_messaging.tracing import (
    MAX_LINKS,
    batch_links,
    batch_parent,
    carried_producers,
    carried_span_context,
    distinct_contexts,
    event_attributes,
    inject_trace_headers,
    link_threshold,
    messaging_attributes,
)

from .conftest import an_event, consumer_for, eventually, running

tracer = trace.get_tracer("mailstify.messaging.tests")


def traceparent_context(headers: dict[str, str]) -> trace.SpanContext:
    context = TraceContextTextMapPropagator().extract({"traceparent": headers["traceparent"]})
    return trace.get_current_span(context).get_span_context()


def a_context(trace_id: int, span_id: int) -> trace.SpanContext:
    return trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(1))


def finished(span_exporter, span_id: int):
    return next(s for s in span_exporter.get_finished_spans() if s.context.span_id == span_id)


# --- the propagation helpers ---------------------------------------------------------------------


def test_headers_carry_the_current_span_and_give_it_back(span_exporter):
    with tracer.start_as_current_span("producer") as producer:
        headers = inject_trace_headers({"Nats-Msg-Id": "m-1"})
    assert headers["Nats-Msg-Id"] == "m-1"
    carried = carried_span_context(headers)
    assert (carried.trace_id, carried.span_id) == (producer.get_span_context().trace_id, producer.get_span_context().span_id)
    assert carried.is_remote
    assert not carried_span_context({}).is_valid
    assert not carried_span_context(None).is_valid
    assert not carried_span_context({"traceparent": "garbage"}).is_valid


def test_distinct_contexts_drop_repeats_and_invalid_ones_in_order():
    a, b = a_context(1, 1), a_context(2, 2)
    assert distinct_contexts([a, trace.INVALID_SPAN_CONTEXT, b, a_context(1, 1), a]) == [a, b]


def test_carried_producers_are_the_distinct_valid_ones_in_first_seen_order():
    first = "00-0000000000000000000000000000000a-000000000000000b-01"
    second = "00-0000000000000000000000000000000c-000000000000000d-01"
    carriers = [{"traceparent": first}, None, {"traceparent": "garbage"}, {}, {"traceparent": second},
                {"traceparent": first}, {"other": "header"}]  # fmt: skip
    producers = carried_producers(carriers)
    assert [(c.trace_id, c.span_id) for c in producers] == [(0xA, 0xB), (0xC, 0xD)]
    assert carried_producers([]) == []


def test_a_small_batch_belongs_to_its_first_producer_and_links_the_others():
    producers = [a_context(1, 1), a_context(2, 2), a_context(3, 3)]
    parent = batch_parent(producers, size=3, threshold=16)
    assert trace.get_current_span(parent).get_span_context() == producers[0]
    assert [link.context for link in batch_links(producers, parent)] == producers[1:]


def test_a_large_batch_starts_its_own_trace_with_a_bounded_number_of_links():
    producers = [a_context(n, n) for n in range(1, 500)]
    parent = batch_parent(producers, size=len(producers), threshold=16)
    assert not trace.get_current_span(parent).get_span_context().is_valid
    links = batch_links(producers, parent)
    assert len(links) == MAX_LINKS
    assert [link.context for link in links] == producers[:MAX_LINKS]


def test_a_batch_without_trace_context_is_a_root():
    assert not trace.get_current_span(batch_parent([], size=1, threshold=16)).get_span_context().is_valid


def test_the_threshold_comes_from_the_environment(monkeypatch):
    for raw, expected in (("4", 4), ("", 16), ("lots", 16), ("-3", 0)):
        monkeypatch.setenv("MAILSTIFY_TRACE_LINK_THRESHOLD", raw)
        link_threshold.cache_clear()
        assert link_threshold() == expected
    monkeypatch.undo()
    link_threshold.cache_clear()


def test_messaging_attributes_follow_the_semantic_conventions():
    assert messaging_attributes("mail.deliver.v1.c1", "process", 3, consumer_group="mailer-deliver", message_id="m") == {
        "messaging.system": "nats",
        "messaging.destination.name": "mail.deliver.v1.c1",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.batch.message_count": 3,
        "messaging.consumer.group.name": "mailer-deliver",
        "messaging.message.id": "m",
    }


def test_event_attributes_name_the_campaign_of_a_batch_and_the_subscriber_of_one_message():
    one, other = an_event(), an_event()
    assert event_attributes([one]) == {"campaign.id": one.campaign_id, "account.id": "acc-1"}
    assert event_attributes([one, other]) == {"account.id": "acc-1"}
    assert event_attributes([]) == {}


# --- across NATS ---------------------------------------------------------------------------------


async def test_a_small_batch_is_processed_inside_the_producers_trace(js, scratch, span_exporter):
    spec = await scratch.stream_with_consumer()
    with tracer.start_as_current_span("send campaign") as producer:
        event = an_event()
        ack = await publish(js, OutgoingMessage.for_event(event, scratch.subject(), msg_id="msg-1"))
    carried = traceparent_context((await js.get_msg(spec.stream, ack.seq)).headers)
    assert carried.trace_id == producer.get_span_context().trace_id
    publish_span = finished(span_exporter, carried.span_id)
    assert publish_span.attributes["messaging.system"] == "nats"
    assert publish_span.attributes["messaging.operation.type"] == "publish"
    assert publish_span.attributes["messaging.message.id"] == "msg-1"
    assert publish_span.kind is trace.SpanKind.PRODUCER

    handled: list[trace.SpanContext] = []

    async def handler(deliveries: list[Delivery]) -> None:
        handled.append(trace.get_current_span().get_span_context())

    async with running(consumer_for(js, spec, handler, link_threshold=16)):
        await eventually(lambda: bool(handled))
        await eventually(lambda: any(s.name.endswith("settle") for s in span_exporter.get_finished_spans()))

    process = finished(span_exporter, handled[0].span_id)
    assert process.context.trace_id == carried.trace_id
    assert process.parent.span_id == carried.span_id
    assert process.kind is trace.SpanKind.CONSUMER
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.batch.message_count"] == 1
    assert process.attributes["messaging.consumer.group.name"] == spec.durable
    assert process.attributes["messaging.message.id"] == "msg-1"
    assert process.attributes["campaign.id"] == event.campaign_id
    assert process.attributes["account.id"] == "acc-1"
    settle = next(s for s in span_exporter.get_finished_spans() if s.name == f"{spec.durable} settle")
    assert settle.parent.span_id == process.context.span_id
    assert settle.attributes["messaging.operation.type"] == "settle"


async def test_every_producer_of_a_small_batch_sees_the_processing_in_its_trace(js, scratch, span_exporter):
    spec = await scratch.stream_with_consumer()
    producers = []
    for name in ("first request", "second request"):
        with tracer.start_as_current_span(name) as producer:
            await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
        producers.append(producer.get_span_context().trace_id)
    handled: list[trace.SpanContext] = []

    async def handler(deliveries: list[Delivery]) -> None:
        handled.append(trace.get_current_span().get_span_context())

    async with running(consumer_for(js, spec, handler, link_threshold=16)):
        await eventually(lambda: bool(handled))
    process_spans = [s for s in span_exporter.get_finished_spans() if s.name == f"{spec.durable} process"]
    if len(handled) == 1:  # both in one batch: the second trace has its own linked span
        assert {s.context.trace_id for s in process_spans} == set(producers)
        other = next(s for s in process_spans if s.context.span_id != handled[0].span_id)
        assert [link.context.span_id for link in other.links] == [handled[0].span_id]
    else:
        assert {s.context.trace_id for s in process_spans} == set(producers)


async def test_a_large_batch_links_to_its_producers_instead_of_joining_their_trace(js, scratch, span_exporter):
    spec = await scratch.stream_with_consumer()
    carried = []
    for n in range(5):
        with tracer.start_as_current_span(f"request {n}"):
            ack = await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
        carried.append(traceparent_context((await js.get_msg(spec.stream, ack.seq)).headers))
    batches: list[tuple[trace.SpanContext, int]] = []

    async def handler(deliveries: list[Delivery]) -> None:
        batches.append((trace.get_current_span().get_span_context(), len(deliveries)))

    async with running(consumer_for(js, spec, handler, batch_size=5, link_threshold=2)):
        await eventually(lambda: sum(n for _, n in batches) == 5)
    big = [(context, n) for context, n in batches if n > 2]
    assert big, f"the five messages came in small batches only: {batches}"
    span = finished(span_exporter, big[0][0].span_id)
    assert span.parent is None
    assert span.context.trace_id not in {c.trace_id for c in carried}
    assert {link.context.span_id for link in span.links} <= {c.span_id for c in carried}
    assert len(span.links) == big[0][1]
    assert "subscriber.id" not in span.attributes


# --- through the outbox ----------------------------------------------------------------------------


async def test_an_outbox_row_keeps_its_writers_trace_and_the_consumer_continues_it(
    js, scratch, outbox_engine, span_exporter
):
    spec = await scratch.stream_with_consumer()
    with tracer.start_as_current_span("create campaign") as writer:
        async with outbox_engine.begin() as conn:
            await add_to_outbox(conn, [(an_event(), scratch.subject())])
    async with outbox_engine.connect() as conn:
        stored = (await conn.execute(sa.select(outbox.c.headers))).scalar_one()
    assert traceparent_context(stored).span_id == writer.get_span_context().span_id

    # Relayed later, outside the writer's span: the message carries the writer's span itself, and
    # the relay's one publish span (a trace of its own) links to it.
    assert await OutboxRelay(outbox_engine, js).relay_batch() == 1
    carried = traceparent_context((await js.get_msg(spec.stream, 1)).headers)
    assert (carried.trace_id, carried.span_id) == (writer.get_span_context().trace_id, writer.get_span_context().span_id)
    relay_publish = next(s for s in span_exporter.get_finished_spans() if s.name.endswith(" publish"))
    assert relay_publish.context.trace_id != writer.get_span_context().trace_id
    assert [link.context.span_id for link in relay_publish.links] == [carried.span_id]

    handled: list[trace.SpanContext] = []

    async def handler(deliveries: list[Delivery]) -> None:
        handled.append(trace.get_current_span().get_span_context())

    async with running(consumer_for(js, spec, handler, link_threshold=16)):
        await eventually(lambda: bool(handled))
    process = finished(span_exporter, handled[0].span_id)
    assert process.context.trace_id == writer.get_span_context().trace_id
    assert process.parent.span_id == carried.span_id


async def test_a_large_relay_batch_keeps_each_writers_traceparent_and_links_to_them(
    js, scratch, outbox_engine, span_exporter, monkeypatch
):
    stream = scratch.stream()
    await scratch.declare([stream])
    writers = []
    for n in range(3):
        with tracer.start_as_current_span(f"writer {n}") as writer:
            async with outbox_engine.begin() as conn:
                await add_to_outbox(conn, [(an_event(), scratch.subject())])
        writers.append(writer.get_span_context())
    monkeypatch.setenv("MAILSTIFY_TRACE_LINK_THRESHOLD", "2")
    link_threshold.cache_clear()
    try:
        assert await OutboxRelay(outbox_engine, js).relay_batch() == 3
    finally:
        monkeypatch.undo()
        link_threshold.cache_clear()
    for seq, writer in enumerate(writers, start=1):
        carried = traceparent_context((await js.get_msg(stream.name, seq)).headers)
        assert (carried.trace_id, carried.span_id) == (writer.trace_id, writer.span_id)
    relay_publish = next(s for s in span_exporter.get_finished_spans() if s.name.endswith(" publish"))
    assert [link.context.span_id for link in relay_publish.links] == [w.span_id for w in writers]
    assert relay_publish.attributes["messaging.batch.message_count"] == 3


async def test_a_page_published_by_its_caller_continues_the_callers_trace(js, scratch, span_exporter):
    stream = scratch.stream()
    await scratch.declare([stream])
    with tracer.start_as_current_span("fan-out page") as page:
        await publish_many(js, [OutgoingMessage.for_event(an_event(), scratch.subject()) for _ in range(3)])
    for seq in (1, 2, 3):
        carried = traceparent_context((await js.get_msg(stream.name, seq)).headers)
        publish_span = finished(span_exporter, carried.span_id)
        assert publish_span.parent.span_id == page.get_span_context().span_id
        assert publish_span.attributes["messaging.batch.message_count"] == 3


async def test_consumers_of_a_fanout_page_link_to_it_however_small_their_batch(
    js, scratch, span_exporter, monkeypatch
):
    spec = await scratch.stream_with_consumer()
    monkeypatch.setenv("MAILSTIFY_TRACE_LINK_THRESHOLD", "2")
    link_threshold.cache_clear()
    try:
        with tracer.start_as_current_span("fan-out page") as page:
            await publish_many(js, [OutgoingMessage.for_event(an_event(), scratch.subject()) for _ in range(3)])
    finally:
        monkeypatch.undo()
        link_threshold.cache_clear()
    stored = (await js.get_msg(spec.stream, 1)).headers
    assert stored["Mailstify-Trace-Fanout"] == "1"
    batches: list[trace.SpanContext] = []

    async def handler(deliveries: list[Delivery]) -> None:
        batches.append(trace.get_current_span().get_span_context())

    # Threshold 2: the page of 3 was a fan-out, so even a batch of 1 from it links.
    async with running(consumer_for(js, spec, handler, batch_size=1, link_threshold=2)):
        await eventually(lambda: len(batches) == 3)
    for context in batches:
        span = finished(span_exporter, context.span_id)
        assert span.parent is None and span.context.trace_id != page.get_span_context().trace_id
        assert [link.context.trace_id for link in span.links] == [page.get_span_context().trace_id]
