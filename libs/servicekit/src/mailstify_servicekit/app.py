"""The FastAPI application every service is: health probes, error format, telemetry, and a lifespan
that boots the service's `Runtime` in the background."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from .errors import ServiceError
from .logs import configure_logging
from .runtime import D, Runtime, ServiceSpec
from .telemetry import configure_telemetry, instrument_app, metrics_response, telemetry_enabled
from .text import StorableTextGuard


def create_service_app(spec: ServiceSpec[D], routers: Sequence[APIRouter] = (), **fastapi_kwargs: Any) -> FastAPI:
    configure_logging(spec.name, spec.settings.log_level)
    configure_telemetry(spec.name, spec.settings)
    runtime = Runtime.create(spec)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        boot = asyncio.create_task(runtime.boot())
        try:
            yield
        finally:
            boot.cancel()
            await asyncio.gather(boot, return_exceptions=True)
            await runtime.shutdown()

    app = FastAPI(title=f"mailstify-{spec.name}", lifespan=lifespan, **fastapi_kwargs)
    app.state.settings = spec.settings
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(StorableTextGuard)  # NUL in a path or query: 400, not a database error
    instrument_app(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        missing = await runtime.readiness()
        if missing:
            return JSONResponse({"status": "unavailable", "detail": missing}, status_code=503)
        return JSONResponse({"status": "ready"})

    if telemetry_enabled():

        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics() -> Response:
            return metrics_response()

    for router in routers:
        app.include_router(router)
    return app


def runtime_of(request: Request) -> Runtime[Any]:
    return request.app.state.runtime


def dependencies_of(request: Request) -> Any:
    """The wired dependencies of the service serving `request`; each service's
    `entrypoints/dependencies.py` gives this its own return type."""
    return runtime_of(request).dependencies()


def _describe(error: dict) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
    return f"{location}: {error.get('msg')}" if location else str(error.get("msg"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        detail = "; ".join(_describe(e) for e in errors) or "invalid request"
        safe = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
        return JSONResponse({"detail": detail, "errors": safe}, status_code=422)
