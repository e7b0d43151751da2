"""Wiring: the only module that knows the mailer's concrete adapters."""

import functools
from pathlib import Path

from mailstify_messaging.content import CampaignContentStore
from mailstify_messaging.control import CampaignControlBoard
from mailstify_servicekit import Connections, ServiceSpec, Wiring
from mailstify_servicekit.periodic import PeriodicLoop

from .adapters.dkim import DkimSigner, SigningSender
from .adapters.rate_limit import PostgresRateLimiter
from .adapters.smtp_pool import SmtpPool
from .adapters.unit_of_work import SqlMailerUnitOfWork
from .config import Settings
from .entrypoints.consumers import delivery_consumer, exhausted_deliveries
from .service_layer.campaign_cache import CampaignCache
from .service_layer.dependencies import MailerDependencies
from .service_layer.handlers.delivery import DeliveryPolicy, DeliveryService
from .service_layer.handlers.exhausted import GiveUpService
from .service_layer.ports import MailerUnitOfWork, Sender
from .service_layer.rate_limiting import RateLimitedSender, admit

MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def bootstrap(settings: Settings | None = None) -> ServiceSpec[MailerDependencies]:
    settings = settings or Settings()
    # The deliveries consumer gives up exactly when the configured retry schedule does.
    consumer = settings.deliveries_consumer
    # Loaded once (and an unusable key refused) before anything connects.
    signer = (
        DkimSigner(settings.dkim_selector, settings.dkim_domain, settings.dkim_private_key_pem())
        if settings.dkim_selector and settings.dkim_domain
        else None
    )

    def wire(connections: Connections) -> Wiring[MailerDependencies]:
        def unit_of_work() -> MailerUnitOfWork:
            return SqlMailerUnitOfWork(connections.new_transaction())

        def single_statement() -> MailerUnitOfWork:
            return SqlMailerUnitOfWork(connections.new_single_statement())

        pool = SmtpPool(settings)
        sender: Sender = pool if signer is None else SigningSender(pool, signer)
        # The shared send rate limit, only when one is configured: unlimited costs nothing.
        limiter = (
            PostgresRateLimiter(connections.engine, settings.rate_limits, settings.throttle_policy)
            if settings.rate_limits.configured
            else None
        )
        # Tokens are taken before a wave is marked `sending` (DeliveryService's `admit`); the sender
        # only reports throttling replies.
        limited = RateLimitedSender(sender, limiter, acquire=False) if limiter is not None else None
        sender = limited or sender

        def stop_starting() -> None:
            pool.stop_starting()
            if limited is not None:
                limited.stop_starting()
        control = CampaignControlBoard(connections.js)
        dependencies = MailerDependencies(
            deliveries=DeliveryService(
                unit_of_work=unit_of_work,
                campaigns=CampaignCache(
                    CampaignContentStore(connections.js),
                    settings.content_refresh_seconds,
                    header_options=settings.header_options,
                ),
                sender=sender,
                policy=DeliveryPolicy(
                    public_url=settings.public_url,
                    secret_key=settings.secret_key.get_secret_value().encode(),
                    lease_seconds=settings.lease_seconds,
                    sending_lease_seconds=settings.sending_lease_seconds,
                    pool_size=settings.smtp_pool_size,
                    record_patience_seconds=settings.record_patience_seconds,
                    retry_schedule=settings.retry_schedule,
                ),
                control=control,
                admit=functools.partial(admit, limiter) if limiter is not None else None,
                single_statement=single_statement,
            ),
            exhausted=GiveUpService(unit_of_work),
        )
        # Message loops: shutdown stops them and lets the batch or advisory in hand finish.
        loops = [
            control,
            # Polling the held table, not only reacting to the watch, also releases what a replica
            # held just before it died.
            PeriodicLoop(
                "releasing held deliveries", dependencies.deliveries.holds.release_unpaused, settings.hold_release_seconds
            ),
            delivery_consumer(connections.js, dependencies, settings.batch_size, consumer),
            exhausted_deliveries(
                connections.nc, connections.js, dependencies, consumer, sweep_interval=settings.exhausted_sweep_seconds
            ),
        ]
        # On stop, the batch in hand starts no new SMTP transaction: what is in flight finishes (within
        # the shutdown grace, which covers smtp_timeout), the rest is recorded `retry` and nak'ed at
        # once, so another replica sends it instead of its lease expiring into `unknown`.
        return Wiring(dependencies, loops=loops, closers=[pool.aclose], on_stopping=stop_starting)

    return ServiceSpec(
        name="mailer",
        settings=settings,
        migrations=MIGRATIONS,
        wire=wire,
        consumers=(consumer,),
    )
