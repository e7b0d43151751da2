from fastapi import FastAPI

from mailstify_servicekit import create_service_app

from ..bootstrap import bootstrap
from ..config import Settings
from . import auth_api, docs, events, proxy, unsubscribe
from .edge import RejectAmbiguousPaths
from .web import routes as web


def create_app(settings: Settings | None = None) -> FastAPI:
    # `events` before `proxy`: the gateway serves /api/v1/campaigns/{id}/events itself.
    # FastAPI's own document routes are replaced by `docs`, which adds the services' public routes.
    app = create_service_app(
        bootstrap(settings),
        routers=[*web.ROUTERS, unsubscribe.router, docs.router, auth_api.router, events.router, proxy.router],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    web.mount_static(app)
    app.add_middleware(RejectAmbiguousPaths)  # outermost: before routing, auth and the proxy
    return app
