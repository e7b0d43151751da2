"""Campaign control states, read from the CAMPAIGN_CONTROL bucket one key at a time (once per page)."""

from __future__ import annotations

from nats.js import JetStreamContext

from mailstify_contracts import ControlState
from mailstify_messaging.control import read_control_state


class KeyValueCampaignControl:
    def __init__(self, js: JetStreamContext):
        self._js = js

    async def state(self, campaign_id: str) -> ControlState:
        return await read_control_state(self._js, campaign_id)
