"""The envelope every event on the wire carries.

Events are immutable facts: frozen pydantic models, serialised as JSON. The envelope fields let any
consumer deduplicate (`event_id`), route (`type`, `version`) and scope (`account_id`) a message
without knowing its payload. Trace context travels in NATS headers, never in the body.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from .clock import utcnow


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    # Each concrete event narrows `type` to a Literal with itself as default, so producers never
    # spell it and the JSON Schema names it exactly.
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=utcnow)
    account_id: str

    @classmethod
    def wire_type(cls) -> str:
        return cls.model_fields["type"].default

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
