"""The SMTP batch span's attributes: one reply code when the batch agrees, the distinct codes and
per-class counts otherwise."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailer.domain.model import SmtpAttempt, SmtpPhase
from mailer.service_layer.smtp_tracing import record_replies, smtp_span


def replies_of(attempts: list[SmtpAttempt]) -> dict:
    exporter = InMemorySpanExporter()
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with trace.use_span(provider.get_tracer("test").start_span("batch"), end_on_exit=True):
        with smtp_span(len(attempts)):
            # Waves report separately; the one span carries them all.
            record_replies(attempts[:1])
            record_replies(attempts[1:])
    record_replies(attempts)  # outside a batch: nowhere to count, no error
    (finished,) = [s for s in exporter.get_finished_spans() if s.name == "smtp send"]
    return dict(finished.attributes)


def test_a_batch_that_got_one_reply_code_carries_it() -> None:
    attributes = replies_of([SmtpAttempt(code=250, phase=SmtpPhase.DATA_SENT)] * 3)
    assert attributes["smtp.reply.code"] == 250
    assert attributes["smtp.reply.codes"] == (250,)
    assert attributes["mailstify.smtp.replies.2xx"] == 3


def test_a_mixed_batch_carries_its_distinct_codes_and_counts_by_class() -> None:
    attributes = replies_of(
        [
            SmtpAttempt(code=250, phase=SmtpPhase.DATA_SENT),
            SmtpAttempt(code=550, reply="no such user"),
            SmtpAttempt(code=None, reply="timeout", phase=SmtpPhase.DATA_SENT),
            SmtpAttempt.not_attempted(),
        ]
    )
    assert "smtp.reply.code" not in attributes
    assert attributes["smtp.reply.codes"] == (250, 550)
    assert (attributes["mailstify.smtp.replies.2xx"], attributes["mailstify.smtp.replies.5xx"]) == (1, 1)
    assert attributes["mailstify.smtp.replies.no_reply"] == 1
    assert attributes["mailstify.smtp.replies.not_attempted"] == 1
