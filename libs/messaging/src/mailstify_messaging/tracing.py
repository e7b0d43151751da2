"""W3C trace context in NATS headers, and the messaging semantic conventions for spans."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context

tracer = trace.get_tracer("mailstify.messaging")


def inject_trace_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_trace_context(headers: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(headers or {}))


def producer_link(headers: Mapping[str, str] | None) -> trace.Link:
    """A span link to the span that published a message (consumers link rather than parent, so a
    batch of many producers' messages is one span, not one enormous trace)."""
    return trace.Link(trace.get_current_span(extract_trace_context(headers)).get_span_context())


def messaging_attributes(subject: str, operation: str, batch_size: int | None = None) -> dict[str, object]:
    attributes: dict[str, object] = {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation.type": operation,
    }
    if batch_size is not None:
        attributes["messaging.batch.message_count"] = batch_size
    return attributes
