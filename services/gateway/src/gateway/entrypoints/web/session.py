"""Who is browsing, and the web routes' error handling.

A page needs the session cookie (else: to the login page). A state-changing request must prove it
comes from our own page with the session's CSRF token (the double-submit scheme of
docs/decisions/0004): htmx sends it in the `X-CSRF-Token` header, a plain form in its `csrf_token`
field. Errors of a web route are pages, not JSON: WebRoute renders them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from mailstify_servicekit.errors import Forbidden, ServiceError

from ...domain.credentials import UNSAFE_METHODS, Principal, csrf_satisfied
from ...service_layer import handlers
from ..dependencies import Dependencies
from ..security import CSRF_HEADER, SESSION_COOKIE
from .templating import error, is_htmx, redirect, render

CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    pass


async def optional_principal(request: Request, dependencies: Dependencies) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    return await handlers.principal_from_session(dependencies.uow(), token) if token else None


async def web_principal(request: Request, dependencies: Dependencies) -> Principal:
    principal = await optional_principal(request, dependencies)
    if principal is None:
        raise LoginRequired()
    if request.method.upper() in UNSAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None:
            presented = str((await request.form()).get(CSRF_FIELD) or "") or None
        if not csrf_satisfied(principal, request.method, presented):
            raise Forbidden("missing or invalid CSRF token: reload the page and try again")
    return principal


Browsing = Annotated[Principal, Depends(web_principal)]
MaybeBrowsing = Annotated[Principal | None, Depends(optional_principal)]


async def form_of(request: Request) -> dict[str, Any]:
    return {name: value for name, value in (await request.form()).items()}


def error_page(request: Request, exc: ServiceError) -> Response:
    if is_htmx(request):
        # Swaps nothing but the out-of-band flash (base.html lets htmx process 4xx/5xx answers).
        response = render(
            request, "_flash.html", {"oob": True}, flashes=[error(exc.detail)], status_code=exc.status_code
        )
        response.headers["HX-Reswap"] = "none"
        return response
    return render(request, "error.html", {"error": exc}, status_code=exc.status_code)


class WebRoute(APIRoute):
    """A route whose service errors become an error page (or flash) and whose anonymous visitors go
    to the login page, coming back afterwards."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def web_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = request.url.path if request.method == "GET" else "/"
                return redirect(request, f"/login?next={quote(target, safe='/')}")
            except ServiceError as exc:
                return error_page(request, exc)

        return web_handler
