"""What the mailer reasons about: ledger states, one SMTP attempt, and the outcome it leads to."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class DeliveryKey:
    """The natural key of a delivery: at most one SMTP transaction per key (ARCHITECTURE §6 rule 3)."""

    campaign_id: str
    subscriber_id: str


class Status(str, enum.Enum):
    # Reserved for one replica under a lease, not on the wire yet: if that replica dies, the row is
    # claimed afresh once the lease ran out and sent by another replica.
    CLAIMED = "claimed"
    # Handed to an SMTP connection (written durably just before): if its replica dies now, the mail
    # may be out, so it is recorded `unknown` once the lease ran out, never sent again.
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    RETRY = "retry"
    UNKNOWN = "unknown"
    # Never sent: the campaign was cancelled before this recipient's turn.
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (Status.SENT, Status.FAILED, Status.UNKNOWN, Status.CANCELLED)


OUTCOME_UNKNOWN_REASON = "outcome unknown: mailer stopped mid-send"
NO_FINAL_REPLY_REASON = "outcome unknown: no reply after the message data was sent"


def gave_up_reason(deliveries: int) -> str:
    return f"gave up after {deliveries} deliveries"


class ClaimState(enum.Enum):
    """What the claim statement found for one delivery."""

    # Ours to send: newly inserted, or re-claimed from `retry` or from an expired `claimed`.
    CLAIMED = "claimed"
    # Already has an outcome: ack without sending.
    DONE = "done"
    # Another replica holds a live lease: try again once it should have finished.
    BUSY = "busy"
    # Its previous mailer died mid-send (lease expired while `sending`); just recorded `unknown`.
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class Claim:
    key: DeliveryKey
    state: ClaimState
    # The ledger's attempt counter after the claim; fences the later outcome update to this claim.
    attempts: int = 0
    # For BUSY: seconds until the other replica's lease runs out, when known.
    lease_remaining: float | None = None


def claim_state(status: Status | None, changed_by_claim: bool) -> ClaimState:
    """Interpret one row of the claim statement (see `adapters.ledger`).

    `changed_by_claim` rows were written by this claim: `claimed` means ours, `unknown` means we
    found an abandoned send. Unchanged rows are either terminal or held by another replica (a live
    lease, or a row a concurrent claim touched after our snapshot, seen here as None / stale).
    """
    if changed_by_claim:
        return ClaimState.CLAIMED if status is Status.CLAIMED else ClaimState.ABANDONED
    if status is not None and status.is_terminal:
        return ClaimState.DONE
    return ClaimState.BUSY


class SmtpPhase(str, enum.Enum):
    """Where in the SMTP transaction an attempt ended (its reply, or the lack of one, belongs there)."""

    # Connecting, greeting, EHLO, STARTTLS, AUTH: the delivery path, nothing about this message yet.
    SESSION = "session"
    # MAIL FROM: the sender side, not the recipient.
    MAIL = "mail"
    # RCPT TO: about the recipient.
    RCPT = "rcpt"
    # The DATA command, before any of the content was written: nothing went out yet.
    DATA = "data"
    # The content was written: waiting for (or got) the final reply. No reply here is ambiguous.
    DATA_SENT = "data_sent"

    @property
    def is_path(self) -> bool:
        """A refusal here is about the delivery path (our relay, credentials, sender), not the recipient."""
        return self in (SmtpPhase.SESSION, SmtpPhase.MAIL)


@dataclass(frozen=True)
class SmtpAttempt:
    """What happened on the wire for one message."""

    # The server's reply code where the attempt ended; None when there was none (connection lost,
    # timeout, refused socket).
    code: int | None
    reply: str = ""
    # False when the batch ran out of time before this message was handed to a connection.
    attempted: bool = True
    # Where the transaction ended. The default, RCPT, is a reply about the recipient.
    phase: SmtpPhase = SmtpPhase.RCPT

    @property
    def ambiguous(self) -> bool:
        """The content went out and no final reply came back: the mail may or may not be delivered."""
        return self.attempted and self.phase is SmtpPhase.DATA_SENT and self.code is None

    @classmethod
    def not_attempted(cls, why: str = "batch out of time") -> SmtpAttempt:
        return cls(code=None, reply=f"not attempted: {why}", attempted=False)


@dataclass(frozen=True)
class Outcome:
    status: Status  # SENT, FAILED, RETRY or UNKNOWN
    smtp_code: int | None = None
    smtp_reply: str = ""
    reason: str = ""
    permanent: bool = False
    hard_bounce: bool = False
    # For RETRY: redeliver after this many seconds; None = the retry schedule's delay.
    retry_after: float | None = None
    # A delivery-path problem (sender refused, authentication, relay unreachable): never the
    # recipient's fault; its campaign is told why (DeliveryDeferred) while it is retried.
    path_problem: bool = False


def exhausted_outcome(recorded: Status, deliveries: int) -> Outcome:
    """The outcome to report for a message JetStream stopped delivering, given what the ledger
    recorded for it: `failed` (it never went out), or `unknown` (a send was abandoned mid-way)."""
    if recorded is Status.UNKNOWN:
        return Outcome(Status.UNKNOWN, reason=OUTCOME_UNKNOWN_REASON, permanent=False)
    return Outcome(Status.FAILED, reason=gave_up_reason(deliveries), permanent=False)


CANCELLED_REASON = "campaign cancelled before this recipient was sent to"
CANCELLED = Outcome(Status.CANCELLED, reason=CANCELLED_REASON)


def unbuildable(reason: str) -> Outcome:
    """No message can be built for this recipient (broken template, a bound exceeded, unusable
    address): retrying would build the same nothing, so it fails for good, without an SMTP reply
    and without a bounce."""
    return Outcome(Status.FAILED, reason=reason, permanent=True)
