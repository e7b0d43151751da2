"""Every router of the web app, and its static files (our own plus the built front end in vendor/)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import account_pages, auth_pages, campaign_pages, inbox_pages, list_pages
from .templating import STATIC

ROUTERS = [auth_pages.router, list_pages.router, campaign_pages.router, inbox_pages.router, account_pages.router]


def mount_static(app: FastAPI) -> None:
    # check_dir=False: vendor/ appears once the front end is built; until then pages still work
    # as plain forms, only the enhancements are missing.
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
