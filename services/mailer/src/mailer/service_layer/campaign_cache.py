"""Prepared campaigns, cached in memory per content key: the body is fetched and its templates and
MIME skeleton built once per campaign, not once per recipient."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mailstify_rendering import DEFAULT_HEADER_OPTIONS, HeaderOptions, PreparedCampaign, RenderError

from .ports import ContentSource, VersionedContent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unavailable:
    """Why no campaign could be prepared. `permanent`: the content itself is unusable (retrying
    cannot help); otherwise it may appear or the store may come back."""

    reason: str
    permanent: bool


@dataclass
class _Entry:
    revision: int
    prepared: PreparedCampaign | Unavailable
    checked_at: float


class CampaignCache:
    def __init__(
        self,
        source: ContentSource,
        refresh_seconds: float,
        max_campaigns: int = 256,
        clock: Callable[[], float] = time.monotonic,
        header_options: HeaderOptions = DEFAULT_HEADER_OPTIONS,
    ):
        self._source = source
        self._header_options = header_options
        self._refresh_seconds = refresh_seconds
        self._max_campaigns = max_campaigns
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    async def prepare_all(self, keys: Iterable[str]) -> dict[str, PreparedCampaign | Unavailable]:
        return {key: await self.prepare(key) for key in set(keys)}

    async def prepare(self, key: str) -> PreparedCampaign | Unavailable:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry.checked_at < self._refresh_seconds:
            self._entries.move_to_end(key)
            return entry.prepared
        try:
            stored = await self._source.get(key)
        except Exception as exc:  # store unreachable: a cached version is still the campaign's content
            log.warning("cannot read campaign content %s: %s", key, exc)
            return entry.prepared if entry else Unavailable(f"campaign content unavailable: {exc}", permanent=False)
        if stored is None:
            self._entries.pop(key, None)
            return Unavailable(f"campaign content {key!r} not found", permanent=False)
        if entry is None or entry.revision != stored.revision:
            entry = _Entry(stored.revision, _prepare(stored, self._header_options), now)
        entry.checked_at = now
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_campaigns:
            self._entries.popitem(last=False)
        return entry.prepared


def _prepare(stored: VersionedContent, header_options: HeaderOptions) -> PreparedCampaign | Unavailable:
    try:
        return PreparedCampaign.prepare(stored.content, options=header_options)
    except RenderError as exc:
        return Unavailable(str(exc), permanent=True)
