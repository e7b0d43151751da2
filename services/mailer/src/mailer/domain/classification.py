"""SMTP outcome classification (ARCHITECTURE §6 rule 4): a pure function of the reply."""

from __future__ import annotations

import re

from .model import NO_FINAL_REPLY_REASON, Outcome, SmtpAttempt, SmtpPhase, Status

# Mailbox errors: the address does not exist / is not ours / is malformed. Reported as hard bounces,
# which get the subscriber suppressed.
HARD_BOUNCE_CODES = frozenset({550, 551, 553})
# RFC 3463 enhanced status at the start of the reply text, e.g. "5.7.1 Message rejected as spam".
_ENHANCED_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Policy rejections (spam, relaying, authentication) are the sender's problem, not the mailbox's.
_POLICY_CLASS = "7"

RETRY_NOT_ATTEMPTED_SECONDS = 1.0

# Authentication required / too weak / failed / encryption required (RFC 4954), and "service not
# available, closing": whatever command they answer, they are about our session, not the recipient.
PATH_CODES = frozenset({421, 454, 530, 534, 535, 538})
_RELAY_DENIED = re.compile(r"relay", re.IGNORECASE)

_WHERE = {
    SmtpPhase.SESSION: "SMTP session",
    SmtpPhase.MAIL: "MAIL FROM",
    SmtpPhase.RCPT: "RCPT TO",
    SmtpPhase.DATA: "DATA",
    SmtpPhase.DATA_SENT: "message data",
}


def classify(attempt: SmtpAttempt, last_attempt: bool) -> Outcome:
    """2xx → sent; no reply after the data was sent → unknown (never re-sent); a delivery-path
    problem (session, AUTH, MAIL FROM, relay policy) → retry, never the recipient's failure; about the
    recipient: 5xx → permanent failure; 4xx, no reply or anything else → retry. A retry on the last
    delivery JetStream will make is a non-permanent failure instead."""
    if not attempt.attempted:
        # Nothing went over the wire; if this was the last delivery, it failed for want of time.
        if last_attempt:
            return Outcome(Status.FAILED, reason="retries exhausted: not attempted in time", permanent=False)
        return Outcome(Status.RETRY, smtp_reply=attempt.reply, retry_after=RETRY_NOT_ATTEMPTED_SECONDS)
    code = attempt.code
    if code is not None and 200 <= code < 300:
        return Outcome(Status.SENT, smtp_code=code, smtp_reply=attempt.reply)
    if attempt.ambiguous:
        # The server had the whole message and went silent: it may have queued it. Sending again
        # could deliver it twice (§6 rule 3), so the outcome is unknown, for good.
        detail = f": {attempt.reply}" if attempt.reply else ""
        return Outcome(Status.UNKNOWN, smtp_reply=attempt.reply, reason=f"{NO_FINAL_REPLY_REASON}{detail}")
    if is_path_problem(attempt):
        reason = f"delivery path: {_WHERE[attempt.phase]}: {_describe(attempt)}"
        if last_attempt:
            return Outcome(
                Status.FAILED, smtp_code=code, smtp_reply=attempt.reply, reason=f"retries exhausted: {reason}", permanent=False
            )
        return Outcome(Status.RETRY, smtp_code=code, smtp_reply=attempt.reply, reason=reason, path_problem=True)
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


def is_path_problem(attempt: SmtpAttempt) -> bool:
    """Only a reply to RCPT TO or to the message's data is about the recipient; the session, MAIL
    FROM, authentication and relay policy are the delivery path's (ARCHITECTURE §6 rule 4)."""
    if attempt.phase.is_path:
        return True
    if attempt.code in PATH_CODES:
        return True
    # "554 5.7.1 Relay access denied": the relay refuses us, whoever the recipient.
    return attempt.phase is SmtpPhase.RCPT and attempt.code is not None and bool(_RELAY_DENIED.search(attempt.reply))


def is_hard_bounce(code: int, reply: str) -> bool:
    if code not in HARD_BOUNCE_CODES:
        return False
    enhanced = _ENHANCED_STATUS.match(reply)
    return not (enhanced and enhanced.group(2) == _POLICY_CLASS)


def _describe(attempt: SmtpAttempt) -> str:
    if attempt.code is None:
        return attempt.reply or "no reply from the SMTP server"
    return f"{attempt.code} {attempt.reply}".strip()
