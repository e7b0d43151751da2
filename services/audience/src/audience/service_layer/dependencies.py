"""What the audience's entrypoints are given, built by `bootstrap.py` (the only module that knows the
concrete adapters)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .ports import AudienceUnitOfWork


@dataclass(frozen=True)
class AudienceDependencies:
    uow: Callable[[], AudienceUnitOfWork]
