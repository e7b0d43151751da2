"""What the campaign service's entrypoints are given, built by `bootstrap.py` (the only module that
knows the concrete adapters)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .ports import CampaignUnitOfWork, ListDirectory, RecipientDirectory, MessageSettings


@dataclass(frozen=True)
class CampaignDependencies:
    uow: Callable[[], CampaignUnitOfWork]
    lists: ListDirectory
    recipients: RecipientDirectory
    links: MessageSettings
