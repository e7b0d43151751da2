"""The campaign content bucket (JetStream KV): the dispatcher puts a campaign's content once per
send, every mailer reads it by the `content_key` each DeliverEmail carries — so the body travels
once per campaign, not once per recipient (ARCHITECTURE.md §4)."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from mailstify_contracts import CampaignContent, topology


@dataclass(frozen=True)
class StoredContent:
    content: CampaignContent
    # The KV revision: a reader recompiles its templates only when this changes.
    revision: int


class CampaignContentStore:
    def __init__(self, js: JetStreamContext, bucket: str = topology.CAMPAIGN_CONTENT.bucket):
        self._js = js
        self._bucket_name = bucket
        self._bucket: KeyValue | None = None

    async def _kv(self) -> KeyValue:
        if self._bucket is None:
            self._bucket = await self._js.key_value(self._bucket_name)
        return self._bucket

    async def put(self, key: str, content: CampaignContent) -> None:
        """Overwrite: a resumed fan-out repeats it harmlessly."""
        await (await self._kv()).put(key, content.model_dump_json().encode())

    async def get(self, key: str) -> StoredContent | None:
        """The content under `key`, None when absent or deleted. Raises on transport errors."""
        try:
            entry = await (await self._kv()).get(key)
        except KeyNotFoundError:  # includes deleted / purged keys
            return None
        if entry.value is None:
            return None
        return StoredContent(CampaignContent.model_validate_json(entry.value), entry.revision or 0)
