"""Wiring: builds the service's spec (settings, migrations, the upstream client) from its parts."""

from pathlib import Path

from mailstify_servicekit import Runtime, ServiceSpec, close_extras

from .adapters.upstream import UPSTREAMS, Upstreams
from .config import Settings

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


async def open_upstreams(runtime: Runtime) -> None:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    runtime.extras[UPSTREAMS] = Upstreams(
        {"audience": settings.audience_url, "campaign": settings.campaign_url},
        settings.internal_token.get_secret_value(),
        settings.upstream_timeout_seconds,
    )


def bootstrap(settings: Settings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="gateway",
        settings=settings or Settings(),
        migrations=MIGRATIONS,
        on_boot=open_upstreams,
        on_shutdown=close_extras(UPSTREAMS),
    )
