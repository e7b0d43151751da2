"""Wiring: builds the service's spec (settings, migrations, consumers) from its parts."""

from pathlib import Path

from mailstify_servicekit import Runtime, ServiceSpec, close_extras

from .adapters.content_store import KeyValueContentStore
from .adapters.smtp_pool import SmtpPool
from .config import Settings
from .entrypoints.consumers import delivery_consumer, exhausted_deliveries_listener
from .service_layer.campaigns import CampaignCache
from .service_layer.delivering import DeliveryPolicy, DeliveryService
from .service_layer.giving_up import GiveUpService
from .service_layer.unit_of_work import MailerUnitOfWork

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
SMTP_POOL = "smtp_pool"
DELIVERY_SERVICE = "delivery_service"
GIVE_UP_SERVICE = "give_up_service"


def bootstrap(settings: Settings | None = None) -> ServiceSpec:
    settings = settings or Settings()

    async def on_boot(runtime: Runtime) -> None:
        def unit_of_work() -> MailerUnitOfWork:
            return MailerUnitOfWork(runtime.uow())

        pool = SmtpPool(settings)
        runtime.extras[SMTP_POOL] = pool
        runtime.extras[DELIVERY_SERVICE] = DeliveryService(
            unit_of_work=unit_of_work,
            campaigns=CampaignCache(KeyValueContentStore(runtime.jetstream()), settings.content_refresh_seconds),
            sender=pool,
            policy=DeliveryPolicy(
                public_url=settings.public_url,
                secret_key=settings.secret_key.get_secret_value().encode(),
                lease_seconds=settings.lease_seconds,
                send_budget_seconds=settings.send_budget_seconds,
            ),
        )
        runtime.extras[GIVE_UP_SERVICE] = GiveUpService(unit_of_work)

    return ServiceSpec(
        name="mailer",
        settings=settings,
        migrations=MIGRATIONS,
        # Both are message loops: shutdown stops them and lets the batch or advisory in hand finish.
        consumers=lambda runtime: [
            delivery_consumer(runtime, runtime.extras[DELIVERY_SERVICE], settings.batch_size),
            exhausted_deliveries_listener(runtime, runtime.extras[GIVE_UP_SERVICE]),
        ],
        on_boot=on_boot,
        on_shutdown=close_extras(SMTP_POOL),
    )
