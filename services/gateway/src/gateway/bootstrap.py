"""Wiring: the only module that knows the gateway's concrete adapters."""

from pathlib import Path

import httpx

from mailstify_servicekit import Connections, ServiceSpec, Wiring

from .adapters.event_feed import NatsEventFeed
from .adapters.service_api import HttpAudienceApi, HttpCampaignApi, HttpInboxReader, ServiceApi
from .adapters.stop_signals import call_on_stop_signal
from .adapters.unit_of_work import SqlGatewayUnitOfWork
from .adapters.upstream import HttpUpstreams
from .config import Settings
from .service_layer.dependencies import GatewayDependencies
from .service_layer.live import LiveStreams
from .service_layer.web_ports import WebBackends

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def bootstrap(settings: Settings | None = None) -> ServiceSpec[GatewayDependencies]:
    settings = settings or Settings()

    def wire(connections: Connections) -> Wiring[GatewayDependencies]:
        upstreams = HttpUpstreams(
            {"audience": settings.audience_url, "campaign": settings.campaign_url},
            settings.internal_token.get_secret_value(),
            settings.upstream_timeout_seconds,
        )
        pages_client = httpx.AsyncClient(follow_redirects=False)
        live_streams = LiveStreams(
            min_interval=settings.event_stream_min_interval_seconds,
            heartbeat_seconds=settings.event_stream_heartbeat_seconds,
            retry_milliseconds=settings.event_stream_retry_milliseconds,
        )
        dependencies = GatewayDependencies(
            settings=settings,
            uow=lambda: SqlGatewayUnitOfWork(connections.new_transaction()),
            upstreams=upstreams,
            live_streams=live_streams,
            web=web_backends(settings, pages_client),
        )
        restore_signals = call_on_stop_signal(live_streams.close)
        return Wiring(
            dependencies,
            loops=[NatsEventFeed(connections.nc, live_streams.publish, live_streams.missed_some)],
            closers=[restore_signals, upstreams.aclose, pages_client.aclose],
            # Ends the streams where no stop signal reached us first (a server inside a test).
            on_stopping=live_streams.close,
        )

    return ServiceSpec(name="gateway", settings=settings, migrations=MIGRATIONS, wire=wire)


def web_backends(settings: Settings, client: httpx.AsyncClient) -> WebBackends:
    token, timeout = settings.internal_token.get_secret_value(), settings.page_timeout_seconds
    return WebBackends(
        audience=HttpAudienceApi(ServiceApi(client, "audience", settings.audience_url, token, timeout)),
        campaigns=HttpCampaignApi(ServiceApi(client, "campaign", settings.campaign_url, token, timeout)),
        inbox=HttpInboxReader(client, settings.inbox_url, timeout) if settings.inbox_url else None,
    )
