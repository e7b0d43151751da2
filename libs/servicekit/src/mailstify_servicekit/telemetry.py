"""OpenTelemetry set-up: a tracer provider named after the service, OTLP export when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set (tests install an in-memory exporter instead), and
FastAPI + SQLAlchemy instrumentation."""

from __future__ import annotations

import os

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.ext.asyncio import AsyncEngine


def configure_tracing(service: str) -> None:
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # already configured (tests, or a second app in one process)
    provider = TracerProvider(resource=Resource.create({"service.name": f"mailstify-{service}"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def instrument_app(app: FastAPI) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")


def instrument_engine(engine: AsyncEngine) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
