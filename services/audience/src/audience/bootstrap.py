"""Wiring: the only module that knows the audience's concrete adapters."""

import sys
from pathlib import Path

from mailstify_contracts import topology
from mailstify_messaging import PullConsumer
from mailstify_servicekit import Connections, ServiceSpec, Wiring

from .adapters.unit_of_work import SqlAudienceUnitOfWork
from .config import Settings
from .entrypoints.consumers import bounces_handler
from .service_layer.dependencies import AudienceDependencies, UploadLimits
from .service_layer.imports import ImportJobs, OrphanedImportSweep

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
# An import parses in a worker thread while the event loop streams the previous chunk's COPY to
# PostgreSQL in 128 KiB writes, each one a wake-up of the loop that must take the GIL from the
# parser. With CPython's default 5 ms switch interval each wake-up waited up to 5 ms and PostgreSQL
# sat idle between writes: a million-row import took 17 s, 14.5 s at 0.5 ms (bench/import).
GIL_SWITCH_INTERVAL_SECONDS = 0.0005


def bootstrap(settings: Settings | None = None) -> ServiceSpec[AudienceDependencies]:
    settings = settings or Settings()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)

    def wire(connections: Connections) -> Wiring[AudienceDependencies]:
        def uow() -> SqlAudienceUnitOfWork:
            return SqlAudienceUnitOfWork(connections.new_transaction())

        jobs = ImportJobs(uow)
        dependencies = AudienceDependencies(
            uow=uow, imports=jobs, uploads=UploadLimits(settings.import_spool_dir, settings.import_max_bytes)
        )
        loops = [
            PullConsumer(connections.js, topology.AUDIENCE_BOUNCES, bounces_handler(dependencies)),
            OrphanedImportSweep(uow),
        ]
        return Wiring(dependencies, loops=loops, closers=[jobs.close])

    return ServiceSpec(
        name="audience",
        settings=settings,
        migrations=MIGRATIONS,
        wire=wire,
        consumers=(topology.AUDIENCE_BOUNCES,),
    )
