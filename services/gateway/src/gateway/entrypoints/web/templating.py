"""Rendering the web pages: one Jinja2 environment (autoescaped), the security headers every page
carries, and flash messages, which travel in a signed cookie across the redirect after a form post
(or out-of-band in an htmx answer)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ...domain import pages
from ...domain.credentials import Principal
from ..dependencies import gateway_dependencies

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
FLASH_COOKIE = "mailstify_flash"
# How pages refresh their live parts: "sse" (the gateway's event streams, entrypoints/events.py)
# or "poll" (htmx every 2 s); only the live macros of templates/_macros.html read it.
LIVE_MODE = "sse"

# Scripts only from this origin (htmx, Trix, app.js): an injected <script> or inline handler does
# not run. Styles may be inline because Trix and htmx set element styles.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# `capitalize` would lower-case the rest ("CSRF" → "csrf"): only the first letter goes up.
environment.filters["sentence"] = lambda text: str(text)[:1].upper() + str(text)[1:]
environment.globals.update(
    MERGE_FIELDS=pages.MERGE_FIELDS,
    ACTION_LABELS=pages.ACTION_LABELS,
    SUBSCRIBER_STATUSES=pages.SUBSCRIBER_STATUSES,
    LIVE_STATUSES=pages.LIVE_STATUSES,
    LIVE_MODE=LIVE_MODE,
)


@dataclass(frozen=True)
class Flash:
    level: str  # "success" | "error" | "info"
    text: str


def _signature(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()[:32]


def _secret(request: Request) -> bytes:
    return gateway_dependencies(request).settings.secret_key.get_secret_value().encode()


def encode_flashes(secret: bytes, flashes: list[Flash]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps([[f.level, f.text] for f in flashes]).encode()).decode()
    return f"{payload}.{_signature(secret, payload)}"


def decode_flashes(secret: bytes, cookie: str | None) -> list[Flash]:
    payload, _, signature = (cookie or "").partition(".")
    if not payload or not hmac.compare_digest(signature, _signature(secret, payload)):
        return []
    try:
        return [Flash(str(level), str(text)) for level, text in json.loads(base64.urlsafe_b64decode(payload))]
    except (ValueError, TypeError):
        return []


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
    flashes: list[Flash] | None = None,
) -> HTMLResponse:
    """A whole page (or an htmx partial: a template whose name starts with `_`), with the flashes
    waiting in the cookie plus `flashes`; the cookie is cleared once they are shown."""
    settings = gateway_dependencies(request).settings
    waiting = decode_flashes(_secret(request), request.cookies.get(FLASH_COOKIE))
    body = environment.get_template(template).render(
        request=request,
        principal=principal,
        csrf_token=principal.csrf_token if principal else "",
        flashes=waiting + (flashes or []),
        htmx=is_htmx(request),
        inbox_enabled=bool(settings.inbox_url),
        path=request.url.path,
        **(context or {}),
    )
    response = HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)
    if waiting:
        response.delete_cookie(FLASH_COOKIE)
    return response


def redirect(request: Request, url: str, *flashes: Flash) -> Response:
    """After a form post: 303 to the page to show, with its flashes (htmx follows it with HX-Redirect)."""
    if is_htmx(request):
        response: Response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if flashes:
        waiting = decode_flashes(_secret(request), request.cookies.get(FLASH_COOKIE))
        value = encode_flashes(_secret(request), waiting + list(flashes))
        response.set_cookie(FLASH_COOKIE, value, max_age=120, httponly=True, samesite="lax")
    return response


def success(text: str) -> Flash:
    return Flash("success", text)


def error(text: str) -> Flash:
    return Flash("error", text)
