"""Wiring: the only module that knows the campaign service's concrete adapters."""

from pathlib import Path

from mailstify_contracts import topology
from mailstify_messaging import PullConsumer
from mailstify_servicekit import Connections, InternalClient, ServiceSpec, Wiring
from mailstify_servicekit.periodic import PeriodicLoop

from .adapters.audience import AudienceLists
from .adapters.unit_of_work import SqlCampaignUnitOfWork
from .config import Settings
from .entrypoints.consumers import delivery_outcomes_handler, fanout_ended_handler, unsubscribes_handler
from .service_layer.handlers import control
from .service_layer.dependencies import CampaignDependencies
from .service_layer.ports import MessageSettings

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def bootstrap(settings: Settings | None = None) -> ServiceSpec[CampaignDependencies]:
    settings = settings or Settings()

    def wire(connections: Connections) -> Wiring[CampaignDependencies]:
        audience = InternalClient(settings.audience_url, settings.internal_token.get_secret_value())
        dependencies = CampaignDependencies(
            uow=lambda: SqlCampaignUnitOfWork(connections.new_transaction()),
            lists=AudienceLists(audience),
            recipients=AudienceLists(audience),
            links=MessageSettings(
                settings.public_url, settings.secret_key.get_secret_value().encode(), settings.header_options
            ),
        )
        loops = [
            PullConsumer(connections.js, topology.CAMPAIGN_FANOUTS, fanout_ended_handler(dependencies)),
            PullConsumer(connections.js, topology.CAMPAIGN_RESULTS, delivery_outcomes_handler(dependencies)),
            PullConsumer(connections.js, topology.CAMPAIGN_UNSUBSCRIBES, unsubscribes_handler(dependencies)),
            # The schedule is the campaigns' `send_at` column: a restart loses nothing, and SKIP LOCKED
            # lets replicas share the work.
            PeriodicLoop(
                "starting scheduled campaigns",
                lambda: control.start_all_due(dependencies.uow),
                settings.schedule_poll_seconds,
            ),
        ]
        return Wiring(dependencies, loops=loops, closers=[audience.aclose])

    return ServiceSpec(
        name="campaign",
        settings=settings,
        migrations=MIGRATIONS,
        wire=wire,
        consumers=(topology.CAMPAIGN_FANOUTS, topology.CAMPAIGN_RESULTS, topology.CAMPAIGN_UNSUBSCRIBES),
    )
