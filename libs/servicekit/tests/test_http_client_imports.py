"""A request through httpx imports nothing: httpcore imports sniffio on every lock and event setup
and falls back to asyncio when it is missing, which made each request search sys.path (about 0.7 ms
of CPU, encode/httpcore#1103). servicekit depends on sniffio so that the import is a dict lookup."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib.abc import MetaPathFinder
from types import ModuleType
from typing import Any

import httpx

from mailstify_devstack.inprocess import serve_app


class ImportSearches(MetaPathFinder):
    """Records every module the import system goes looking for (a module already imported is not)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> None:
        self.names.append(fullname)


async def _ok(
    scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_a_request_searches_for_no_module() -> None:
    searches = ImportSearches()
    async with serve_app(_ok) as url, httpx.AsyncClient() as client:
        assert (await client.get(url)).text == "ok"  # whatever a first request imports, once
        sys.meta_path.insert(0, searches)
        try:
            for _ in range(3):
                assert (await client.get(url)).text == "ok"
        finally:
            sys.meta_path.remove(searches)
    assert searches.names == []
