"""CSV import and export through the gateway (issue 6, items 1-2): the status codes, every kind of bad
file, both modes against subscribers already on the list, and an export that is safe to open in a
spreadsheet and imports back as the same subscribers."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from .conftest import Api, until

pytestmark = pytest.mark.e2e


async def _upload(api: Api, list_id: str, content: bytes, **params: str):
    files = {"file": ("subscribers.csv", content, "text/csv")}
    return await api.client.post(f"/api/v1/lists/{list_id}/imports", files=files, params=params)


async def _import(api: Api, list_id: str, content: bytes, **params: str) -> dict:
    started = await _upload(api, list_id, content, **params)
    assert started.status_code == 202, started.text
    assert set(started.json()) == {"id", "status"}

    async def finished() -> dict | None:
        job = await api.call("GET", f"/imports/{started.json()['id']}", 200)
        return job if job["status"] in ("completed", "failed") else None

    return await until(finished, timeout=60, interval=0.1)


async def _emails(api: Api, list_id: str) -> list[str]:
    page = await api.call("GET", f"/lists/{list_id}/subscribers", 200, params={"limit": 500})
    return [item["email"] for item in page["items"]]


async def _new_list(api: Api) -> dict:
    return await api.call("POST", "/lists", 201, json={"name": f"import {uuid.uuid4().hex[:6]}"})


async def test_rejected_rows_are_reported_by_line_and_both_modes_handle_the_list(api: Api) -> None:
    tag = uuid.uuid4().hex[:8]
    mailing_list = await _new_list(api)
    list_id = mailing_list["id"]
    await api.call("POST", f"/lists/{list_id}/subscribers", 201, json={"email": f"on.list.{tag}@example.com", "first_name": "Old"})
    content = (
        f"email;first_name;team\n"
        f"new.{tag}@example.com;New;a\n"
        f"on.list.{tag}@example.com;Updated;b\n"
        f"no-at-sign.{tag}.example.com;Bad;c\n"
        f"NEW.{tag}@Example.com;Again;d\n"
    ).encode()

    skipped = await _import(api, list_id, content)
    assert skipped["status"] == "completed", skipped
    assert (skipped["processed"], skipped["imported"], skipped["updated"], skipped["skipped"]) == (4, 1, 0, 1)
    assert [(e["line"], e["reason"][:20]) for e in skipped["errors"]] == [(4, f"'no-at-sign.{tag}.exa"[:20]), (5, "duplicate of line 2 ")]
    assert skipped["error_count"] == 2

    updated = await _import(api, list_id, content, mode="update")
    assert (updated["imported"], updated["updated"], updated["skipped"], updated["error_count"]) == (0, 2, 0, 2)
    members = (await api.call("GET", f"/lists/{list_id}/subscribers", 200))["items"]
    old = next(m for m in members if m["email"] == f"on.list.{tag}@example.com")
    assert (old["first_name"], old["attributes"]) == ("Updated", {"team": "b"})
    assert (await api.call("GET", f"/lists/{list_id}", 200))["subscriber_count"] == 2


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "the file is empty"),
        (bytes(range(256)) * 64, "binary"),
        (b"name,city\nAda,London\n", "'email' column"),
        ("email,first_name\nrené@example.com,René\n".encode("latin-1"), "not UTF-8"),
        (b"email,first_name\nada@example.com," + b"x" * (10 * 1024 * 1024) + b"\n", "longer than 64 KB"),
    ],
    ids=["empty", "binary garbage", "no email column", "latin-1", "10 MB line"],
)
async def test_a_file_that_cannot_be_imported_is_refused_and_the_list_is_unchanged(
    api: Api, content: bytes, expected: str
) -> None:
    mailing_list = await _new_list(api)
    await api.call("POST", f"/lists/{mailing_list['id']}/subscribers", 201, json={"email": f"kept.{uuid.uuid4().hex[:6]}@example.com"})
    before = await _emails(api, mailing_list["id"])

    refused = await _upload(api, mailing_list["id"], content)

    assert refused.status_code == 422, refused.text
    assert expected in refused.json()["detail"]
    assert await _emails(api, mailing_list["id"]) == before


async def test_a_file_that_goes_wrong_part_way_fails_the_job_and_changes_nothing(api: Api) -> None:
    mailing_list = await _new_list(api)
    tag = uuid.uuid4().hex[:8]
    good = b"".join(f"p{n}.{tag}@example.com,P{n}\n".encode() for n in range(500))
    job = await _import(api, mailing_list["id"], b"email,first_name\n" + good + b"late@example.com,L\xe9a\n")
    assert job["status"] == "failed" and "line 502 is not UTF-8" in job["detail"], job
    assert await _emails(api, mailing_list["id"]) == []


async def test_import_status_codes(api: Api) -> None:
    mailing_list = await _new_list(api)
    path = f"/api/v1/lists/{mailing_list['id']}/imports"
    assert (await _upload(api, mailing_list["id"], b"email\nx@example.com\n", mode="replace")).status_code == 422
    assert (await api.client.post(path, content=b"email\n", headers={"content-type": "text/csv"})).status_code == 422
    assert (await _upload(api, "999999999", b"email\nx@example.com\n")).status_code == 404
    assert (await api.client.get("/api/v1/imports/999999999")).status_code == 404
    assert (await api.client.get("/api/v1/imports/not-an-id")).status_code == 404
    big = b"email\n" + b"".join(b"r%d@example.com\n" % n for n in range(100_000))
    running = await _upload(api, mailing_list["id"], big)
    assert running.status_code == 202
    second = await _upload(api, mailing_list["id"], b"email\nx@example.com\n")
    assert second.status_code == 409 and "already running" in second.json()["detail"]


async def test_the_export_is_safe_in_a_spreadsheet_and_imports_back_the_same(api: Api) -> None:
    tag = uuid.uuid4().hex[:8]
    source = await _new_list(api)
    people = [
        {"email": f"ann.{tag}@example.com", "first_name": "=cmd|' /C calc'!A0", "attributes": {"plan": "pro"}},
        {"email": f"bob.{tag}@example.com", "last_name": "-2+3", "attributes": {"note": "@SUM(1)", "city": "Zürich"}},
        {"email": f"cy.{tag}@example.com", "first_name": "Cy, \"Junior\"", "attributes": {"tab": "\tx"}},
    ]
    for person in people:
        await api.call("POST", f"/lists/{source['id']}/subscribers", 201, json=person)
    left = (await api.call("GET", f"/lists/{source['id']}/subscribers", 200))["items"][2]
    await api.call("PATCH", f"/lists/{source['id']}/subscribers/{left['id']}", 200, json={"status": "unsubscribed"})

    exported = await api.client.get(f"/api/v1/lists/{source['id']}/export")

    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0] == ["email", "first_name", "last_name", "status", "created_at", "city", "note", "plan", "tab"]
    cells = [cell for row in rows[1:] for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert "'=cmd|' /C calc'!A0" in cells and "'-2+3" in cells and "'@SUM(1)" in cells and "'\tx" in cells

    copy = await _new_list(api)
    job = await _import(api, copy["id"], exported.content)
    assert (job["status"], job["imported"], job["error_count"]) == ("completed", 3, 0), job

    async def subscribers(list_id: str) -> list[tuple]:
        items = (await api.call("GET", f"/lists/{list_id}/subscribers", 200))["items"]
        return [(s["email"], s["first_name"], s["last_name"], s["status"], s["attributes"]) for s in items]

    assert await subscribers(copy["id"]) == await subscribers(source["id"])
    assert (await api.client.get("/api/v1/lists/999999999/export")).status_code == 404
