"""The metrics side of the Compose stack, validated without a container engine: Prometheus scrapes
every service on the port it serves, Grafana is provisioned with that Prometheus and the dashboard,
and every metric the dashboard queries is one the README's operations section documents (the e2e
test tests/test_metrics.py checks them against what the services really export)."""

from __future__ import annotations

import json
import re

import pytest

from .manifests import (
    DASHBOARD,
    GRAFANA,
    PROMETHEUS_CONFIG,
    REPO,
    SERVICES,
    compose_services,
    dashboard_expressions,
    load,
    metric_family,
    metric_names,
)

SERVICE_PORT = 8000  # deploy/Dockerfile: uvicorn on 8000, the port the healthcheck probes


def mounted(service: str) -> dict[str, str]:
    """Container path -> host path of the service's bind mounts."""
    mounts = {}
    for volume in compose_services()[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = source
    return mounts


def documented_metrics() -> set[str]:
    """The metric names in the README's operations table (its first column, each in backticks)."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Operations", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([a-z0-9_]+)`", cell)}


def test_prometheus_scrapes_every_replica_of_every_service_on_its_port():
    config = load(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SERVICES)
    for name, job in jobs.items():
        assert job.get("metrics_path", "/metrics") == "/metrics"
        (discovery,) = job["dns_sd_configs"]
        # DNS A records: one target per replica (`--scale mailer=6`), not one round-robin address.
        assert (discovery["names"], discovery["type"], discovery["port"]) == ([name], "A", SERVICE_PORT)
        assert name in compose_services()


def test_compose_runs_prometheus_and_grafana_on_the_files_in_deploy():
    services = compose_services()
    assert {"prometheus", "grafana", "jaeger"} <= set(services)
    assert mounted("prometheus") == {"/etc/prometheus/prometheus.yml": "./deploy/prometheus/prometheus.yml"}
    assert mounted("grafana") == {
        "/etc/grafana/provisioning": "./deploy/grafana/provisioning",
        "/var/lib/grafana/dashboards": "./deploy/grafana/dashboards",
    }
    for service in ("prometheus", "grafana"):
        for source in mounted(service).values():
            assert (REPO / source).exists(), source
    assert services["grafana"]["ports"] == ["127.0.0.1:3000:3000"]
    # Anonymous and read-only: no login form, so no admin password to default.
    env = services["grafana"]["environment"]
    assert (env["GF_AUTH_ANONYMOUS_ORG_ROLE"], env["GF_AUTH_DISABLE_LOGIN_FORM"]) == ("Viewer", "true")


def test_grafana_is_provisioned_with_the_prometheus_the_dashboard_queries():
    (datasource,) = load(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = load(GRAFANA / "provisioning" / "dashboards" / "mailstify.yml")["providers"]
    assert provider["options"]["path"] in mounted("grafana")
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"], "an empty dashboard"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]


@pytest.mark.parametrize(
    "wanted",
    [
        "mailstify_mailer_emails_total",  # sent/s and failures by class
        "mailstify_consumer_lag",
        "mailstify_smtp_duration_seconds_bucket",  # p50 / p99
    ],
)
def test_the_dashboard_shows_what_an_sre_looks_at_first(wanted):
    assert any(wanted in metric_names(expression) for expression in dashboard_expressions())


def test_every_metric_the_dashboard_queries_is_documented():
    queried = {metric_family(name) for expression in dashboard_expressions() for name in metric_names(expression)}
    assert queried, "no metric found in the dashboard's expressions"
    assert queried - documented_metrics() == set(), "document it in the README's Operations section"


def test_the_metric_name_check_sees_an_undocumented_name():
    # Guards the test above: a name the README does not list is reported.
    assert "mailstify_nonexistent_total" not in documented_metrics()
    assert metric_names('sum(rate(mailstify_nonexistent_total{a="b"}[1m]))') == {"mailstify_nonexistent_total"}
