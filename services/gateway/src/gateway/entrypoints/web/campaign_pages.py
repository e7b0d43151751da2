"""Campaigns index, the editor (Trix, merge-field buttons, errors at the field), the campaign page
(live status badge and counts, preview in a sandboxed iframe, test send, deliveries) and Send with
a confirmation that names the subscriber count."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from mailstify_servicekit.errors import InvalidInput, NotFound

from ...domain import pages as rules
from ...domain.credentials import Principal
from ...service_layer import handlers, pages
from ..dependencies import Dependencies, GatewayUow
from .session import Browsing, WebRoute, form_of
from .templating import is_htmx, redirect, render, success

router = APIRouter(route_class=WebRoute, include_in_schema=False)

# The preview is the campaign's own HTML: in its iframe it may style itself and show images, never
# run a script or submit a form (the iframe's sandbox says the same, without allow-scripts).
PREVIEW_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src * data:;"
    " frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
FLASH_AFTER = {
    "send": "On its way: the counts below follow the send.",
    "schedule": "Send scheduled.",
    "unschedule": "Schedule cancelled: the campaign is a draft again.",
    "test": "Test email sent.",
    "pause": "Sending paused.",
    "resume": "Sending resumed.",
    "cancel": "Sending cancelled.",
    "retry-failed": "Failed recipients queued again.",
    "duplicate": "Copy created.",
}


async def _editor(
    request: Request,
    principal: Browsing,
    dependencies: Dependencies,
    values: dict[str, Any],
    campaign_id: str | None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    lists = (await dependencies.web.audience.lists(principal.account_id)).items
    context = {"values": values, "campaign_id": campaign_id, "lists": lists, "errors": errors or {}}
    return render(request, "campaigns/edit.html", context, principal=principal, status_code=status_code)


def _errors_of(exc: InvalidInput) -> dict[str, str]:
    field = exc.extra.get("field")
    return {str(field) if field in rules.CAMPAIGN_FIELDS else "form": exc.detail}


@router.get("/campaigns")
async def campaigns_index(request: Request, principal: Browsing, dependencies: Dependencies) -> Response:
    rows = await pages.campaigns_index(dependencies.web, principal.account_id)
    return render(request, "campaigns/index.html", {"rows": rows}, principal=principal)


async def _defaults(uow: GatewayUow, principal: Principal) -> dict[str, Any]:
    """The account's default sender (account settings), else the signed-in user."""
    me = await handlers.whoami(uow, principal)
    user, account = me["user"] or {}, me["account"]
    return {
        "from_name": rules.default_from_name(account["default_from_name"], user.get("name"), account["name"]),
        "from_email": account["default_from_email"] or user.get("email", ""),
    }


@router.get("/campaigns/new")
async def new_campaign(
    request: Request, principal: Browsing, dependencies: Dependencies, uow: GatewayUow, list_id: str | None = None
) -> Response:
    values = {**await _defaults(uow, principal), "list_id": list_id or ""}
    return await _editor(request, principal, dependencies, values, None)


@router.post("/campaigns")
async def create_campaign(request: Request, principal: Browsing, dependencies: Dependencies) -> Response:
    form = await form_of(request)
    try:
        campaign = await pages.save_campaign(dependencies.web, principal.account_id, None, form)
    except InvalidInput as exc:
        return await _editor(request, principal, dependencies, form, None, _errors_of(exc), 422)
    return redirect(request, f"/campaigns/{campaign.id}", success(f"Campaign “{campaign.name}” saved."))


async def _render_view(request: Request, principal: Browsing, dependencies: Dependencies, campaign_id: str,
                       template: str, deliveries: str | None = None) -> Response:  # fmt: skip
    view = await pages.campaign_page(dependencies.web, principal.account_id, campaign_id, deliveries)
    return render(request, template, {"view": view}, principal=principal)


@router.get("/campaigns/{campaign_id}")
async def campaign_page(
    request: Request, campaign_id: str, principal: Browsing, dependencies: Dependencies, deliveries: str | None = None
) -> Response:
    return await _render_view(request, principal, dependencies, campaign_id, "campaigns/show.html", deliveries)


@router.get("/campaigns/{campaign_id}/status")
async def campaign_status(
    request: Request, campaign_id: str, principal: Browsing, dependencies: Dependencies
) -> Response:
    return await _render_view(request, principal, dependencies, campaign_id, "campaigns/_status.html")


@router.get("/campaigns/{campaign_id}/deliveries")
async def campaign_deliveries(
    request: Request, campaign_id: str, principal: Browsing, dependencies: Dependencies, deliveries: str | None = None
) -> Response:
    return await _render_view(request, principal, dependencies, campaign_id, "campaigns/_deliveries.html", deliveries)


@router.get("/campaigns/{campaign_id}/edit")
async def edit_campaign(
    request: Request, campaign_id: str, principal: Browsing, dependencies: Dependencies
) -> Response:
    campaign = await dependencies.web.campaigns.get(principal.account_id, campaign_id)
    if campaign.status not in rules.EDITABLE_STATUSES:
        return redirect(
            request, f"/campaigns/{campaign_id}", success("Only a draft can be edited; duplicate it instead.")
        )
    values = {name: getattr(campaign, name) for name in rules.CAMPAIGN_FIELDS}
    return await _editor(request, principal, dependencies, values, campaign_id)


@router.post("/campaigns/{campaign_id}")
async def update_campaign(
    request: Request, campaign_id: str, principal: Browsing, dependencies: Dependencies
) -> Response:
    form = await form_of(request)
    try:
        campaign = await pages.save_campaign(dependencies.web, principal.account_id, campaign_id, form)
    except InvalidInput as exc:
        return await _editor(request, principal, dependencies, form, campaign_id, _errors_of(exc), 422)
    return redirect(request, f"/campaigns/{campaign.id}", success("Campaign saved."))


@router.post("/campaigns/{campaign_id}/delete")
async def delete_campaign(
    request: Request, campaign_id: str, principal: Browsing, dependencies: Dependencies
) -> Response:
    await dependencies.web.campaigns.delete(principal.account_id, campaign_id)
    return redirect(request, "/campaigns", success("Campaign deleted."))


@router.get("/campaigns/{campaign_id}/preview")
async def preview(
    campaign_id: str, principal: Browsing, dependencies: Dependencies, subscriber_id: str | None = None
) -> Response:
    html = await dependencies.web.campaigns.preview(principal.account_id, campaign_id, subscriber_id or None)
    return Response(html, media_type="text/html; charset=utf-8", headers=PREVIEW_HEADERS)


@router.get("/campaigns/{campaign_id}/send")
async def confirm_send(request: Request, campaign_id: str, principal: Browsing, dependencies: Dependencies) -> Response:
    return await _render_view(request, principal, dependencies, campaign_id, "campaigns/confirm_send.html")


@router.post("/campaigns/{campaign_id}/actions/{action}")
async def campaign_action(
    request: Request, campaign_id: str, action: str, principal: Browsing, dependencies: Dependencies
) -> Response:
    if action not in rules.ACTIONS:
        raise NotFound(f"no such action: {action}")
    form = await form_of(request)
    answer = await pages.campaign_action(dependencies.web, principal.account_id, campaign_id, action, form)
    target = answer.id if action == "duplicate" and answer is not None else campaign_id
    flash = success(FLASH_AFTER[action])
    if is_htmx(request) and action == "test":
        return render(request, "_flash.html", {"oob": False}, principal=principal, flashes=[flash])
    return redirect(request, f"/campaigns/{target}", flash)
