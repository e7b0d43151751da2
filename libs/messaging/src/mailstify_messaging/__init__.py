"""Messaging shared by every service: NATS connection, JetStream topology, publishing with msg ids and
trace context, the batch pull-consume loop and the transactional outbox."""

from .connection import connect
from .consuming import BatchHandler, Delivery, PullConsumer, Verdict, kept_in_progress
from .exhausted import (
    ExhaustedHandler,
    ExhaustedMessage,
    ExhaustedMessageListener,
    ExhaustedMessages,
    ExhaustedMessageSweep,
    UnsupportedStream,
    max_deliveries_subject,
)
from .outbox import OutboxArrays, OutboxRelay, add_to_outbox, outbox
from .publishing import OutgoingMessage, PublishTimeout, publish, publish_many
from .retry import DEFAULT_RETRY_SCHEDULE, RetrySchedule, backoff_delay
from .topology import ensure_topology

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "BatchHandler",
    "Delivery",
    "ExhaustedHandler",
    "ExhaustedMessage",
    "ExhaustedMessageListener",
    "ExhaustedMessageSweep",
    "ExhaustedMessages",
    "OutboxRelay",
    "OutgoingMessage",
    "PublishTimeout",
    "PullConsumer",
    "kept_in_progress",
    "RetrySchedule",
    "UnsupportedStream",
    "Verdict",
    "OutboxArrays",
    "add_to_outbox",
    "backoff_delay",
    "connect",
    "ensure_topology",
    "max_deliveries_subject",
    "outbox",
    "publish",
    "publish_many",
]
