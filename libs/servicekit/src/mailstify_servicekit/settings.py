"""Settings every service reads from the environment (names in API.md). Services subclass to add theirs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INTERNAL_TOKEN = "dev-internal-token"
DEV_SECRET_KEY = "dev-secret-key-change-me"
# Served over https means reachable by others: a shared secret must then be a real one. 32
# characters of `secrets.token_urlsafe` are ~190 bits; placeholders such as "replace-me" are shorter.
MIN_PUBLIC_SECRET_LENGTH = 32


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILSTIFY_", extra="ignore")

    database_url: str = Field(..., description="postgresql+psycopg://user@host:port/db, one database per service")
    # Development convenience: create the service's database when it does not exist yet.
    database_autocreate: bool = True
    nats_url: str = "nats://127.0.0.1:4222"
    # Stream and bucket replicas this service declares: 3 on a production JetStream cluster.
    jetstream_replicas: int = Field(1, ge=1, le=5)
    # Shared secret the gateway presents to internal services; they trust its account header only then.
    internal_token: SecretStr = SecretStr(DEV_INTERNAL_TOKEN)
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    public_url: str = "http://127.0.0.1:8000"
    audience_url: str = "http://127.0.0.1:8001"
    campaign_url: str = "http://127.0.0.1:8002"
    log_level: str = "INFO"
    # How long a stopping service waits for its consumers' current batches (a mailer's SMTP sends).
    shutdown_grace_seconds: float = Field(15.0, ge=0, le=300)
    # Telemetry (mailstify_servicekit.telemetry): "off" drops tracing, metrics and /metrics entirely.
    telemetry: Literal["on", "off"] = "on"
    # The resource's deployment.environment (OTEL_RESOURCE_ATTRIBUTES overrides it).
    environment: str = "development"
    # Parent-based: a trace started upstream keeps its caller's decision; new roots are sampled at this ratio.
    trace_sample_ratio: float = Field(1.0, ge=0, le=1)
    # How often consumer lag and outbox backlog are read for the gauges (two cheap queries per pass).
    metrics_poll_seconds: float = Field(5.0, gt=0, le=300)

    @model_validator(mode="after")
    def _real_secrets_when_public(self) -> "ServiceSettings":
        if not self.public_url.lower().startswith("https://"):
            return self  # development: the built-in values are fine on loopback
        weak = [
            f"MAILSTIFY_{name.upper()}"
            for name, development in (("internal_token", DEV_INTERNAL_TOKEN), ("secret_key", DEV_SECRET_KEY))
            if (value := getattr(self, name).get_secret_value()) == development or len(value) < MIN_PUBLIC_SECRET_LENGTH
        ]
        if weak:
            raise ValueError(
                f"MAILSTIFY_PUBLIC_URL is https ({self.public_url}), but {' and '.join(weak)} "
                f"{'is' if len(weak) == 1 else 'are'} the development value or shorter than {MIN_PUBLIC_SECRET_LENGTH}"
                " characters: set a long random value, e.g."
                ' python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        return self


class MessageHeaderSettings(BaseSettings):
    """The headers an operator sets for every campaign message. Read by the mailer, which writes them,
    and by the campaign service, whose previews must show the message exactly as it is sent."""

    model_config = SettingsConfigDict(env_prefix="MAILSTIFY_", extra="ignore")

    # An address taking unsubscribe requests by mail, offered in List-Unsubscribe beside the https link.
    list_unsubscribe_mailto: str | None = None
    # The last field of every message's Feedback-ID (Gmail's SenderId).
    feedback_id_sender: str = "mailstify"
