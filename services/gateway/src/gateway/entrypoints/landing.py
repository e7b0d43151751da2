"""The root page: proof the platform runs and where the API is described (the web UI comes later)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()

LANDING_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Mailstify</title></head>
<body>
  <h1>Mailstify is running</h1>
  <p>The API is described at <a href="/api/docs">/api/docs</a>
     (OpenAPI document: <a href="/api/openapi.json">/api/openapi.json</a>).</p>
</body>
</html>
"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def landing() -> HTMLResponse:
    return HTMLResponse(LANDING_PAGE)
