"""Settings every service reads from the environment (names in API.md). Services subclass to add theirs."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILSTIFY_", extra="ignore")

    database_url: str = Field(..., description="postgresql+psycopg://user@host:port/db, one database per service")
    # Development convenience: create the service's database when it does not exist yet.
    database_autocreate: bool = True
    nats_url: str = "nats://127.0.0.1:4222"
    # Stream and bucket replicas this service declares: 3 on a production JetStream cluster.
    jetstream_replicas: int = Field(1, ge=1, le=5)
    # Shared secret the gateway presents to internal services; they trust its account header only then.
    internal_token: SecretStr = SecretStr("dev-internal-token")
    secret_key: SecretStr = SecretStr("dev-secret-key-change-me")
    public_url: str = "http://127.0.0.1:8000"
    audience_url: str = "http://127.0.0.1:8001"
    campaign_url: str = "http://127.0.0.1:8002"
    log_level: str = "INFO"
    # How long a stopping service waits for its consumers' current batches (a mailer's SMTP sends).
    shutdown_grace_seconds: float = Field(15.0, ge=0, le=300)
