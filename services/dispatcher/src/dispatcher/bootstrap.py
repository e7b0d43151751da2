"""Wiring: the only module that knows the dispatcher's concrete adapters."""

from pathlib import Path

from mailstify_contracts import topology
from mailstify_messaging import PullConsumer
from mailstify_messaging.content import CampaignContentStore
from mailstify_servicekit import Connections, InternalClient, ServiceSpec, Wiring

from .adapters.audience import AudienceRecipients
from .adapters.control import KeyValueCampaignControl
from .adapters.mail_queue import MailQueueBacklog, MailQueuePublisher
from .adapters.unit_of_work import SqlFanoutUnitOfWork
from .config import Settings
from .entrypoints.consumers import named_sends_handler, send_requested_handler
from .service_layer.dependencies import DispatcherDependencies
from .service_layer.handlers import Dispatcher, NamedRecipientSends

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def bootstrap(settings: Settings | None = None) -> ServiceSpec[DispatcherDependencies]:
    settings = settings or Settings()

    def wire(connections: Connections) -> Wiring[DispatcherDependencies]:
        audience = InternalClient(settings.audience_url, settings.internal_token.get_secret_value())
        publisher = MailQueuePublisher(connections.js)
        content = CampaignContentStore(connections.js)
        dependencies = DispatcherDependencies(
            fanouts=Dispatcher(
                new_uow=lambda: SqlFanoutUnitOfWork(connections.new_transaction()),
                recipients=AudienceRecipients(audience),
                publisher=publisher,
                content=content,
                control=KeyValueCampaignControl(connections.js),
                backlog=MailQueueBacklog(connections.js),
                page_size=settings.fanout_page_size,
                window=settings.fanout_window,
                max_attempts=settings.fanout_max_attempts,
            ),
            named_sends=NamedRecipientSends(publisher=publisher, content=content),
        )
        loops = [
            PullConsumer(
                connections.js,
                settings.send_requests_consumer,
                send_requested_handler(dependencies, settings.fanout_heartbeat_seconds),
            ),
            PullConsumer(connections.js, topology.DISPATCHER_NAMED_SENDS, named_sends_handler(dependencies)),
        ]
        return Wiring(dependencies, loops=loops, closers=[audience.aclose])

    return ServiceSpec(
        name="dispatcher",
        settings=settings,
        migrations=MIGRATIONS,
        wire=wire,
        consumers=(settings.send_requests_consumer, topology.DISPATCHER_NAMED_SENDS),
    )
