"""Trace context crosses NATS: producers put `traceparent` in the headers, the consumer's batch span is
linked to every producer, and the outbox relay forwards the writer's context rather than its own."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mailstify_messaging import Delivery, OutboxRelay, OutgoingMessage, add_to_outbox, publish

from .conftest import an_event, consumer_for, eventually, running

tracer = trace.get_tracer("mailstify.messaging.tests")


def traceparent_context(headers: dict[str, str]) -> trace.SpanContext:
    context = TraceContextTextMapPropagator().extract({"traceparent": headers["traceparent"]})
    return trace.get_current_span(context).get_span_context()


async def test_a_published_message_carries_the_trace_and_the_consumer_span_links_to_it(
    js, scratch, span_exporter
):
    spec = await scratch.stream_with_consumer()

    with tracer.start_as_current_span("send campaign") as producer:
        ack = await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
    producer_trace = producer.get_span_context().trace_id

    carried = traceparent_context((await js.get_msg(spec.stream, ack.seq)).headers)
    assert carried.trace_id == producer_trace
    publish_span = next(s for s in span_exporter.get_finished_spans() if s.context.span_id == carried.span_id)
    assert publish_span.attributes["messaging.system"] == "nats"
    assert publish_span.attributes["messaging.operation.type"] == "publish"

    handled: list[trace.SpanContext] = []

    async def handler(deliveries: list[Delivery]) -> None:
        handled.append(trace.get_current_span().get_span_context())

    async with running(consumer_for(js, spec, handler)):
        await eventually(lambda: bool(handled))

    process = next(s for s in span_exporter.get_finished_spans() if s.context.span_id == handled[0].span_id)
    # Linked, not parented: a batch has many producers, and a fan-out must not become one huge trace.
    assert process.context.trace_id != producer_trace
    assert [(link.context.trace_id, link.context.span_id) for link in process.links] == [
        (carried.trace_id, carried.span_id)
    ]
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.batch.message_count"] == 1


async def test_the_outbox_relay_forwards_the_writers_trace(js, scratch, outbox_engine, span_exporter):
    stream = scratch.stream()
    await scratch.declare([stream])
    with tracer.start_as_current_span("create campaign") as writer:
        async with outbox_engine.begin() as conn:
            await add_to_outbox(conn, [(an_event(), scratch.subject())])

    # Relayed later, outside the writer's span (the relay opens a publish span of its own).
    assert await OutboxRelay(outbox_engine, js).relay_batch() == 1

    carried = traceparent_context((await js.get_msg(stream.name, 1)).headers)
    assert carried.trace_id == writer.get_span_context().trace_id
    assert carried.span_id == writer.get_span_context().span_id
