from fastapi import FastAPI

from mailstify_servicekit import create_service_app

from ..bootstrap import bootstrap


def create_app() -> FastAPI:
    return create_service_app(bootstrap(), routers=[])
