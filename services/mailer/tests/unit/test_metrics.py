"""The mailer's metrics, read as Prometheus reads them: outcomes counted per (outcome, reply class,
domain) group, recipient domains capped, SMTP transactions and rate-limit waits timed."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailer.domain.model import Outcome, Status
from mailer.service_layer import metrics
from mailstify_servicekit import ServiceSettings
from mailstify_servicekit.telemetry import configure_telemetry, metrics_response


@pytest.fixture(scope="module", autouse=True)
def _telemetry() -> None:
    # What create_service_app does in the service; once per process, whoever comes first.
    configure_telemetry("mailer", ServiceSettings(database_url="postgresql+psycopg://unused@127.0.0.1:1/unused"))


def value(name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_response().body.decode())
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_outcomes_are_counted_by_outcome_reply_class_and_domain() -> None:
    emails = "mailstify_mailer_emails_total"
    before = {
        key: value(emails, outcome=key[0], smtp_reply_class=key[1], recipient_domain=key[2])
        for key in [("sent", "2xx", "one.test"), ("retried", "4xx", "one.test"), ("failed", "5xx", "two.test"), ("unknown", "none", "two.test")]
    }
    metrics.record_outcomes(
        [
            ("a@one.test", Outcome(Status.SENT, smtp_code=250)),
            ("b@ONE.test", Outcome(Status.SENT, smtp_code=250)),
            ("c@one.test", Outcome(Status.RETRY, smtp_code=451)),
            ("d@two.test", Outcome(Status.FAILED, smtp_code=550, permanent=True)),
            ("e@two.test", Outcome(Status.UNKNOWN)),
        ]
    )
    after = {key: value(emails, outcome=key[0], smtp_reply_class=key[1], recipient_domain=key[2]) for key in before}
    assert {key: after[key] - before[key] for key in before} == {
        ("sent", "2xx", "one.test"): 2,
        ("retried", "4xx", "one.test"): 1,
        ("failed", "5xx", "two.test"): 1,
        ("unknown", "none", "two.test"): 1,
    }


def test_domains_beyond_the_cap_are_counted_as_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_domains", {"kept.test"})
    monkeypatch.setattr(metrics, "MAX_DOMAINS", 1)
    before = value("mailstify_mailer_emails_total", recipient_domain="other"), value(
        "mailstify_mailer_emails_total", recipient_domain="kept.test"
    )
    metrics.record_outcomes([("a@kept.test", Outcome(Status.SENT, smtp_code=250)), ("b@new.test", Outcome(Status.SENT, smtp_code=250))])
    assert value("mailstify_mailer_emails_total", recipient_domain="other") == before[0] + 1
    assert value("mailstify_mailer_emails_total", recipient_domain="kept.test") == before[1] + 1
    assert value("mailstify_mailer_emails_total", recipient_domain="new.test") == 0


def test_reply_classes() -> None:
    assert [metrics.reply_class(c) for c in (250, 421, 451, 550, None)] == ["2xx", "4xx", "4xx", "5xx", "none"]


async def test_an_smtp_transaction_is_timed_whatever_its_end() -> None:
    count, total = value("mailstify_smtp_duration_seconds_count"), value("mailstify_smtp_duration_seconds_sum")

    async def transaction() -> str:
        await asyncio.sleep(0)
        # A blocking sleep for the duration: uvloop's timers have millisecond resolution, and an
        # `asyncio.sleep(0.05)` woke after 49.4 ms of perf_counter once.
        time.sleep(0.05)
        return "250 ok"

    async def broken() -> str:
        raise ConnectionError("gone")

    assert await metrics.timed_smtp(transaction()) == "250 ok"
    with pytest.raises(ConnectionError):
        await metrics.timed_smtp(broken())
    assert value("mailstify_smtp_duration_seconds_count") == count + 2
    assert value("mailstify_smtp_duration_seconds_sum") - total >= 0.05


def test_rate_limit_waits_are_counted_and_timed() -> None:
    waits = value("mailstify_mailer_rate_limit_waits_total")
    for_domain = value("mailstify_mailer_rate_limit_waits_total", recipient_domain="limited.test")
    metrics.record_rate_limit_wait(0.2)
    metrics.record_rate_limit_wait(0.3, "limited.test")
    assert value("mailstify_mailer_rate_limit_waits_total") == waits + 2
    assert value("mailstify_mailer_rate_limit_waits_total", recipient_domain="limited.test") == for_domain + 1
    assert value("mailstify_mailer_rate_limit_wait_duration_seconds_sum") >= 0.5
