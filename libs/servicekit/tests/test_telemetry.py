"""Telemetry set-up and the JSON log line: the resource, the sampler, the on/off switch, `/metrics`
labelled by route template, and trace / span / campaign ids in every line written inside a span."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client.parser import text_string_to_metric_families

from mailstify_servicekit import ServiceSettings
from mailstify_servicekit.log_context import campaign_context
from mailstify_servicekit.logs import JsonFormatter
from mailstify_servicekit.telemetry import INSTANCE_ID, _sampler, service_resource, telemetry_disabled

tracer = TracerProvider().get_tracer("test")  # a provider of the test's own: the global one stays untouched


def settings(**values: object) -> ServiceSettings:
    return ServiceSettings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", **values)


def log_line(message: str = "hello", **extra: object) -> dict:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return json.loads(JsonFormatter("mailer").format(record))


def test_a_line_inside_a_span_carries_its_trace_span_and_campaign() -> None:
    with tracer.start_as_current_span("batch", attributes={"campaign.id": "c-1"}) as span:
        line = log_line()
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["campaign_id"] == "c-1"
    assert (line["service"], line["instance"], line["msg"], line["level"]) == ("mailer", INSTANCE_ID, "hello", "info")


def test_the_campaign_context_wins_over_the_span_and_an_explicit_extra_over_both() -> None:
    with tracer.start_as_current_span("batch", attributes={"campaign.id": "from-span"}):
        with campaign_context("from-context"):
            assert log_line()["campaign_id"] == "from-context"
            assert log_line(campaign_id="explicit")["campaign_id"] == "explicit"
        assert log_line()["campaign_id"] == "from-span"


def test_a_line_outside_any_span_or_campaign_has_neither() -> None:
    line = log_line()
    assert not {"trace_id", "span_id", "campaign_id"} & set(line)


def test_resource_names_the_service_and_the_operator_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    attributes = service_resource("mailer", settings(environment="production")).attributes
    assert attributes["service.name"] == "mailstify-mailer"
    assert attributes["service.version"] == "0.1.0"
    assert attributes["service.instance.id"] == INSTANCE_ID
    assert attributes["deployment.environment"] == "production"

    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,team=mail")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "mailer-eu")
    attributes = service_resource("mailer", settings(environment="production")).attributes
    assert (attributes["deployment.environment"], attributes["team"], attributes["service.name"]) == (
        "staging",
        "mail",
        "mailer-eu",
    )


def test_sampling_is_parent_based_at_the_configured_ratio_unless_the_otel_variables_say_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    sampler = _sampler(settings(trace_sample_ratio=0.25))
    assert isinstance(sampler, ParentBased)
    assert isinstance(sampler._root, TraceIdRatioBased) and sampler._root.rate == 0.25

    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert _sampler(settings(trace_sample_ratio=0.25)) is None
    # ...and the SDK then builds the sampler the variable names.
    assert TracerProvider(sampler=None).sampler.get_description() == "AlwaysOffSampler"


@pytest.mark.parametrize(
    ("telemetry", "sdk_disabled", "off"),
    [("on", None, False), ("off", None, True), ("on", "true", True), ("on", "TRUE", True), ("on", "false", False)],
)
def test_the_off_switch(monkeypatch: pytest.MonkeyPatch, telemetry: str, sdk_disabled: str | None, off: bool) -> None:
    if sdk_disabled is None:
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    else:
        monkeypatch.setenv("OTEL_SDK_DISABLED", sdk_disabled)
    assert telemetry_disabled(settings(telemetry=telemetry)) is off


def test_an_unknown_telemetry_value_is_refused() -> None:
    with pytest.raises(ValueError, match="telemetry"):
        settings(telemetry="maybe")


# A fresh interpreter per case: the providers are process-global and set once.
APP = textwrap.dedent(
    """
    import asyncio, json
    from pathlib import Path
    import httpx
    from fastapi import APIRouter
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.trace import TracerProvider
    from mailstify_servicekit import ServiceSettings, ServiceSpec, Wiring, create_service_app

    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: str) -> dict:
        return {"id": item_id}

    settings = ServiceSettings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    spec = ServiceSpec(name="probe", settings=settings, migrations=Path("."), wire=lambda c: Wiring(None))
    app = create_service_app(spec, routers=[router])

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://probe") as client:
            for n in range(3):
                (await client.get(f"/items/{n}")).raise_for_status()
            scrape = await client.get("/metrics")
        print(json.dumps({
            "status": scrape.status_code,
            "body": scrape.text,
            "sdk_tracing": isinstance(trace.get_tracer_provider(), TracerProvider),
        }))

    asyncio.run(main())
    """
)


def run_app(env: dict[str, str]) -> dict:
    import os

    completed = subprocess.run(
        [sys.executable, "-c", APP],
        env={**os.environ, "MAILSTIFY_LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_metrics_are_scraped_with_request_durations_by_route_template() -> None:
    result = run_app({"MAILSTIFY_TELEMETRY": "on"})
    assert result["status"] == 200 and result["sdk_tracing"]
    families = {f.name: f for f in text_string_to_metric_families(result["body"])}
    durations = [s for s in families["http_server_request_duration_seconds"].samples if s.name.endswith("_count")]
    assert [(s.labels["http_route"], s.value) for s in durations] == [("/items/{item_id}", 3.0)]
    target = next(s for s in families["target_info"].samples)
    assert target.labels["service_name"] == "mailstify-probe"


@pytest.mark.parametrize("env", [{"MAILSTIFY_TELEMETRY": "off"}, {"OTEL_SDK_DISABLED": "true"}])
def test_telemetry_off_installs_nothing_and_serves_no_metrics(env: dict[str, str]) -> None:
    result = run_app(env)
    assert result["status"] == 404
    assert not result["sdk_tracing"]


def test_with_nothing_reading_them_spans_keep_their_ids_but_are_not_recorded():
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from mailstify_servicekit.telemetry import RecordingWhenReadTracerProvider

    provider = RecordingWhenReadTracerProvider(resource=Resource.create({}), sampler=ALWAYS_ON)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("unread") as unread:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
    assert not unread.is_recording()
    assert unread.get_span_context().is_valid  # logs and headers still name it
    assert carrier["traceparent"].startswith(f"00-{unread.get_span_context().trace_id:032x}-")

    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tracer.start_as_current_span("read", attributes={"campaign.id": "c1"}):
        pass
    assert [(s.name, dict(s.attributes)) for s in exporter.get_finished_spans()] == [("read", {"campaign.id": "c1"})]
