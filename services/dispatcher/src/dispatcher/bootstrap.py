"""Wiring: builds the service's spec (settings, migrations, consumers) from its parts."""

from pathlib import Path

from mailstify_servicekit import ServiceSpec

from .config import Settings

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def bootstrap(settings: Settings | None = None) -> ServiceSpec:
    return ServiceSpec(name="dispatcher", settings=settings or Settings(), migrations=MIGRATIONS)
