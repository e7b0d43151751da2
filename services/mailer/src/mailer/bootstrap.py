"""Wiring: builds the service's spec (settings, migrations, consumers) from its parts."""

from pathlib import Path

from mailstify_servicekit import Runtime, ServiceSpec, close_extras

from .adapters.content_store import KeyValueContentStore
from .adapters.smtp_pool import SmtpPool
from .config import Settings
from .entrypoints.consumers import delivery_consumer
from .service_layer.campaigns import CampaignCache
from .service_layer.delivering import DeliveryPolicy, DeliveryService
from .service_layer.unit_of_work import MailerUnitOfWork

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
SMTP_POOL = "smtp_pool"
DELIVERY_SERVICE = "delivery_service"


def bootstrap(settings: Settings | None = None) -> ServiceSpec:
    settings = settings or Settings()

    async def on_boot(runtime: Runtime) -> None:
        pool = SmtpPool(settings)
        runtime.extras[SMTP_POOL] = pool
        runtime.extras[DELIVERY_SERVICE] = DeliveryService(
            unit_of_work=lambda: MailerUnitOfWork(runtime.uow()),
            campaigns=CampaignCache(KeyValueContentStore(runtime.jetstream()), settings.content_refresh_seconds),
            sender=pool,
            policy=DeliveryPolicy(
                public_url=settings.public_url,
                secret_key=settings.secret_key.get_secret_value().encode(),
                lease_seconds=settings.lease_seconds,
                send_budget_seconds=settings.send_budget_seconds,
            ),
        )

    return ServiceSpec(
        name="mailer",
        settings=settings,
        migrations=MIGRATIONS,
        consumers=lambda runtime: [
            delivery_consumer(runtime, runtime.extras[DELIVERY_SERVICE], settings.batch_size)
        ],
        on_boot=on_boot,
        on_shutdown=close_extras(SMTP_POOL),
    )
