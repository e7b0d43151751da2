"""The services run on uvloop (decision 0028): every service is started by uvicorn with its default
`--loop auto`, which takes uvloop only when it is installed; servicekit depends on it for that."""

from __future__ import annotations

import asyncio

import uvicorn


def test_uvicorn_runs_a_service_on_uvloop() -> None:
    factory = uvicorn.Config("unused:app").get_loop_factory()  # the command line's default, --loop auto

    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop"), type(loop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()
