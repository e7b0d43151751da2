"""Wiring: builds the service's spec (settings, migrations, consumers) from its parts."""

from pathlib import Path

from mailstify_contracts import topology
from mailstify_messaging import PullConsumer
from mailstify_servicekit import InternalClient, Runtime, ServiceSpec, close_extras

from .adapters.audience import AudienceRecipients
from .adapters.jetstream import KeyValueContentStore, MailQueuePublisher
from .adapters.unit_of_work import SqlFanoutUnitOfWork
from .config import Settings
from .entrypoints.consumers import send_requested_handler
from .service_layer.fanout import Dispatcher

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
AUDIENCE_CLIENT = "audience_client"


def _consumers(runtime: Runtime) -> list[PullConsumer]:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    client = InternalClient(settings.audience_url, settings.internal_token.get_secret_value())
    runtime.extras[AUDIENCE_CLIENT] = client
    js = runtime.jetstream()
    dispatcher = Dispatcher(
        new_uow=lambda: SqlFanoutUnitOfWork(runtime.uow()),
        recipients=AudienceRecipients(client),
        publisher=MailQueuePublisher(js),
        content=KeyValueContentStore(js),
        page_size=settings.fanout_page_size,
    )
    return [PullConsumer(js, topology.DISPATCHER_SEND_REQUESTS, send_requested_handler(dispatcher))]



def bootstrap(settings: Settings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="dispatcher",
        settings=settings or Settings(),
        migrations=MIGRATIONS,
        consumers=_consumers,
        on_shutdown=close_extras(AUDIENCE_CLIENT),
    )
