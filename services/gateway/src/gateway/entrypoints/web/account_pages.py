"""Account settings and API keys: create (the key is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from mailstify_servicekit.errors import InvalidInput

from ...service_layer import handlers
from ..dependencies import GatewayUow
from .session import Browsing, WebRoute, form_of
from .templating import redirect, render, success

router = APIRouter(route_class=WebRoute, include_in_schema=False)


async def _account_page(
    request: Request,
    principal: Browsing,
    uow: GatewayUow,
    issued: dict | None = None,
    errors: dict | None = None,
    status_code: int = 200,
) -> Response:
    me = await handlers.whoami(uow, principal)
    context = {
        "me": me,
        "settings": {
            "name": (me["user"] or {}).get("name"),
            "default_from_name": me["account"]["default_from_name"],
            "default_from_email": me["account"]["default_from_email"],
        },
        "keys": await handlers.list_api_keys(uow, principal),
        "issued": issued,
        "errors": errors or {},
    }
    return render(request, "account/index.html", context, principal=principal, status_code=status_code)


@router.get("/account")
async def account(request: Request, principal: Browsing, uow: GatewayUow) -> Response:
    return await _account_page(request, principal, uow)


def _settings_field(detail: str) -> str:
    if detail.startswith("from_name"):
        return "default_from_name"
    return "name" if detail.startswith("name") else "default_from_email"


@router.post("/account")
async def update_settings(request: Request, principal: Browsing, uow: GatewayUow) -> Response:
    form = await form_of(request)
    try:
        await handlers.update_settings(
            uow,
            principal,
            str(form.get("name", "")),
            str(form.get("default_from_name", "")),
            str(form.get("default_from_email", "")),
        )
    except InvalidInput as exc:
        errors = {_settings_field(exc.detail): exc.detail}
        return await _account_page(request, principal, uow, errors=errors, status_code=422)
    return redirect(request, "/account", success("Settings saved."))


@router.post("/account/api-keys")
async def create_api_key(request: Request, principal: Browsing, uow: GatewayUow) -> Response:
    name = str((await form_of(request)).get("key_name", ""))
    try:
        issued = await handlers.create_api_key(uow, principal, name)
    except InvalidInput as exc:
        return await _account_page(request, principal, uow, errors={"key_name": exc.detail}, status_code=422)
    # Rendered, not redirected: the key exists only in this answer.
    return await _account_page(request, principal, uow, issued=issued)


@router.post("/account/api-keys/{key_id}/delete")
async def revoke_api_key(request: Request, key_id: str, principal: Browsing, uow: GatewayUow) -> Response:
    await handlers.delete_api_key(uow, principal, key_id)
    return redirect(request, "/account", success("API key revoked."))
