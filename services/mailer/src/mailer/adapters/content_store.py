"""Campaign content from the JetStream KV bucket the dispatcher writes once per campaign."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from mailstify_contracts import CampaignContent, topology


@dataclass(frozen=True)
class StoredContent:
    content: CampaignContent
    # KV revision: content is recompiled only when it changes.
    revision: int


class KeyValueContentStore:
    def __init__(self, js: JetStreamContext, bucket: str = topology.CAMPAIGN_CONTENT.bucket):
        self._js = js
        self._bucket_name = bucket
        self._bucket: KeyValue | None = None

    async def get(self, key: str) -> StoredContent | None:
        """The content under `key`, None when absent or deleted. Raises on transport errors."""
        if self._bucket is None:
            self._bucket = await self._js.key_value(self._bucket_name)
        try:
            entry = await self._bucket.get(key)
        except KeyNotFoundError:  # includes deleted / purged keys
            return None
        if entry.value is None:
            return None
        return StoredContent(CampaignContent.model_validate_json(entry.value), entry.revision or 0)
