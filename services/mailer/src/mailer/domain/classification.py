"""SMTP outcome classification (ARCHITECTURE §6 rule 4): a pure function of the reply."""

from __future__ import annotations

import re

from .model import Outcome, SmtpAttempt, Status

# Mailbox errors: the address does not exist / is not ours / is malformed. Reported as hard bounces,
# which get the subscriber suppressed.
HARD_BOUNCE_CODES = frozenset({550, 551, 553})
# RFC 3463 enhanced status at the start of the reply text, e.g. "5.7.1 Message rejected as spam".
_ENHANCED_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Policy rejections (spam, relaying, authentication) are the sender's problem, not the mailbox's.
_POLICY_CLASS = "7"

RETRY_NOT_ATTEMPTED_SECONDS = 1.0


def classify(attempt: SmtpAttempt, last_attempt: bool) -> Outcome:
    """2xx → sent; 5xx → permanent failure; 4xx, no reply or anything else → retry, or a
    non-permanent failure when this was the last delivery JetStream will make."""
    if not attempt.attempted:
        # Nothing went over the wire; if this was the last delivery, it failed for want of time.
        if last_attempt:
            return Outcome(Status.FAILED, reason="retries exhausted: not attempted in time", permanent=False)
        return Outcome(Status.RETRY, smtp_reply=attempt.reply, retry_after=RETRY_NOT_ATTEMPTED_SECONDS)
    code = attempt.code
    if code is not None and 200 <= code < 300:
        return Outcome(Status.SENT, smtp_code=code, smtp_reply=attempt.reply)
    if code is not None and 500 <= code < 600:
        return Outcome(
            Status.FAILED,
            smtp_code=code,
            smtp_reply=attempt.reply,
            reason=_describe(attempt),
            permanent=True,
            hard_bounce=is_hard_bounce(code, attempt.reply),
        )
    if last_attempt:
        return Outcome(
            Status.FAILED,
            smtp_code=code,
            smtp_reply=attempt.reply,
            reason=f"retries exhausted: {_describe(attempt)}",
            permanent=False,
        )
    return Outcome(Status.RETRY, smtp_code=code, smtp_reply=attempt.reply)


def is_hard_bounce(code: int, reply: str) -> bool:
    if code not in HARD_BOUNCE_CODES:
        return False
    enhanced = _ENHANCED_STATUS.match(reply)
    return not (enhanced and enhanced.group(2) == _POLICY_CLASS)


def _describe(attempt: SmtpAttempt) -> str:
    if attempt.code is None:
        return attempt.reply or "no reply from the SMTP server"
    return f"{attempt.code} {attempt.reply}".strip()
