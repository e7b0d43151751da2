"""`close_extras`: the shutdown hook that closes what `on_boot` kept in `runtime.extras`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from mailstify_servicekit import Runtime, close_extras


class Closeable:
    def __init__(self, name: str, closed: list[str]) -> None:
        self.name = name
        self._closed = closed

    async def aclose(self) -> None:
        self._closed.append(self.name)


def a_runtime(**extras: Any) -> Runtime:
    # The hook touches nothing but `extras`; a full Runtime would need a database engine.
    return cast(Runtime, SimpleNamespace(extras=dict(extras)))


async def test_each_named_collaborator_is_closed_in_order_and_removed() -> None:
    closed: list[str] = []
    runtime = a_runtime(pool=Closeable("pool", closed), client=Closeable("client", closed), other="kept")

    await close_extras("client", "pool")(runtime)

    assert closed == ["client", "pool"]
    assert runtime.extras == {"other": "kept"}


async def test_a_collaborator_never_opened_is_skipped() -> None:
    # Shutdown can come before boot reached `on_boot` (PostgreSQL never answered).
    closed: list[str] = []
    runtime = a_runtime(pool=Closeable("pool", closed))

    await close_extras("client", "pool")(runtime)

    assert closed == ["pool"]
    assert runtime.extras == {}


async def test_closing_twice_closes_once() -> None:
    closed: list[str] = []
    runtime = a_runtime(client=Closeable("client", closed))
    hook = close_extras("client")

    await hook(runtime)
    await hook(runtime)

    assert closed == ["client"]
