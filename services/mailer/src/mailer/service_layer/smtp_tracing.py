"""The span of one batch's SMTP sending: one span per delivery batch (all its waves), never one per
email or per wave (per-email spans would cost more CPU than the 5 % the hot path allows). The waves
report their replies with `record_replies`; the span carries them when the batch is done."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

from opentelemetry import trace

from ..domain.model import SmtpAttempt

tracer = trace.get_tracer("mailstify.mailer")

NOT_ATTEMPTED = "not_attempted"
# Reply codes of the batch being sent (a Counter the waves of this task and its lanes share).
_replies: ContextVar[Counter[int | str | None] | None] = ContextVar("mailstify_smtp_replies", default=None)


@contextlib.contextmanager
def smtp_span(mails: int) -> Iterator[trace.Span]:
    """Around a batch's sending; the sender adds `server.address` / `server.port` to it."""
    with tracer.start_as_current_span(
        "smtp send", kind=trace.SpanKind.CLIENT, attributes={"mailstify.mail.count": mails}
    ) as span:
        replies: Counter[int | str | None] = Counter()
        token = _replies.set(replies)
        try:
            yield span
        finally:
            _replies.reset(token)
            set_reply_attributes(span, replies)


def record_replies(attempts: Sequence[SmtpAttempt]) -> None:
    """Count a wave's replies into the batch's span (nothing outside `smtp_span`)."""
    replies = _replies.get()
    if replies is not None:
        replies.update(a.code if a.attempted else NOT_ATTEMPTED for a in attempts)


def set_reply_attributes(span: trace.Span, replies: Counter[int | str | None]) -> None:
    """`smtp.reply.code` when every attempted mail got the same reply code (the usual case: all 250),
    the distinct codes in `smtp.reply.codes`, and how many replies of each class came back."""
    if not span.is_recording() or not replies:
        return
    numeric = sorted(c for c in replies if isinstance(c, int))
    if len(replies) == 1 and numeric:
        span.set_attribute("smtp.reply.code", numeric[0])
    span.set_attribute("smtp.reply.codes", numeric)
    classes: Counter[str] = Counter()
    for code, count in replies.items():
        key = f"{code // 100}xx" if isinstance(code, int) else ("no_reply" if code is None else code)
        classes[key] += count
    for key, count in classes.items():
        span.set_attribute(f"mailstify.smtp.replies.{key}", count)
