"""Wiring: the only module that knows the audience's concrete adapters."""

from pathlib import Path

from mailstify_servicekit import Connections, ServiceSpec, Wiring

from .adapters.unit_of_work import SqlAudienceUnitOfWork
from .config import Settings
from .service_layer.dependencies import AudienceDependencies

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def bootstrap(settings: Settings | None = None) -> ServiceSpec[AudienceDependencies]:
    def wire(connections: Connections) -> Wiring[AudienceDependencies]:
        return Wiring(AudienceDependencies(uow=lambda: SqlAudienceUnitOfWork(connections.new_transaction())))

    return ServiceSpec(name="audience", settings=settings or Settings(), migrations=MIGRATIONS, wire=wire)
