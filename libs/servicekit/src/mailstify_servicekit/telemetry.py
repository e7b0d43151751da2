"""OpenTelemetry, set up once per process for whichever service it runs (`create_service_app` calls
`configure_telemetry`):

- a resource naming the service (`service.name`, `service.version`, `service.instance.id`,
  `deployment.environment` from `MAILSTIFY_ENVIRONMENT`); `OTEL_RESOURCE_ATTRIBUTES` and
  `OTEL_SERVICE_NAME` override any of them;
- traces sampled parent-based by `MAILSTIFY_TRACE_SAMPLE_RATIO` — unless `OTEL_TRACES_SAMPLER`
  (and `OTEL_TRACES_SAMPLER_ARG`) is set, which the SDK then reads itself — and exported over
  OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set; the other
  standard `OTEL_EXPORTER_OTLP_*` variables are the exporter's own. With no exporter, spans keep
  their ids (in logs and `traceparent` headers) but are not recorded (`RecordedWhenRead`);
- metrics kept in the process and scraped by Prometheus at `GET /metrics` (`metrics_response`),
  pushed over OTLP as well only when `OTEL_METRICS_EXPORTER=otlp`;
- FastAPI, SQLAlchemy (psycopg underneath) and httpx instrumentation.

`MAILSTIFY_TELEMETRY=off` or `OTEL_SDK_DISABLED=true` turns all of it off: no provider, no
instrumentation, no `/metrics`; the API's no-op tracer and meter remain (the benchmark's baseline).
A process whose tracer provider was installed before (a test's in-memory exporter) keeps it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

from fastapi import FastAPI
from fastapi.responses import Response
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.util.types import Attributes
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from .settings import ServiceSettings

# Seconds-valued histograms (HTTP, SMTP, rate-limit waits): the SDK's default boundaries are meant
# for milliseconds and would put every request in the first bucket.
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Probes and the scrape itself are not traffic worth a span or a latency sample.
EXCLUDED_URLS = "healthz,readyz,metrics"
# One id per process: replicas of a service and restarts of one are told apart.
INSTANCE_ID = str(uuid.uuid4())


@dataclass
class _State:
    configured: bool = False
    enabled: bool = False
    service: str = ""


_state = _State()


def telemetry_disabled(settings: ServiceSettings) -> bool:
    return settings.telemetry == "off" or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def telemetry_enabled() -> bool:
    """Whether this process's telemetry is on (False before `configure_telemetry`)."""
    return _state.enabled


def service_resource(service: str, settings: ServiceSettings) -> Resource:
    ours = {
        "service.name": f"mailstify-{service}",
        "service.namespace": "mailstify",
        "service.version": _version(service),
        "service.instance.id": INSTANCE_ID,
        "host.name": socket.gethostname(),
        "deployment.environment": settings.environment,
        "deployment.environment.name": settings.environment,
    }
    # The operator's OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME win over ours.
    return Resource.create(ours).merge(OTELResourceDetector().detect())


def configure_telemetry(service: str, settings: ServiceSettings) -> None:
    """Install the tracer and meter providers and the outgoing-HTTP instrumentation; idempotent
    (several apps in one test process share the first configuration)."""
    if _state.configured:
        return
    _state.configured, _state.service = True, service
    if telemetry_disabled(settings):
        return
    _state.enabled = True
    # HTTP metrics under the stable conventions: `http.server.request.duration` in seconds,
    # labelled by the route template (`http.route`), never by the raw path.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    resource = service_resource(service, settings)
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        sampler = _sampler(settings)
        provider = (
            TracerProvider(resource=resource)  # the SDK's sampler from OTEL_TRACES_SAMPLER
            if sampler is None
            else RecordingWhenReadTracerProvider(resource=resource, sampler=sampler)
        )
        if _otlp_endpoint("TRACES") and os.environ.get("OTEL_TRACES_EXPORTER", "otlp") != "none":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(
            MeterProvider(
                resource=resource,
                metric_readers=_metric_readers(),
                views=[
                    View(instrument_unit="s", aggregation=ExplicitBucketHistogramAggregation(SECONDS_BUCKETS))
                ],
            )
        )
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()


class RecordedWhenRead(Sampler):
    """`delegate`'s decision once something reads the spans (`read`), and until then a decision to
    drop. A dropped span still has a valid trace and span id: log lines carry them, `traceparent`
    headers carry them to the next service, the campaign timeline names the trace. What it saves is
    the recording (attributes, links, events) of spans no processor would ever see, on every
    message batch and SQL statement of a process running with telemetry on and no exporter."""

    def __init__(self, delegate: Sampler):
        self.delegate = delegate
        self.read = False

    def should_sample(  # noqa: PLR0913 - the Sampler interface
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        sampler = self.delegate if self.read else ALWAYS_OFF
        return sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"RecordedWhenRead{{{self.delegate.get_description()}}}"


class RecordingWhenReadTracerProvider(TracerProvider):
    """A tracer provider whose spans are sampled by `sampler` from the moment a span processor is
    added (the OTLP exporter here, a test's in-memory exporter), and dropped until then."""

    def __init__(self, *, resource: Resource, sampler: Sampler):
        self._recorded_when_read = RecordedWhenRead(sampler)
        super().__init__(resource=resource, sampler=self._recorded_when_read)

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self._recorded_when_read.read = True


def _version(service: str) -> str:
    try:
        return metadata.version(f"mailstify-{service}")
    except metadata.PackageNotFoundError:
        return "unknown"


def _otlp_endpoint(signal: str) -> str | None:
    return os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")


def _sampler(settings: ServiceSettings) -> Sampler | None:
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None  # the SDK builds the standard sampler the variables name
    return ParentBased(TraceIdRatioBased(settings.trace_sample_ratio))


def _metric_readers() -> list[MetricReader]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    readers: list[MetricReader] = [PrometheusMetricReader()]
    if os.environ.get("OTEL_METRICS_EXPORTER") == "otlp" and _otlp_endpoint("METRICS"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    return readers


def metrics_response() -> Response:
    """The process's metrics in the Prometheus text format (what `GET /metrics` answers)."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def instrument_app(app: FastAPI) -> None:
    if not _state.enabled:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # No span per ASGI `receive` and `send` message: two or three more spans for every request (one
    # per event on an SSE stream) that say nothing the request's own span does not, and on a polled
    # endpoint most of telemetry's CPU (bench/send_throughput --telemetry-ab).
    FastAPIInstrumentor.instrument_app(app, excluded_urls=EXCLUDED_URLS, exclude_spans=["receive", "send"])
    # Outside the instrumentation's middleware (which wraps build_middleware_stack too): see
    # `_FreshTraceContext`.
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: _FreshTraceContext(build_stack())  # type: ignore[method-assign]


class _FreshTraceContext:
    """Each HTTP request starts from an empty trace context. uvicorn serves the requests of one
    keep-alive connection in one task, and the FastAPI instrumentation can leave the first request's
    span attached there (opentelemetry-python-contrib#3700): every later request on the connection
    then joined that trace. Attaching an empty context per request masks whatever was left."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = otel_context.attach(otel_context.Context())
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)


def instrument_engine(engine: AsyncEngine) -> None:
    if not _state.enabled:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
