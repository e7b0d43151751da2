"""Query parameters every paginated route takes (FastAPI side of `pagination`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from .pagination import MAX_PAGE_SIZE

PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"items per page, 1..{MAX_PAGE_SIZE}")]
PageCursor = Annotated[str | None, Query(description="`next_cursor` of the previous page")]
