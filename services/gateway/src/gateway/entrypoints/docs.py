"""The public API's description: `/api/openapi.json` (the gateway's routes merged with the services'
public ones, fetched when asked for) and Swagger UI at `/api/docs`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from ..domain.openapi import merge_public_api
from .dependencies import Dependencies

OPENAPI_URL = "/api/openapi.json"
DOCS_URL = "/api/docs"

router = APIRouter()


@router.get(OPENAPI_URL, include_in_schema=False)
async def openapi(request: Request, dependencies: Dependencies) -> JSONResponse:
    services = await dependencies.upstreams.openapi_documents()
    return JSONResponse(merge_public_api(request.app.openapi(), services))


@router.get(DOCS_URL, include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=OPENAPI_URL, title="Mailstify API")
