"""Wiring: the only module that knows the gateway's concrete adapters."""

from pathlib import Path

from mailstify_servicekit import Connections, ServiceSpec, Wiring

from .adapters.unit_of_work import SqlGatewayUnitOfWork
from .adapters.upstream import HttpUpstreams
from .config import Settings
from .service_layer.dependencies import GatewayDependencies

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def bootstrap(settings: Settings | None = None) -> ServiceSpec[GatewayDependencies]:
    settings = settings or Settings()

    def wire(connections: Connections) -> Wiring[GatewayDependencies]:
        upstreams = HttpUpstreams(
            {"audience": settings.audience_url, "campaign": settings.campaign_url},
            settings.internal_token.get_secret_value(),
            settings.upstream_timeout_seconds,
        )
        dependencies = GatewayDependencies(
            settings=settings,
            uow=lambda: SqlGatewayUnitOfWork(connections.new_transaction()),
            upstreams=upstreams,
        )
        return Wiring(dependencies, closers=[upstreams.aclose])

    return ServiceSpec(name="gateway", settings=settings, migrations=MIGRATIONS, wire=wire)
