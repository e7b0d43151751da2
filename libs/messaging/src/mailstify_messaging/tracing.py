"""W3C trace context in NATS headers, and the messaging semantic conventions for spans.

How a batch is traced depends on its size (`link_threshold`, MAILSTIFY_TRACE_LINK_THRESHOLD):
up to the threshold the consumer's work is part of each producer's trace (the batch span is the
child of the first message's producer, and every other producer's trace gets a short span of its own
for the same work); above it the batch span starts a trace of its own and *links* to a bounded
number of producers, so a million-recipient campaign is many small traces, not one unloadable one.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context

tracer = trace.get_tracer("mailstify.messaging")

LINK_THRESHOLD_VARIABLE = "MAILSTIFY_TRACE_LINK_THRESHOLD"
DEFAULT_LINK_THRESHOLD = 16
# Links per span at most (the SDK's default span link limit is 128); distinct producers beyond
# this are counted in `mailstify.trace.links_dropped`, not linked.
MAX_LINKS = 64
TRACEPARENT_HEADER = "traceparent"
# On each message of a batch published above the threshold (a fan-out page): its consumers always
# link to the producer, however small their own batch, so a big fan-out's trace stays small.
FANNED_OUT_HEADER = "Mailstify-Trace-Fanout"


@functools.cache
def link_threshold() -> int:
    """Batches of at most this many messages are traced as children of their producers; larger ones link."""
    raw = os.environ.get(LINK_THRESHOLD_VARIABLE, "").strip()
    try:
        return max(0, int(raw)) if raw else DEFAULT_LINK_THRESHOLD
    except ValueError:
        return DEFAULT_LINK_THRESHOLD


def inject_trace_headers(headers: dict[str, str] | None = None, context: Context | None = None) -> dict[str, str]:
    carrier = dict(headers or {})
    propagate.inject(carrier, context=context)
    return carrier


def extract_trace_context(headers: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(headers or {}))


def carried_span_context(headers: Mapping[str, str] | None) -> trace.SpanContext:
    """The producer's span context a message carries (invalid when it carries none)."""
    if not headers or TRACEPARENT_HEADER not in headers:
        return trace.INVALID_SPAN_CONTEXT
    return trace.get_current_span(extract_trace_context(headers)).get_span_context()


def producer_link(headers: Mapping[str, str] | None) -> trace.Link:
    """A span link to the span that published a message."""
    return trace.Link(carried_span_context(headers))


def carried_producers(carriers: Iterable[Mapping[str, str] | None]) -> list[trace.SpanContext]:
    """The distinct valid producer span contexts a batch of messages carries, in first-seen order.
    Each distinct `traceparent` is parsed once: a fan-out page shares one, the outcomes one mailer
    batch wrote share a few, and parsing one per message was most of a consumer's tracing cost."""
    by_traceparent: dict[str, Mapping[str, str]] = {}
    for headers in carriers:
        if headers and (traceparent := headers.get(TRACEPARENT_HEADER)):
            by_traceparent.setdefault(traceparent, headers)
    return distinct_contexts(carried_span_context(headers) for headers in by_traceparent.values())


def distinct_contexts(contexts: Iterable[trace.SpanContext]) -> list[trace.SpanContext]:
    """Valid span contexts without repeats, in first-seen order (a page of a fan-out shares one)."""
    seen: dict[tuple[int, int], trace.SpanContext] = {}
    for context in contexts:
        if context.is_valid:
            seen.setdefault((context.trace_id, context.span_id), context)
    return list(seen.values())


def bounded_links(contexts: list[trace.SpanContext], limit: int = MAX_LINKS) -> list[trace.Link]:
    return [trace.Link(c) for c in contexts[:limit]]


def root_context() -> Context:
    """A context with no span in it: a span started in it begins a new trace."""
    return trace.set_span_in_context(trace.INVALID_SPAN, Context())


def batch_parent(
    contexts: list[trace.SpanContext], size: int, threshold: int | None = None, fanned_out: bool = False
) -> Context:
    """Where a batch span of `size` messages whose producers are `contexts` (distinct, valid) belongs:
    under the first producer when the batch is small, in a trace of its own otherwise or when its
    messages come from a fan-out."""
    limit = link_threshold() if threshold is None else threshold
    if contexts and size <= limit and not fanned_out:
        return trace.set_span_in_context(trace.NonRecordingSpan(contexts[0]), Context())
    return root_context()


def batch_links(contexts: list[trace.SpanContext], parent: Context) -> list[trace.Link]:
    """Links to every producer but the parent (bounded)."""
    parent_context = trace.get_current_span(parent).get_span_context()
    others = [c for c in contexts if not (c.trace_id == parent_context.trace_id and c.span_id == parent_context.span_id)]
    return bounded_links(others)


def links_dropped(contexts: list[trace.SpanContext], links: list[trace.Link], parent: Context) -> int:
    parented = 1 if trace.get_current_span(parent).get_span_context().is_valid else 0
    return max(0, len(contexts) - len(links) - parented)


@contextlib.contextmanager
def page_span(name: str, index: int, attributes: Mapping[str, Any], threshold: int | None = None) -> Iterator[trace.Span]:
    """A span for page `index` (from 0) of a long job such as a fan-out: the first `threshold` pages
    are children of the current span; later ones start traces of their own, linked to it, so the
    job's trace stays loadable however many pages it has."""
    limit = link_threshold() if threshold is None else threshold
    current = trace.get_current_span().get_span_context()
    if index < limit or not current.is_valid:
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span
        return
    with tracer.start_as_current_span(
        name, context=root_context(), links=[trace.Link(current)], attributes=attributes
    ) as span:
        yield span


def messaging_attributes(
    subject: str,
    operation: str,
    batch_size: int | None = None,
    *,
    consumer_group: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
    }
    if batch_size is not None:
        attributes["messaging.batch.message_count"] = batch_size
    if consumer_group is not None:
        attributes["messaging.consumer.group.name"] = consumer_group
    if message_id is not None:
        attributes["messaging.message.id"] = message_id
    return attributes


# Event fields that name what a span is about (ARCHITECTURE.md §7), as span attributes.
_SUBJECT_ATTRIBUTES = (("campaign_id", "campaign.id"), ("account_id", "account.id"))


def event_attributes(events: list[Any]) -> dict[str, Any]:
    """`campaign.id` / `account.id` when every event of a batch shares one; `subscriber.id` only for
    a single message about one subscriber (a batch span is about many)."""
    attributes: dict[str, Any] = {}
    if not events:
        return attributes
    for field, attribute in _SUBJECT_ATTRIBUTES:
        first = getattr(events[0], field, None)
        if isinstance(first, str) and all(getattr(e, field, None) == first for e in events):
            attributes[attribute] = first
    if len(events) == 1:
        subscriber = getattr(events[0], "subscriber_id", None)
        recipient = getattr(events[0], "recipient", None)
        subscriber = subscriber or getattr(recipient, "subscriber_id", None)
        if isinstance(subscriber, str):
            attributes["subscriber.id"] = subscriber
    return attributes


@contextlib.contextmanager
def without_statement_spans() -> Iterator[None]:
    """No span per SQL statement (nor per outgoing HTTP request) inside: for the per-email path, where
    the batch's own spans tell the story and a span per statement cost most of telemetry's overhead
    (the send benchmark with telemetry on was 17% slower than off). Our own spans are unaffected."""
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        otel_context.detach(token)
