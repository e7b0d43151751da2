"""What the gateway's entrypoints are given, built by `bootstrap.py` (the only module that knows the
concrete adapters)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import Settings
from .live import LiveStreams
from .ports import GatewayUnitOfWork, Upstreams
from .web_ports import WebBackends


@dataclass(frozen=True)
class GatewayDependencies:
    settings: Settings
    uow: Callable[[], GatewayUnitOfWork]
    upstreams: Upstreams
    live_streams: LiveStreams
    web: WebBackends
