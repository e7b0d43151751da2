"""Lists index and the list page: search, status filter, paging, subscribers added, edited and
removed inline (htmx partials; plain form posts still work), CSV import with progress and report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from mailstify_servicekit.errors import InvalidInput

from ...service_layer import pages
from ..dependencies import Dependencies
from .session import Browsing, WebRoute, form_of
from .templating import Flash, is_htmx, redirect, render, success

router = APIRouter(route_class=WebRoute, include_in_schema=False)


@dataclass(frozen=True)
class SubscriberView:
    """Which subscribers a list page shows: the search, the status filter and the page."""

    q: str | None = None
    status: str | None = None
    cursor: str | None = None


Shown = Annotated[SubscriberView, Depends()]


def subscribers_url(list_id: str, q: str | None, status: str | None, cursor: str | None) -> str:
    query = urlencode({k: v for k, v in {"q": q, "status": status, "cursor": cursor}.items() if v})
    return f"/lists/{list_id}/subscribers" + (f"?{query}" if query else "")


async def _subscribers_partial(
    request: Request,
    principal: Browsing,
    dependencies: Dependencies,
    list_id: str,
    flashes: list[Flash],
    q: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    page = await pages.list_page(dependencies.web, principal.account_id, list_id, q, status, cursor)
    context = {"page": page, "self_url": subscribers_url(list_id, page.q, page.status, cursor), "oob": True}
    return render(request, "lists/_subscribers.html", context, principal=principal, flashes=flashes)


async def _changed(
    request: Request, principal: Browsing, dependencies: Dependencies, list_id: str, flash: Flash
) -> Response:
    """After a subscriber changed: the fresh table for htmx, the list page for a plain form."""
    if not is_htmx(request):
        return redirect(request, f"/lists/{list_id}", flash)
    return await _subscribers_partial(request, principal, dependencies, list_id, [flash])


@router.get("/lists")
async def lists_index(request: Request, principal: Browsing, dependencies: Dependencies) -> Response:
    lists = await dependencies.web.audience.lists(principal.account_id)
    return render(request, "lists/index.html", {"lists": lists.items, "errors": {}, "values": {}}, principal=principal)


@router.post("/lists")
async def create_list(request: Request, principal: Browsing, dependencies: Dependencies) -> Response:
    form = await form_of(request)
    name, description = str(form.get("name", "")).strip(), str(form.get("description", "")).strip()
    try:
        created = await dependencies.web.audience.create_list(principal.account_id, name, description or None)
    except InvalidInput as exc:
        lists = await dependencies.web.audience.lists(principal.account_id)
        context = {"lists": lists.items, "errors": {"name": exc.detail}, "values": {"name": name}}
        return render(request, "lists/index.html", context, principal=principal, status_code=422)
    return redirect(request, f"/lists/{created.id}", success(f"List “{created.name}” created."))


@router.get("/lists/{list_id}")
async def list_page(
    request: Request,
    list_id: str,
    principal: Browsing,
    dependencies: Dependencies,
    shown: Shown,
    import_id: str | None = None,
) -> Response:
    page = await pages.list_page(dependencies.web, principal.account_id, list_id, shown.q, shown.status, shown.cursor)
    job = await dependencies.web.audience.get_import(principal.account_id, import_id) if import_id else None
    context = {"page": page, "self_url": subscribers_url(list_id, page.q, page.status, shown.cursor), "job": job}
    return render(request, "lists/show.html", context, principal=principal)


@router.post("/lists/{list_id}/delete")
async def delete_list(request: Request, list_id: str, principal: Browsing, dependencies: Dependencies) -> Response:
    await dependencies.web.audience.delete_list(principal.account_id, list_id)
    return redirect(request, "/lists", success("List deleted."))


@router.get("/lists/{list_id}/subscribers")
async def subscribers(
    request: Request, list_id: str, principal: Browsing, dependencies: Dependencies, shown: Shown
) -> Response:
    return await _subscribers_partial(
        request, principal, dependencies, list_id, [], shown.q, shown.status, shown.cursor
    )


@router.post("/lists/{list_id}/subscribers")
async def add_subscriber(request: Request, list_id: str, principal: Browsing, dependencies: Dependencies) -> Response:
    added = await pages.add_subscriber(dependencies.web, principal.account_id, list_id, await form_of(request))
    return await _changed(request, principal, dependencies, list_id, success(f"{added.email} added."))


@router.get("/lists/{list_id}/subscribers/{subscriber_id}/edit")
async def edit_subscriber(
    request: Request, list_id: str, subscriber_id: str, principal: Browsing, dependencies: Dependencies
) -> Response:
    subscriber = await dependencies.web.audience.get_subscriber(principal.account_id, list_id, subscriber_id)
    context = {"subscriber": subscriber, "list_id": list_id}
    return render(request, "lists/_edit_subscriber.html" if is_htmx(request) else "lists/edit_subscriber.html",
                  context, principal=principal)  # fmt: skip


@router.post("/lists/{list_id}/subscribers/{subscriber_id}")
async def update_subscriber(
    request: Request, list_id: str, subscriber_id: str, principal: Browsing, dependencies: Dependencies
) -> Response:
    form = await form_of(request)
    updated = await pages.update_subscriber(dependencies.web, principal.account_id, list_id, subscriber_id, form)
    return await _changed(request, principal, dependencies, list_id, success(f"{updated.email} saved."))


@router.post("/lists/{list_id}/subscribers/{subscriber_id}/delete")
async def remove_subscriber(
    request: Request, list_id: str, subscriber_id: str, principal: Browsing, dependencies: Dependencies
) -> Response:
    await dependencies.web.audience.delete_subscriber(principal.account_id, list_id, subscriber_id)
    return await _changed(request, principal, dependencies, list_id, success("Subscriber removed."))


@router.post("/lists/{list_id}/imports")
async def start_import(request: Request, list_id: str, principal: Browsing, dependencies: Dependencies) -> Response:
    upload = (await request.form()).get("file")
    filename, content = "import.csv", b""
    if upload is not None and not isinstance(upload, str):
        filename, content = upload.filename or filename, await upload.read()
    job = await pages.start_import(dependencies.web, principal.account_id, list_id, filename, content)
    if not is_htmx(request):
        return redirect(request, f"/lists/{list_id}?import_id={job.id}", success("Import started."))
    return render(request, "lists/_import.html", {"job": job, "list_id": list_id}, principal=principal,
                  flashes=[success("Import started.")])  # fmt: skip


@router.get("/lists/{list_id}/imports/{import_id}")
async def import_progress(
    request: Request, list_id: str, import_id: str, principal: Browsing, dependencies: Dependencies
) -> Response:
    job = await dependencies.web.audience.get_import(principal.account_id, import_id)
    return render(request, "lists/_import.html", {"job": job, "list_id": list_id}, principal=principal)


@router.get("/suppressions")
async def suppressions(
    request: Request, principal: Browsing, dependencies: Dependencies, cursor: str | None = None
) -> Response:
    found = await dependencies.web.audience.suppressions(principal.account_id, cursor)
    return render(request, "lists/suppressions.html", {"suppressions": found}, principal=principal)


@router.post("/suppressions/lift")
async def lift_suppression(request: Request, principal: Browsing, dependencies: Dependencies) -> Response:
    email = str((await form_of(request)).get("email", "")).strip()
    await dependencies.web.audience.lift_suppression(principal.account_id, email)
    return redirect(request, "/suppressions", success(f"{email} may be mailed again."))
