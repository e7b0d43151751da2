"""Public routes for CSV imports (served under /api/v1, behind the gateway)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from mailstify_servicekit import AccountId

from ..service_layer import imports
from .dependencies import AudienceUow, Dependencies
from .schemas import ImportOut, ImportStarted
from .upload import deleted_on_error, spool_upload

router = APIRouter(prefix="/api/v1", tags=["imports"])

MODE = "`skip` (default): addresses already on the list are left as they are; `update`: their fields are updated"


@router.post("/lists/{list_id}/imports", status_code=202)
async def start_import(
    list_id: str,
    request: Request,
    account_id: AccountId,
    dependencies: Dependencies,
    mode: Annotated[str | None, Query(description=MODE)] = None,
) -> ImportStarted:
    """multipart/form-data with the CSV as `file` (and optionally `mode`, also accepted as a form field)."""
    # 404 / 409 before a large body is read.
    await imports.importable_list(dependencies.uow(), account_id, list_id)
    limits = dependencies.uploads
    upload = await spool_upload(request, limits.spool_dir, limits.max_bytes)
    with deleted_on_error(upload):
        chosen_mode = upload.fields.get("mode") or mode
        job = await imports.create_import(
            dependencies.uow(), account_id, list_id, chosen_mode, upload.file_name, upload.path
        )
    dependencies.imports.start(job, upload.path)
    return ImportStarted(id=str(job.id), status=job.status)


@router.get("/imports/{import_id}")
async def get_import(import_id: str, account_id: AccountId, uow: AudienceUow) -> ImportOut:
    return ImportOut.model_validate(await imports.get_import(uow, account_id, import_id))
