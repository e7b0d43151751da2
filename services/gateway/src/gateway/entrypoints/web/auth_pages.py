"""Home, sign up, log in and log out in the browser: the same use cases as /api/v1/auth, with forms."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response

from mailstify_servicekit.errors import Conflict, InvalidInput, TooManyRequests, Unauthorized

from ...service_layer import handlers
from ..dependencies import Dependencies, GatewayUow
from ..security import clear_session_cookies, client_of, set_session_cookies
from .session import Browsing, MaybeBrowsing, WebRoute, form_of
from .templating import redirect, render, success

router = APIRouter(route_class=WebRoute, include_in_schema=False)

HOME_OF_SIGNED_IN = "/lists"


def safe_next(value: str | None) -> str:
    """Only a path on this site: an open redirect would lend our name to phishing."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return HOME_OF_SIGNED_IN


def _field_of_error(detail: str) -> str:
    if "password" in detail:
        return "password"
    if detail.startswith("name"):
        return "name"
    return "email"


@router.get("/")
async def home(request: Request, principal: MaybeBrowsing) -> Response:
    if principal is not None:
        return redirect(request, HOME_OF_SIGNED_IN)
    return render(request, "home.html")


@router.get("/signup")
async def signup_form(request: Request, principal: MaybeBrowsing) -> Response:
    if principal is not None:
        return redirect(request, HOME_OF_SIGNED_IN)
    return render(request, "auth.html", {"mode": "signup", "values": {}, "errors": {}})


@router.post("/signup")
async def signup(request: Request, dependencies: Dependencies, uow: GatewayUow) -> Response:
    form = await form_of(request)
    values = {"email": str(form.get("email", "")), "name": str(form.get("name", ""))}
    lifetime = timedelta(hours=dependencies.settings.session_lifetime_hours)
    try:
        signed_in = await handlers.sign_up(
            uow, values["email"], str(form.get("password", "")), values["name"], lifetime
        )
    except (InvalidInput, Conflict) as exc:
        errors = {_field_of_error(exc.detail): exc.detail}
        return render(request, "auth.html", {"mode": "signup", "values": values, "errors": errors}, status_code=422)
    response = redirect(request, HOME_OF_SIGNED_IN, success("Welcome to Mailstify! Start by creating a list."))
    set_session_cookies(response, dependencies.settings, signed_in)
    return response


@router.get("/login")
async def login_form(request: Request, principal: MaybeBrowsing, next: str | None = None) -> Response:
    if principal is not None:
        return redirect(request, safe_next(next))
    return render(request, "auth.html", {"mode": "login", "values": {}, "errors": {}, "next": next})


@router.post("/login")
async def login(request: Request, dependencies: Dependencies, uow: GatewayUow, next: str | None = None) -> Response:
    form = await form_of(request)
    values = {"email": str(form.get("email", ""))}
    lifetime = timedelta(hours=dependencies.settings.session_lifetime_hours)
    try:
        password = str(form.get("password", ""))
        signed_in = await handlers.log_in(uow, values["email"], password, lifetime, client_of(request))
    except (Unauthorized, TooManyRequests) as exc:
        context = {"mode": "login", "values": values, "errors": {"password": exc.detail}, "next": next}
        page = render(request, "auth.html", context, status_code=exc.status_code)
        page.headers.update(exc.headers)
        return page
    response = redirect(request, safe_next(next), success("You are logged in."))
    set_session_cookies(response, dependencies.settings, signed_in)
    return response


@router.post("/logout")
async def logout(request: Request, principal: Browsing, dependencies: Dependencies, uow: GatewayUow) -> Response:
    if principal.session_id:
        await handlers.log_out(uow, principal.session_id)
    response = redirect(request, "/login", success("You are logged out."))
    clear_session_cookies(response, dependencies.settings)
    return response
