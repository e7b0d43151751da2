"""The development Inbox: what the embedded stack's SMTP inbox captured, each message with its
headers, text part, raw source and HTML rendered in a sandboxed iframe. Only where the dev stack
gave the gateway the inbox's URL (MAILSTIFY_INBOX_URL); everywhere else the page does not exist."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from mailstify_servicekit.errors import NotFound

from ...service_layer.web_ports import InboxReader
from ..dependencies import Dependencies
from .campaign_pages import PREVIEW_HEADERS
from .session import Browsing, WebRoute
from .templating import render

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _inbox(dependencies: Dependencies) -> InboxReader:
    if dependencies.web.inbox is None:
        raise NotFound("there is no development inbox here: mail goes to the configured SMTP server")
    return dependencies.web.inbox


@router.get("/inbox")
async def inbox(request: Request, principal: Browsing, dependencies: Dependencies) -> Response:
    messages = list(reversed(await _inbox(dependencies).messages()))
    return render(request, "inbox/index.html", {"messages": messages}, principal=principal)


@router.get("/inbox/{message_id}")
async def message(request: Request, message_id: str, principal: Browsing, dependencies: Dependencies) -> Response:
    reader = _inbox(dependencies)
    found = await reader.message(message_id)
    raw = await reader.raw(message_id)
    if found is None or raw is None:
        raise NotFound("no such message in the inbox")
    context = {"message": found, "raw": raw.decode("utf-8", "replace")}
    return render(request, "inbox/show.html", context, principal=principal)


@router.get("/inbox/{message_id}/html")
async def message_html(message_id: str, principal: Browsing, dependencies: Dependencies) -> Response:
    found = await _inbox(dependencies).message(message_id)
    if found is None:
        raise NotFound("no such message in the inbox")
    return Response(found.html, media_type="text/html; charset=utf-8", headers=PREVIEW_HEADERS)
