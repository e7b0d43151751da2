"""The fleet's health as Prometheus sees it: a 3-recipient campaign sent through the gateway, then each
service's `GET /metrics` scraped and parsed with Prometheus's own text-format parser. The sent counter
counts exactly the three emails, every consumer's lag and every outbox go back to 0, HTTP durations are
labelled by route template, the live-update streams are counted, the log lines about the campaign
carry its id and a trace id, and every metric the Grafana dashboard queries is one the services
export."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from .conftest import Api, until

pytestmark = pytest.mark.e2e

SERVICES = ("gateway", "audience", "campaign", "dispatcher", "mailer")
DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards" / "mailstify.json"
# Recorded only when the rate limiter holds a send back, which a 3-recipient send never needs.
RECORDED_ONLY_UNDER_A_RATE_LIMIT = {
    "mailstify_mailer_rate_limit_waits_total",
    "mailstify_mailer_rate_limit_wait_duration_seconds_sum",
    "mailstify_mailer_rate_limit_wait_duration_seconds_count",
}


async def scrape(stack, service: str) -> list[Sample]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{stack.service_url(service)}/metrics")
    assert response.status_code == 200, f"{service}: {response.status_code} {response.text[:200]}"
    assert response.headers["content-type"].startswith("text/plain")
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def dashboard_series() -> set[str]:
    expressions = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    return {name for e in expressions for name in re.findall(r"\b(?:mailstify|http_server)_[a-z0-9_]+\b", e)}


async def test_a_sent_campaign_shows_in_every_services_metrics(api: Api, mailstify_stack) -> None:
    # A domain of this test's own: the counter's recipient_domain label isolates its three emails
    # from whatever the session's other tests sent.
    domain = f"m{uuid.uuid4().hex[:10]}.example.com"
    people = [{"email": f"{name.lower()}@{domain}", "first_name": name} for name in ("Ada", "Grace", "Linus")]
    mailing_list, _ = await api.new_list_with(people)
    campaign = await api.new_campaign(mailing_list["id"])

    async with api.client.stream("GET", f"/api/v1/campaigns/{campaign['id']}/events") as events:
        assert events.status_code == 200
        await anext(events.aiter_bytes())  # the stream is open and registered
        gateway = await scrape(mailstify_stack, "gateway")
        open_streams = total(gateway, "mailstify_gateway_sse_streams")
        assert open_streams >= 1

        await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})

        async def finished() -> dict | None:
            current = await api.call("GET", f"/campaigns/{campaign['id']}", 200)
            return current if current["status"] == "sent" else None

        sent = await until(finished, timeout=60)
        assert (sent["total"], sent["sent_count"]) == (3, 3)
    assert total(await scrape(mailstify_stack, "gateway"), "mailstify_gateway_sse_streams") == open_streams - 1

    mailer = await scrape(mailstify_stack, "mailer")
    assert total(mailer, "mailstify_mailer_emails_total", recipient_domain=domain) == 3
    assert total(mailer, "mailstify_mailer_emails_total", recipient_domain=domain, outcome="sent", smtp_reply_class="2xx") == 3
    assert total(mailer, "mailstify_smtp_duration_seconds_count") >= 3
    assert total(await scrape(mailstify_stack, "dispatcher"), "mailstify_fanout_deliveries_total") >= 3

    # Lag and backlog are polled every MAILSTIFY_METRICS_POLL_SECONDS: they reach 0 within a few passes.
    busy: dict[str, list[str]] = {}

    async def drained() -> bool:
        busy.clear()
        for service in SERVICES:
            samples = await scrape(mailstify_stack, service)
            assert [s for s in samples if s.name == "mailstify_outbox_backlog"], f"{service} reports no outbox backlog"
            lagging = [
                f"{s.labels['messaging_consumer_group_name']}={s.value:g}"
                for s in samples
                if s.name == "mailstify_consumer_lag" and s.value
            ]
            backlog = total(samples, "mailstify_outbox_backlog")
            if lagging or backlog:
                busy[service] = lagging + ([f"outbox={backlog:g}"] if backlog else [])
        return not busy

    try:
        await until(drained, timeout=30, interval=0.5)
    except AssertionError:
        raise AssertionError(f"lag or outbox backlog not back to 0: {busy}") from None
    durables = {
        s.labels["messaging_consumer_group_name"]
        for service in SERVICES
        for s in await scrape(mailstify_stack, service)
        if s.name == "mailstify_consumer_lag"
    }
    assert {"mailer-deliver", "dispatcher-send-requested", "campaign-results", "audience-bounces"} <= durables

    campaign_service = await scrape(mailstify_stack, "campaign")
    routes = {s.labels["http_route"] for s in campaign_service if s.name == "http_server_request_duration_seconds_count"}
    assert routes, "no HTTP durations at the campaign service"
    assert not [r for r in routes if campaign["id"] in r], f"a raw path in the route label: {routes}"
    assert any("{" in r for r in routes), routes

    exported = {s.name for service in SERVICES for s in await scrape(mailstify_stack, service)}
    assert dashboard_series() - exported - RECORDED_ONLY_UNDER_A_RATE_LIMIT == set()
    assert total(await scrape(mailstify_stack, "mailer"), "target_info", service_name="mailstify-mailer") >= 1

    log_lines = [json.loads(line) for line in mailstify_stack.log_tail("campaign", 2000).splitlines() if line.startswith("{")]
    about = [line for line in log_lines if line.get("campaign_id") == campaign["id"]]
    assert any("is now sending" in line["msg"] and line.get("trace_id") for line in about), about
    assert any("is sent" in line["msg"] for line in about), about

