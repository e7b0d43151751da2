"""The edge's path check, as a pure function and as ASGI middleware in front of a recording app."""

from __future__ import annotations

import json

import pytest

from gateway.entrypoints.edge import RejectAmbiguousPaths, ambiguous_path

REFUSED = [
    b"/api/v1/lists/../../../internal/lists/1/recipients",
    b"/api/v1/lists/..",
    b"/api/v1/./lists",
    b"/api/v1/lists/%2e%2e/%2E%2E/internal/lists/1/recipients",
    b"/api/v1/lists/.%2e/internal",
    b"/api/v1/lists/1%2f..%2f..%2finternal",
    b"/api/v1/lists/1%2F",
    b"/api/v1/lists/..%5c..%5cinternal",
    b"/api/v1/lists/..%5C",
    b"/api/v1/lists/..\\internal",
    b"/api/v1/lists/%252e%252e/internal",
    b"/api/v1/lists/%25",
]
ALLOWED = [b"/api/v1/lists", b"/api/v1/lists/12/subscribers", b"/api/v1/lists/a.b/c..d", b"/", b"/api/v1/lists/a%20b"]


@pytest.mark.parametrize("path", REFUSED)
def test_dot_segments_and_encoded_separators_are_ambiguous(path: bytes) -> None:
    assert ambiguous_path(path)


@pytest.mark.parametrize("path", ALLOWED)
def test_ordinary_paths_are_not(path: bytes) -> None:
    assert not ambiguous_path(path)


async def _call(raw_path: bytes) -> tuple[list[dict], list[bytes]]:
    reached: list[bytes] = []

    async def app(scope, receive, send) -> None:
        reached.append(scope["raw_path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": raw_path.decode(), "raw_path": raw_path, "query_string": b""}
    await RejectAmbiguousPaths(app)(scope, receive, send)
    return sent, reached


async def test_the_middleware_answers_400_and_never_calls_the_app() -> None:
    sent, reached = await _call(b"/api/v1/lists/%2e%2e/internal")
    assert reached == []
    assert sent[0]["status"] == 400
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    assert "segments" in json.loads(sent[1]["body"])["detail"]


async def test_the_middleware_passes_ordinary_paths_on() -> None:
    sent, reached = await _call(b"/api/v1/lists/1")
    assert reached == [b"/api/v1/lists/1"] and sent[0]["status"] == 204
