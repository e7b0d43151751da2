"""Text PostgreSQL cannot store is refused where it enters: request bodies (RequestModel) and the
path or query string (StorableTextGuard)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from mailstify_servicekit.app import install_error_handlers
from mailstify_servicekit.text import RequestModel, StorableTextGuard, unstorable


class Body(RequestModel):
    name: str
    tags: list[str] = []
    attributes: dict[str, Any] | None = None


@pytest.mark.parametrize(
    "data",
    [
        {"name": "a\x00b"},
        {"name": "\ud800"},
        {"name": "ok", "tags": ["x", "y\x00"]},
        {"name": "ok", "attributes": {"nested": {"deeper": ["\x00"]}}},
        {"name": "ok", "attributes": {"key\x00": 1}},
        {"name": "ok", "attributes": {"n": float("inf")}},
    ],
)
def test_unstorable_text_anywhere_in_a_body_is_refused(data: dict) -> None:
    with pytest.raises(ValidationError) as refused:
        Body.model_validate(data)
    assert refused.value.errors()[0]["type"] == "unstorable_text"


def test_storable_text_passes() -> None:
    body = Body.model_validate({"name": "Ünïcode ✓ \x01 tab\t", "attributes": {"a": [1, 2.5, None, True]}})
    assert body.name.startswith("Ünïcode")
    assert unstorable({"a": ["b", {"c": "d"}]}) is None


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(StorableTextGuard)

    @app.post("/things/{thing}")
    async def create(thing: str, body: Body, q: str | None = None) -> dict:
        return {"thing": thing, "q": q, "name": body.name}

    return TestClient(app)


def test_the_app_answers_422_with_a_detail_for_a_nul_in_a_body(client: TestClient) -> None:
    answer = client.post("/things/t", json={"name": "a\u0000b"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("name: must not contain NUL")


@pytest.mark.parametrize("url", ["/things/a%00b", "/things/t?q=a%00", "/things/t?q=%00&x=1", "/things/t?a%00=1"])
def test_a_nul_in_the_path_or_query_is_refused_with_400(client: TestClient, url: str) -> None:
    answer = client.post(url, json={"name": "ok"})
    assert answer.status_code == 400
    assert "NUL" in answer.json()["detail"]


def test_ordinary_requests_pass_the_guard(client: TestClient) -> None:
    answer = client.post("/things/a%20b?q=x%2Fy", json={"name": "ok"})
    assert answer.status_code == 200 and answer.json() == {"thing": "a b", "q": "x/y", "name": "ok"}
