"""The FastAPI application every service is: health probes, error format, telemetry, and a lifespan
that boots the service's `Runtime` in the background."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from .errors import install_error_handlers
from .logs import configure_logging
from .runtime import Runtime, ServiceSpec
from .telemetry import configure_tracing, instrument_app
from .unit_of_work import UnitOfWork


def create_service_app(spec: ServiceSpec, routers: Sequence[APIRouter] = (), **fastapi_kwargs: object) -> FastAPI:
    configure_logging(spec.name, spec.settings.log_level)
    configure_tracing(spec.name)
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

    for router in routers:
        app.include_router(router)
    return app


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def new_unit_of_work(runtime: Annotated[Runtime, Depends(get_runtime)]) -> UnitOfWork:
    return runtime.uow()


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
UnitOfWorkDep = Annotated[UnitOfWork, Depends(new_unit_of_work)]
