"""What the mailer's entrypoints are given, built by `bootstrap.py` (the only module that knows the
concrete adapters)."""

from __future__ import annotations

from dataclasses import dataclass

from .handlers.delivery import DeliveryService
from .handlers.exhausted import GiveUpService


@dataclass(frozen=True)
class MailerDependencies:
    deliveries: DeliveryService
    exhausted: GiveUpService
