"""Streams, durable consumers and the content bucket: declared once, here; `mailstify_messaging`
turns them into JetStream configuration. Plain data so that the contracts stay free of client code.

Numbers follow ARCHITECTURE.md §5: CAMPAIGN is replayable history, MAIL a work queue that refuses
new messages when full (back-pressure reaches the dispatcher), RESULT keeps outcomes so counts can be
rebuilt by replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from . import subjects

DAY = 24 * 3600.0


class Retention(str, Enum):
    LIMITS = "limits"
    WORK_QUEUE = "workqueue"


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    retention: Retention = Retention.LIMITS
    max_age_seconds: float | None = None
    duplicate_window_seconds: float = 30 * 60
    max_bytes: int | None = None
    max_msgs: int | None = None
    discard_new: bool = False


@dataclass(frozen=True)
class ConsumerSpec:
    stream: str
    durable: str
    filter_subjects: tuple[str, ...]
    # Must exceed the longest time one batch can take (SMTP timeout × batch for the mailer).
    ack_wait_seconds: float = 60.0
    max_deliver: int = 10
    max_ack_pending: int = 10_000
    # Advisory only: the consumer's pull batch size in our loops.
    batch_size: int = 100
    # How long a short batch waits for more messages before it is handled: a handler whose cost is
    # per batch (a transaction, a lock) then pays it per hundreds of messages rather than per few,
    # when they trickle in (mailers commit outcomes a wave at a time).
    linger_seconds: float = 0.0


@dataclass(frozen=True)
class KeyValueSpec:
    bucket: str
    history: int = 1
    ttl_seconds: float | None = None
    description: str = field(default="")


CAMPAIGN_STREAM = StreamSpec(
    name="CAMPAIGN",
    subjects=("campaign.>", "audience.>"),
    max_age_seconds=14 * DAY,
)
MAIL_STREAM = StreamSpec(
    name="MAIL",
    subjects=(subjects.MAIL_DELIVER_ALL,),
    retention=Retention.WORK_QUEUE,
    # NATS keeps every msg id of the window in memory (~300 bytes each at peak RSS): 30 minutes held
    # a whole 1M-recipient campaign's ids (NATS at 411 MiB; 202 with 2 minutes, decision 0021), and
    # the ids held grow with the send rate (decision 0028). One minute covers what de-duplication is
    # for here, the dispatcher republishing its recorded page on resume (ack wait 10 s, resumed ~8 s
    # after a kill); a later copy is still absorbed by the mailer's ledger claim, never sent twice.
    duplicate_window_seconds=60,
    max_msgs=5_000_000,
    max_bytes=4 * 1024**3,
    discard_new=True,
)
RESULT_STREAM = StreamSpec(
    name="RESULT",
    subjects=(subjects.MAIL_RESULT_ALL,),
    max_age_seconds=30 * DAY,
    # One msg id per recipient, as on MAIL: 30 minutes held a whole 1M-recipient campaign's ids in
    # NATS's memory (NATS at 495 MB, decision 0025), and the ids held grow with the send rate. One
    # minute covers the outbox relay publishing again after a lost ack (10 s timeout) or a restart; a
    # later copy (a give-up after a normal outcome) is counted nowhere by the campaign service's
    # ledger, which inserts each (campaign, subscriber, round) once.
    duplicate_window_seconds=60,
)
STREAMS: tuple[StreamSpec, ...] = (CAMPAIGN_STREAM, MAIL_STREAM, RESULT_STREAM)

DISPATCHER_SEND_REQUESTS = ConsumerSpec(
    stream="CAMPAIGN",
    durable="dispatcher-send-requested",
    filter_subjects=(subjects.CAMPAIGN_SEND_REQUESTED,),
    # A fan-out of a large list runs for minutes; the dispatcher resets the deadline every third of
    # it while it works (waits for room in MAIL included), so a send request whose dispatcher died is
    # delivered again, and its fan-out resumed, within ~10 s of the death plus a restart (0021).
    ack_wait_seconds=10.0,
    # Never exhausted by JetStream: a dropped send request would leave its campaign `sending` forever.
    # The dispatcher counts the deliveries itself and, after `fanout_max_attempts`, marks the fan-out
    # failed and reports FanoutFailed (decision 0007), then acks.
    max_deliver=-1,
    max_ack_pending=100,
    batch_size=1,
)
# Test sends and retry-failed rounds: small, quick requests, on a durable of their own so they never
# wait behind a long fan-out. Never exhausted (as the send requests): a dropped requeue would leave
# its recipients unretried and the campaign waiting for their outcomes.
DISPATCHER_NAMED_SENDS = ConsumerSpec(
    stream="CAMPAIGN",
    durable="dispatcher-named-sends",
    filter_subjects=(subjects.CAMPAIGN_TEST_SEND_REQUESTED, subjects.CAMPAIGN_RECIPIENTS_REQUEUED),
    max_deliver=-1,
    batch_size=20,
)
MAILER_DELIVERIES = ConsumerSpec(
    stream="MAIL",
    durable="mailer-deliver",
    filter_subjects=(subjects.MAIL_DELIVER_ALL,),
    # Short, so that a dead mailer's deliveries are redelivered to another replica within seconds; a
    # live mailer keeps the batch in hand from being redelivered with progress signals.
    ack_wait_seconds=20.0,
    # The default retry schedule's deliveries (mailstify_messaging.retry.DEFAULT_RETRY_SCHEDULE: six
    # delays, ≥ 42 minutes). The mailer declares this consumer with max_deliver from its configured
    # schedule (`Settings.deliveries_consumer`); this is the default it replaces.
    max_deliver=7,
    max_ack_pending=20_000,
    batch_size=200,
)
# The campaign service's consumers never give up (max_deliver -1): a dropped total or outcome would
# leave its campaign `sending` forever, and their handlers are idempotent, so a redelivery after a
# long database outage costs nothing. Undecodable messages are still terminated at once.
CAMPAIGN_FANOUTS = ConsumerSpec(
    stream="CAMPAIGN",
    durable="campaign-fanout-ended",
    filter_subjects=(subjects.CAMPAIGN_FANOUT_COMPLETED, subjects.CAMPAIGN_FANOUT_FAILED),
    max_deliver=-1,
    batch_size=50,
)
CAMPAIGN_RESULTS = ConsumerSpec(
    stream="RESULT",
    durable="campaign-results",
    filter_subjects=(subjects.MAIL_RESULT_ALL,),
    max_deliver=-1,
    batch_size=500,
    linger_seconds=0.1,
)
CAMPAIGN_UNSUBSCRIBES = ConsumerSpec(
    stream="CAMPAIGN",
    durable="campaign-unsubscribes",
    filter_subjects=(subjects.AUDIENCE_SUBSCRIBER_UNSUBSCRIBED,),
    max_deliver=-1,
    batch_size=100,
)
# Hard bounces suppress the address (idempotent: an address is suppressed once); never gives up, a
# dropped bounce would let the next campaign mail a dead address again.
AUDIENCE_BOUNCES = ConsumerSpec(
    stream="RESULT",
    durable="audience-bounces",
    filter_subjects=(subjects.MAIL_RESULT_FAILED,),
    max_deliver=-1,
    batch_size=200,
)
CONSUMERS: tuple[ConsumerSpec, ...] = (
    DISPATCHER_SEND_REQUESTS,
    DISPATCHER_NAMED_SENDS,
    MAILER_DELIVERIES,
    CAMPAIGN_FANOUTS,
    CAMPAIGN_RESULTS,
    CAMPAIGN_UNSUBSCRIBES,
    AUDIENCE_BOUNCES,
)

CAMPAIGN_CONTENT = KeyValueSpec(
    bucket="CAMPAIGN_CONTENT",
    description="Campaign content, written once by the dispatcher and read by every mailer.",
)
# No TTL: a paused campaign must stay paused however long its owner leaves it.
CAMPAIGN_CONTROL = KeyValueSpec(
    bucket=subjects.CAMPAIGN_CONTROL_BUCKET,
    description="Per campaign: active, paused or cancelled; written by the campaign service's outbox.",
)
KEY_VALUE_BUCKETS: tuple[KeyValueSpec, ...] = (CAMPAIGN_CONTENT, CAMPAIGN_CONTROL)
