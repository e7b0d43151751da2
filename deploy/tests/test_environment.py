"""Every environment variable a service reads (its pydantic-settings class, which extends
`mailstify_servicekit.settings.ServiceSettings`, plus the OpenTelemetry endpoint) is set for it in
docker-compose.yml and in Kubernetes (ConfigMap, Secret or the container's own env) — or is left to
its default on purpose, listed below with the reason. And nothing is set that no service reads, so a
misspelt name fails here instead of being silently ignored (settings ignore unknown variables)."""

from __future__ import annotations

import importlib

import pytest
from pydantic_settings import BaseSettings

from .manifests import SERVICES, compose_services, find, rendered

# Read outside the settings classes (mailstify_servicekit.telemetry).
READ_BY_EVERY_SERVICE = {"OTEL_EXPORTER_OTLP_ENDPOINT"}
# Not read by Mailstify's code but by libpq underneath it: the password stays out of the URL.
FOR_LIBPQ = {"PGPASSWORD", "PGHOST", "PGPORT", "PGUSER"}

TUNING = "a tuning knob: the default is documented (docs/configuration.md) and right until measured otherwise"
DKIM = "signing is off until the sending domain's selector and key exist; the key then goes in the Secret"
DELIBERATELY_DEFAULTED = {
    "MAILSTIFY_SHUTDOWN_GRACE_SECONDS": "each service's default drain fits its grace period (test_kubernetes)",
    "MAILSTIFY_SMTP_USERNAME": "only for a relay that requires AUTH (Mailpit does not); then add it to the Secret",
    "MAILSTIFY_SMTP_PASSWORD": "only for a relay that requires AUTH (Mailpit does not); then add it to the Secret",
    "MAILSTIFY_SMTP_CA_FILE": "only for a relay whose certificate a private CA signed; then mount the bundle",
    "MAILSTIFY_DKIM_SELECTOR": DKIM,
    "MAILSTIFY_DKIM_DOMAIN": DKIM,
    "MAILSTIFY_DKIM_PRIVATE_KEY": DKIM,
    "MAILSTIFY_DKIM_PRIVATE_KEY_FILE": DKIM,
    "MAILSTIFY_LIST_UNSUBSCRIBE_MAILTO": "optional: a mailbox taking unsubscribes by mail; the https link is always there",
    "MAILSTIFY_FEEDBACK_ID_SENDER": "the default names Mailstify; set it to your own sender id if you have one",
    "MAILSTIFY_SMTP_MAX_MESSAGES_PER_CONNECTION": TUNING,
    "MAILSTIFY_SMTP_TIMEOUT": TUNING,
    "MAILSTIFY_SMTP_POOL_SIZE": TUNING,
    "MAILSTIFY_BATCH_SIZE": TUNING,
    "MAILSTIFY_LEASE_SECONDS": TUNING,
    "MAILSTIFY_RETRY_SCHEDULE": TUNING,
    "MAILSTIFY_CONTENT_REFRESH_SECONDS": TUNING,
    "MAILSTIFY_EXHAUSTED_SWEEP_SECONDS": TUNING,
    "MAILSTIFY_HOLD_RELEASE_SECONDS": TUNING,
    "MAILSTIFY_FANOUT_PAGE_SIZE": TUNING,
    "MAILSTIFY_FANOUT_ACK_WAIT_SECONDS": TUNING,
    "MAILSTIFY_FANOUT_WINDOW": TUNING,
    "MAILSTIFY_FANOUT_MAX_ATTEMPTS": TUNING,
    "MAILSTIFY_SESSION_LIFETIME_HOURS": TUNING,
    "MAILSTIFY_UPSTREAM_TIMEOUT_SECONDS": TUNING,
    "MAILSTIFY_PAGE_TIMEOUT_SECONDS": TUNING,
    "MAILSTIFY_EVENT_STREAM_HEARTBEAT_SECONDS": TUNING,
    "MAILSTIFY_EVENT_STREAM_MIN_INTERVAL_SECONDS": TUNING,
    "MAILSTIFY_EVENT_STREAM_RETRY_MILLISECONDS": TUNING,
    "MAILSTIFY_SCHEDULE_POLL_SECONDS": TUNING,
    "MAILSTIFY_IMPORT_MAX_BYTES": TUNING,
    "MAILSTIFY_IMPORT_SPOOL_DIR": "the default is under the temporary directory: /tmp, a writable emptyDir in every pod",
    "MAILSTIFY_INBOX_URL": "the embedded dev inbox's web API only; Mailpit and a real relay have their own UI",
    "MAILSTIFY_TELEMETRY": "on everywhere; off only to measure what telemetry costs (the benchmark's baseline)",
    "MAILSTIFY_TRACE_SAMPLE_RATIO": "every trace is kept until the volume says otherwise (or OTEL_TRACES_SAMPLER is set)",
    "MAILSTIFY_METRICS_POLL_SECONDS": TUNING,
    "MAILSTIFY_RECORD_PATIENCE_SECONDS": TUNING,
    "MAILSTIFY_RATE_LIMIT": "unlimited unless the relay has a quota; then set it (and its _PER_DOMAIN/_DOMAINS) there",
    "MAILSTIFY_RATE_LIMIT_PER_DOMAIN": "unlimited unless the relay has a quota",
    "MAILSTIFY_RATE_LIMIT_DOMAINS": "unlimited unless the relay has a quota",
    "MAILSTIFY_THROTTLE_HOLD_SECONDS": TUNING,
    "MAILSTIFY_THROTTLE_RECOVERY_SECONDS": TUNING,
}


def settings_class(service: str) -> type[BaseSettings]:
    return importlib.import_module(f"{service}.config").Settings


def variables_read(service: str) -> dict[str, bool]:
    """Each variable the service reads -> whether it must be set (no default)."""
    settings = settings_class(service)
    prefix = settings.model_config["env_prefix"]
    read = {f"{prefix}{name}".upper(): field.is_required() for name, field in settings.model_fields.items()}
    return read | dict.fromkeys(READ_BY_EVERY_SERVICE, False)


def read_by_any() -> set[str]:
    return {variable for service in SERVICES for variable in variables_read(service)}


def missing(service: str, set_for_it: set[str]) -> list[str]:
    return sorted(
        variable
        for variable, required in variables_read(service).items()
        if variable not in set_for_it and (required or variable not in DELIBERATELY_DEFAULTED)
    )


def kubernetes_environment(overlay: str, service: str) -> set[str]:
    objects = rendered(overlay)
    (container,) = find(objects, "Deployment", service)["spec"]["template"]["spec"]["containers"]
    config = set(find(objects, "ConfigMap", "mailstify-config")["data"])
    # Production's Secret is created by the operator with the keys of the base's placeholder one.
    secret = set(find(rendered("base"), "Secret", "mailstify-secrets")["stringData"])
    return config | secret | {e["name"] for e in container["env"]}


HOW_TO_FIX = (
    "set it in docker-compose.yml and deploy/k8s/base/config.yaml (a secret: the Secret there), or, when its"
    " default is right everywhere, add it to DELIBERATELY_DEFAULTED in this file with the reason"
)


@pytest.mark.parametrize("service", SERVICES)
def test_compose_sets_every_variable_the_service_reads(service):
    assert missing(service, set(compose_services()[service]["environment"])) == [], HOW_TO_FIX


@pytest.mark.parametrize("overlay", ["base", "production"])
@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_sets_every_variable_the_service_reads(overlay, service):
    assert missing(service, kubernetes_environment(overlay, service)) == [], HOW_TO_FIX


def test_compose_and_kubernetes_set_nothing_that_no_service_reads():
    known = read_by_any() | FOR_LIBPQ
    for service in SERVICES:
        assert set(compose_services()[service]["environment"]) - known == set(), f"compose {service}"
        for overlay in ("base", "production"):
            assert kubernetes_environment(overlay, service) - known == set(), f"{overlay} {service}"


def test_the_deliberate_defaults_are_real_defaults_of_variables_still_read():
    read = {variable: required for service in SERVICES for variable, required in variables_read(service).items()}
    stale = set(DELIBERATELY_DEFAULTED) - set(read)
    assert stale == set(), "listed as defaulted but read by no service any more"
    assert [v for v in DELIBERATELY_DEFAULTED if read[v]] == [], "a required variable cannot be left to a default"


def test_the_check_sees_a_variable_that_is_not_set():
    # Guards the tests above: dropping one required variable is reported.
    environment = set(compose_services()["mailer"]["environment"]) - {"MAILSTIFY_DATABASE_URL"}
    assert missing("mailer", environment) == ["MAILSTIFY_DATABASE_URL"]
