"""A request through httpx imports nothing: httpcore imports sniffio on every lock and event setup
and falls back to asyncio when it is missing, which made each request search sys.path (about 0.7 ms
of CPU, encode/httpcore#1103). servicekit depends on sniffio so that the import is a dict lookup."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from types import ModuleType

import httpx

LOOPBACK = "127.0.0.1"


class ImportSearches(MetaPathFinder):
    """Records every module the import system goes looking for (a module already imported is not)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> None:
        self.names.append(fullname)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    finally:
        writer.close()


async def test_a_request_searches_for_no_module() -> None:
    server = await asyncio.start_server(_answer, LOOPBACK, 0)
    url = f"http://{LOOPBACK}:{server.sockets[0].getsockname()[1]}/"
    searches = ImportSearches()
    try:
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).text == "ok"  # whatever a first request imports, once
            sys.meta_path.insert(0, searches)
            try:
                for _ in range(3):
                    assert (await client.get(url)).text == "ok"
            finally:
                sys.meta_path.remove(searches)
    finally:
        server.close()
        await server.wait_closed()
    assert searches.names == []
