from fastapi import FastAPI

from mailstify_servicekit import create_service_app

from ..bootstrap import bootstrap
from ..config import Settings
from . import auth_api, docs, landing, proxy, unsubscribe
from .edge import RejectAmbiguousPaths


def create_app(settings: Settings | None = None) -> FastAPI:
    # FastAPI's own document routes are replaced by `docs`, which adds the services' public routes.
    app = create_service_app(
        bootstrap(settings),
        routers=[landing.router, unsubscribe.router, docs.router, auth_api.router, proxy.router],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(RejectAmbiguousPaths)  # outermost: before routing, auth and the proxy
    return app
