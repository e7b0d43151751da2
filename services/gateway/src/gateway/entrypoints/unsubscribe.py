"""The unsubscribe links every campaign mail carries (`{public_url}/u/{token}`, also its
`List-Unsubscribe` header): public, no session, no CSRF; the signed token is the authority.

GET shows a confirmation page whose button POSTs back; POST is RFC 8058 One-Click (a mail client
sends `List-Unsubscribe=One-Click` as a form body; the body is not needed and not read). Every
malformed, altered or forged token answers the same 404 page, telling nothing about why."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ..service_layer import handlers
from .dependencies import Dependencies

router = APIRouter()

# Inline style only: the page loads nothing from anywhere.
_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem;">
<h1>{title}</h1>
{content}
</body>
</html>
"""

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


def _page(title: str, content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), content=content), status_code=status_code, headers=_HEADERS)


def _not_found() -> HTMLResponse:
    return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)


def _secret(dependencies: Dependencies) -> bytes:
    return dependencies.settings.secret_key.get_secret_value().encode()


@router.get("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
async def confirm(token: str, dependencies: Dependencies) -> HTMLResponse:
    if not handlers.unsubscribe_token_is_valid(_secret(dependencies), token):
        return _not_found()
    # The form posts to this very URL (a relative empty action would too; explicit is clearer).
    action = escape(f"/u/{token}", quote=True)
    content = (
        "<p>Do you want to stop receiving these emails?</p>\n"
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", content)


@router.post("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
async def one_click(token: str, dependencies: Dependencies) -> HTMLResponse:
    if not await handlers.unsubscribe(dependencies.upstreams, _secret(dependencies), token):
        return _not_found()
    return _page("You are unsubscribed", "<p>You will not receive these emails any more.</p>")
