import dataclasses
from pathlib import Path
from typing import Annotated, Literal

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from mailstify_contracts import topology
from mailstify_contracts.topology import ConsumerSpec
from mailstify_messaging.retry import DEFAULT_RETRY_SCHEDULE, RetrySchedule
from mailstify_rendering import HeaderOptions
from mailstify_servicekit.settings import MessageHeaderSettings, ServiceSettings

from .domain.rate_limit import RateLimits, ThrottlePolicy, parse_domain_rates

# Where mail goes in development when no SMTP server is configured: the devstack's inbox.
DEV_INBOX_HOST = "127.0.0.1"
DEV_INBOX_PORT = 1025

# Time kept, after an SMTP transaction's own timeout, for recording its outcome before the lease of a
# claim on the wire runs out.
RECORD_MARGIN_SECONDS = 10.0
# A stopping mailer starts no new SMTP transaction but lets those in flight finish: unless set, its
# shutdown grace is one transaction (smtp_timeout) plus this, for recording the outcomes and settling.
SHUTDOWN_RECORD_SECONDS = 15.0
SHUTDOWN_GRACE_LIMIT_SECONDS = 300.0

SmtpTls = Literal["none", "starttls", "tls"]


class Settings(ServiceSettings, MessageHeaderSettings):

    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: SmtpTls = "none"
    # Per SMTP transaction, connecting included.
    smtp_timeout: float = 30.0
    # Persistent connections per replica; a batch's messages are spread over all of them, in waves
    # of half the pool, so at most this many recipients are on the wire at once.
    smtp_pool_size: int = 32
    # Messages one connection carries before it is closed and a fresh one opened (servers that drop
    # a session after N messages); None: as many as the server takes.
    smtp_max_messages_per_connection: int | None = None
    # PEM bundle of the CAs trusted for the SMTP server's certificate (a relay with a private CA);
    # None: the system's trust store.
    smtp_ca_file: Path | None = None

    # DKIM signing (RFC 6376, rsa-sha256) of every message, when selector, domain and a key are set.
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    # The RSA private key, PEM (PKCS#1 or PKCS#8): inline, or the path of a file holding it.
    dkim_private_key: SecretStr | None = None
    dkim_private_key_file: Path | None = None

    batch_size: int = topology.MAILER_DELIVERIES.batch_size
    # How long a claim not yet on the wire belongs to this replica (renewed while the batch is being
    # sent). After a crash, another replica sends those recipients once it ran out: kept below the
    # consumer's ack_wait, so that the redelivery after a crash finds the lease expired.
    lease_seconds: float = 15.0
    # How long outcomes of mail already sent wait for a database that is down, before the batch is
    # given up (its mail then turns `unknown` after the lease; its other recipients are redelivered).
    record_patience_seconds: float = 120.0
    # How often the campaign content is re-read from the content store (a cheap revision check:
    # templates are compiled again only when the content changed).
    content_refresh_seconds: float = 5.0
    # How often the MAIL stream is swept for deliveries the consumer gave up on whose max-deliveries
    # advisory no mailer heard (sent while none was running).
    exhausted_sweep_seconds: float = 30.0
    # How often deliveries held for paused campaigns are checked for release (resumed or cancelled).
    hold_release_seconds: float = 1.0

    # Delays between the deliveries of a message that met a 4xx or a delivery-path problem
    # (MAILSTIFY_RETRY_SCHEDULE="1m,2m,5m,10m,15m,20m"); after the last one it fails. The consumer's
    # max_deliver follows from it (`deliveries_consumer`).
    retry_schedule: Annotated[RetrySchedule, NoDecode] = DEFAULT_RETRY_SCHEDULE

    # The send rate limit, emails per second shared by all replicas (decision record 0019); unset:
    # unlimited, and no cost at all. MAILSTIFY_RATE_LIMIT: overall; MAILSTIFY_RATE_LIMIT_PER_DOMAIN:
    # for each recipient domain; MAILSTIFY_RATE_LIMIT_DOMAINS="gmail.com=20,outlook.com=10": for
    # those domains (instead of the per-domain one).
    rate_limit: float | None = None
    rate_limit_per_domain: float | None = None
    rate_limit_domains: Annotated[dict[str, float], NoDecode] = {}
    # A throttling reply (421, 4.7.x, "rate" in a 4xx) halves the domain's rate for every replica,
    # holds it this long, then climbs back by half the limit every `throttle_recovery_seconds`.
    throttle_hold_seconds: float = 30.0
    throttle_recovery_seconds: float = 60.0

    @field_validator("rate_limit_domains", mode="before")
    @classmethod
    def _parse_domain_rates(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_domain_rates(value)
        return value

    @property
    def rate_limits(self) -> RateLimits:
        return RateLimits(self.rate_limit, self.rate_limit_per_domain, dict(self.rate_limit_domains))

    @property
    def throttle_policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(self.throttle_hold_seconds, self.throttle_recovery_seconds)

    @model_validator(mode="after")
    def _rate_limits_positive(self) -> "Settings":
        for name in ("rate_limit", "rate_limit_per_domain"):
            value = getattr(self, name)
            if value is not None and not 0 < value < float("inf"):
                raise ValueError(f"MAILSTIFY_{name.upper()} must be a positive number of emails per second, got {value}")
        bad = {domain: rate for domain, rate in self.rate_limit_domains.items() if not 0 < rate < float("inf")}
        if bad:
            raise ValueError(f"MAILSTIFY_RATE_LIMIT_DOMAINS rates must be positive, got {bad}")
        if self.throttle_hold_seconds < 0 or self.throttle_recovery_seconds <= 0:
            raise ValueError("throttle_hold_seconds must be at least 0 and throttle_recovery_seconds above 0")
        return self

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _parse_retry_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            return RetrySchedule.parse(value)
        return value

    @property
    def deliveries_consumer(self) -> ConsumerSpec:
        """The mailer's durable consumer, giving up exactly when the retry schedule does."""
        return dataclasses.replace(topology.MAILER_DELIVERIES, max_deliver=self.retry_schedule.max_deliveries)

    @property
    def header_options(self) -> HeaderOptions:
        return HeaderOptions(unsubscribe_mailto=self.list_unsubscribe_mailto, feedback_id_sender=self.feedback_id_sender)

    def dkim_private_key_pem(self) -> bytes:
        if self.dkim_private_key is not None:
            return self.dkim_private_key.get_secret_value().encode()
        assert self.dkim_private_key_file is not None, "DKIM is not configured"
        return self.dkim_private_key_file.read_bytes()

    @property
    def smtp_address(self) -> tuple[str, int]:
        if self.smtp_host is None:
            return DEV_INBOX_HOST, self.smtp_port or DEV_INBOX_PORT
        default_port = {"none": 25, "starttls": 587, "tls": 465}[self.smtp_tls]
        return self.smtp_host, self.smtp_port or default_port

    @property
    def sending_lease_seconds(self) -> float:
        """The lease of a claim on the wire: a row still `sending` after it means its mailer died
        mid-send; it is then recorded `unknown`, never re-sent (§6 rule 3)."""
        return self.smtp_timeout + RECORD_MARGIN_SECONDS

    @model_validator(mode="after")
    def _leases_fit(self) -> "Settings":
        if self.lease_seconds <= 0:
            raise ValueError(f"lease_seconds ({self.lease_seconds}) must be positive")
        if self.lease_seconds >= self.deliveries_consumer.ack_wait_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must stay below the consumer's ack_wait "
                f"({self.deliveries_consumer.ack_wait_seconds}s)"
            )
        if self.smtp_pool_size < 1 or self.batch_size < 1:
            raise ValueError("smtp_pool_size and batch_size must be at least 1")
        if self.smtp_max_messages_per_connection is not None and self.smtp_max_messages_per_connection < 1:
            raise ValueError("smtp_max_messages_per_connection must be at least 1 (or unset: no cap)")
        # A mailto or sender id that would break a header is refused at start, not on every message.
        self.header_options
        return self

    @model_validator(mode="after")
    def _dkim_complete(self) -> "Settings":
        keys = [name for name in ("dkim_private_key", "dkim_private_key_file") if getattr(self, name) is not None]
        given = [name for name in ("dkim_selector", "dkim_domain") if getattr(self, name)] + keys
        if not given:
            return self
        if len(keys) > 1:
            raise ValueError("set MAILSTIFY_DKIM_PRIVATE_KEY or MAILSTIFY_DKIM_PRIVATE_KEY_FILE, not both")
        if not (self.dkim_selector and self.dkim_domain and keys):
            raise ValueError(
                "DKIM signing needs MAILSTIFY_DKIM_SELECTOR, MAILSTIFY_DKIM_DOMAIN and a private key "
                f"(MAILSTIFY_DKIM_PRIVATE_KEY or _FILE); only {', '.join(f'MAILSTIFY_{n.upper()}' for n in given)} set"
            )
        if self.dkim_private_key_file is not None and not self.dkim_private_key_file.is_file():
            raise ValueError(f"MAILSTIFY_DKIM_PRIVATE_KEY_FILE {self.dkim_private_key_file} is not a readable file")
        return self

    @model_validator(mode="after")
    def _grace_covers_a_transaction(self) -> "Settings":
        # The services' common default (15 s) is shorter than one SMTP transaction: a mailer stopped
        # mid-batch would leave claimed rows to expire into `unknown`. Explicitly set, it is kept.
        if "shutdown_grace_seconds" not in self.model_fields_set:
            self.shutdown_grace_seconds = min(SHUTDOWN_GRACE_LIMIT_SECONDS, self.smtp_timeout + SHUTDOWN_RECORD_SECONDS)
        return self
