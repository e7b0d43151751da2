"""Wiring: builds the service's spec (settings, migrations, consumers) from its parts."""

from pathlib import Path

from mailstify_contracts import topology
from mailstify_messaging import PullConsumer
from mailstify_servicekit import InternalClient, Runtime, ServiceSpec, close_extras

from .adapters.audience import AudienceLists
from .adapters.unit_of_work import SqlCampaignUnitOfWork
from .config import Settings
from .entrypoints.api import AUDIENCE_LISTS
from .entrypoints.consumers import delivery_outcomes_handler, fanout_completed_handler

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
AUDIENCE_CLIENT = "audience_client"


async def _connect_audience(runtime: Runtime) -> None:
    client = InternalClient(runtime.settings.audience_url, runtime.settings.internal_token.get_secret_value())
    runtime.extras[AUDIENCE_CLIENT] = client
    runtime.extras[AUDIENCE_LISTS] = AudienceLists(client)


def _consumers(runtime: Runtime) -> list[PullConsumer]:
    def new_uow() -> SqlCampaignUnitOfWork:
        return SqlCampaignUnitOfWork(runtime.uow())

    return [
        PullConsumer(runtime.jetstream(), topology.CAMPAIGN_FANOUTS, fanout_completed_handler(new_uow)),
        PullConsumer(runtime.jetstream(), topology.CAMPAIGN_RESULTS, delivery_outcomes_handler(new_uow)),
    ]


def bootstrap(settings: Settings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="campaign",
        settings=settings or Settings(),
        migrations=MIGRATIONS,
        consumers=_consumers,
        on_boot=_connect_audience,
        on_shutdown=close_extras(AUDIENCE_CLIENT),
    )
