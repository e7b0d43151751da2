"""Structured logs: one JSON object per line, carrying the current trace and span ids, the replica,
and the campaign the line is about when one is known: an explicit `extra={"campaign_id": ...}`,
else `log_context.campaign_context`, else the current span's `campaign.id` attribute."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from opentelemetry import trace

from .log_context import current_campaign_id
from .telemetry import INSTANCE_ID

_RESERVED = set(vars(logging.makeLogRecord({})))
CAMPAIGN_ATTRIBUTE = "campaign.id"


def _campaign_of(span: trace.Span) -> str | None:
    campaign_id = current_campaign_id()
    if campaign_id is not None:
        return campaign_id
    # A recording SDK span exposes its attributes; the API's non-recording span has none.
    attributes = getattr(span, "attributes", None)
    value = attributes.get(CAMPAIGN_ATTRIBUTE) if attributes else None
    return str(value) if value is not None else None


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "instance": INSTANCE_ID,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span()
        context = span.get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        campaign_id = _campaign_of(span)
        if campaign_id is not None:
            entry["campaign_id"] = campaign_id
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "nats", "aiosmtpd", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
