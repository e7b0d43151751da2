"""What the dispatcher's entrypoints are given, built by `bootstrap.py` (the only module that knows
the concrete adapters)."""

from __future__ import annotations

from dataclasses import dataclass

from .handlers import Dispatcher, NamedRecipientSends


@dataclass(frozen=True)
class DispatcherDependencies:
    fanouts: Dispatcher
    named_sends: NamedRecipientSends
