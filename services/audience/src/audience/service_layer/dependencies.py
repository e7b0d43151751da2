"""What the audience's entrypoints are given, built by `bootstrap.py` (the only module that knows the
concrete adapters)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .imports import ImportJobs
from .ports import AudienceUnitOfWork


@dataclass(frozen=True)
class UploadLimits:
    spool_dir: Path
    max_bytes: int


@dataclass(frozen=True)
class AudienceDependencies:
    uow: Callable[[], AudienceUnitOfWork]
    imports: ImportJobs
    uploads: UploadLimits
