from fastapi import FastAPI

from mailstify_servicekit import create_service_app

from ..bootstrap import bootstrap
from ..config import Settings
from . import imports_api, internal_api, lists_api, suppressions_api


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(bootstrap(settings), routers=[lists_api.router, imports_api.router, suppressions_api.router, internal_api.router])
