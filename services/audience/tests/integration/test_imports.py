"""CSV imports against real PostgreSQL: the job's life, both modes, rejected rows by line, refused
files leaving the list unchanged, one running import per list, and export round trips."""

from __future__ import annotations

import csv
import io

import pytest

from audience.config import Settings
from audience.entrypoints.app import create_app
from mailstify_devstack.inprocess import running_service, until

from .conftest import INTERNAL_TOKEN, AccountClient

pytestmark = pytest.mark.integration


async def start_import(account: AccountClient, list_id: str, content: bytes, **params: str):
    files = {"file": ("people.csv", content, "text/csv")}
    return await account.request("POST", f"/api/v1/lists/{list_id}/imports", files=files, params=params)


async def finished(account: AccountClient, import_id: str) -> dict:
    async def done() -> dict | None:
        job = await account.call("GET", f"/api/v1/imports/{import_id}", 200)
        return job if job["status"] in ("completed", "failed") else None

    return await until(done, timeout=30)


async def imported(account: AccountClient, list_id: str, content: bytes, **params: str) -> dict:
    response = await start_import(account, list_id, content, **params)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return await finished(account, response.json()["id"])


async def members(account: AccountClient, list_id: str) -> list[dict]:
    page = await account.call("GET", f"/api/v1/lists/{list_id}/subscribers", 200, params={"limit": 500})
    return page["items"]


async def test_an_import_adds_valid_rows_and_reports_the_others_by_line(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    content = (
        "\ufeffEmail;First Name;last_name;plan\r\n"
        "Ann@Example.com;Ann;Lee;pro\r\n"
        "not-an-address;Bob;;\r\n"
        '"carl@example.com";"Carl; Jr.";"Multi\nLine";\r\n'
        "ann@example.com;Annie;;\r\n"
    ).encode()

    job = await imported(account, mailing_list["id"], content)

    assert job["status"] == "completed", job
    assert (job["processed"], job["imported"], job["skipped"], job["error_count"]) == (4, 2, 0, 2)
    assert [error["line"] for error in job["errors"]] == [3, 6]
    assert "not a valid email address" in job["errors"][0]["reason"]
    assert job["errors"][1]["reason"] == "duplicate of line 2 (same address)"
    people = {m["email"]: m for m in await members(account, mailing_list["id"])}
    assert set(people) == {"ann@example.com", "carl@example.com"}
    assert (people["ann@example.com"]["first_name"], people["ann@example.com"]["attributes"]) == ("Ann", {"plan": "pro"})
    assert (people["carl@example.com"]["first_name"], people["carl@example.com"]["last_name"]) == ("Carl; Jr.", "Multi\nLine")
    shown = await account.call("GET", f"/api/v1/lists/{mailing_list['id']}", 200)
    assert shown["subscriber_count"] == 2 and shown["counts"] == {"subscribed": 2}


async def test_skip_keeps_and_update_changes_subscribers_already_on_the_list(account: AccountClient) -> None:
    mailing_list = await account.new_list()
    list_id = mailing_list["id"]
    await account.subscribe(list_id, "dora@example.com", first_name="Dora", attributes={"plan": "free", "city": "Oslo"})
    left = await account.subscribe(list_id, "eve@example.com")
    await account.call("PATCH", f"/api/v1/lists/{list_id}/subscribers/{left['id']}", 200, json={"status": "unsubscribed"})
    content = b"email,first_name,plan\ndora@example.com,Doris,pro\neve@example.com,Eve,\nfred@example.com,Fred,\n"

    skipped = await imported(account, list_id, content)
    assert (skipped["imported"], skipped["updated"], skipped["skipped"]) == (1, 0, 2)
    dora = next(m for m in await members(account, list_id) if m["email"] == "dora@example.com")
    assert (dora["first_name"], dora["attributes"]) == ("Dora", {"plan": "free", "city": "Oslo"})

    updated = await imported(account, list_id, content, mode="update")
    assert (updated["imported"], updated["updated"], updated["skipped"]) == (0, 3, 0)
    people = {m["email"]: m for m in await members(account, list_id)}
    assert (people["dora@example.com"]["first_name"], people["dora@example.com"]["attributes"]) == (
        "Doris",
        {"plan": "pro", "city": "Oslo"},
    )
    # An import never resubscribes someone who left.
    assert people["eve@example.com"]["status"] == "unsubscribed"
    assert (await account.call("GET", f"/api/v1/lists/{list_id}", 200))["counts"] == {"subscribed": 2, "unsubscribed": 1}


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "the file is empty"),
        (b"\n\n  \n", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"name,plan\nann,pro\n", "'email' column"),
        ("email,first_name\nzoë@example.com,Zoë\n".encode("latin-1"), "line 2 is not UTF-8"),
    ],
    ids=["empty", "blank lines", "binary", "no email column", "latin-1"],
)
async def test_a_file_refused_at_its_start_is_a_422_and_creates_no_job(
    account: AccountClient, content: bytes, reason: str
) -> None:
    mailing_list = await account.new_list()
    response = await start_import(account, mailing_list["id"], content)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert await members(account, mailing_list["id"]) == []


@pytest.mark.parametrize(
    "tail, reason",
    [
        (b"late@example.com,L\xe9a\n", "line 202 is not UTF-8"),
        (b"long@example.com," + b"x" * (10 * 1024 * 1024) + b"\n", "line 202 is longer than 64 KB"),
    ],
    ids=["latin-1", "10 MB line"],
)
async def test_a_file_refused_part_way_fails_the_job_and_leaves_the_list_unchanged(
    account: AccountClient, tail: bytes, reason: str
) -> None:
    mailing_list = await account.new_list()
    await account.subscribe(mailing_list["id"], "kept@example.com")
    # Past the rows read before the upload is answered: the job starts, then fails.
    content = b"email,first_name\n" + b"".join(b"p%d@example.com,P\n" % n for n in range(200)) + tail

    job = await imported(account, mailing_list["id"], content, mode="update")

    assert job["status"] == "failed" and reason in job["detail"], job
    assert [m["email"] for m in await members(account, mailing_list["id"])] == ["kept@example.com"]


async def test_bad_requests_are_4xx(account: AccountClient, other_account: AccountClient) -> None:
    mailing_list = await account.new_list()
    path = f"/api/v1/lists/{mailing_list['id']}/imports"
    assert (await start_import(account, mailing_list["id"], b"email\na@example.com\n", mode="merge")).status_code == 422
    assert (await account.request("POST", path, json={"file": "x"})).status_code == 422
    no_file = await account.request("POST", path, files={"other": ("x.csv", b"email\n")})
    assert no_file.status_code == 422 and "'file'" in no_file.json()["detail"]
    assert (await start_import(other_account, mailing_list["id"], b"email\na@example.com\n")).status_code == 404
    assert (await account.request("GET", "/api/v1/imports/999999")).status_code == 404
    started = await start_import(account, mailing_list["id"], b"email\na@example.com\n")
    assert (await other_account.request("GET", f"/api/v1/imports/{started.json()['id']}")).status_code == 404


async def test_one_running_import_per_list(account: AccountClient) -> None:
    mailing_list, other_list = await account.new_list(), await account.new_list()
    big = b"email\n" + b"".join(b"p%d@example.com\n" % n for n in range(100_000))
    first = await start_import(account, mailing_list["id"], big)
    assert first.status_code == 202
    second = await start_import(account, mailing_list["id"], b"email\nq@example.com\n")
    assert second.status_code == 409 and "already running" in second.json()["detail"]
    elsewhere = await start_import(account, other_list["id"], b"email\nq@example.com\n")
    assert elsewhere.status_code == 202
    job = await finished(account, first.json()["id"])
    assert (job["status"], job["imported"]) == ("completed", 100_000)
    assert (await start_import(account, mailing_list["id"], b"email\nq@example.com\n")).status_code == 202


async def test_an_export_neutralises_formulas_and_imports_back_as_the_same_subscribers(account: AccountClient) -> None:
    source = await account.new_list()
    await account.subscribe(source["id"], "ann@example.com", first_name="=HYPERLINK(\"http://x\")", attributes={"plan": "pro"})
    await account.subscribe(source["id"], "bob@example.com", last_name="+1 555", attributes={"note": "@home", "city": "Köln"})
    await account.subscribe(source["id"], "cid@example.com", first_name="Cid, \"the\" Kid")

    exported = await account.request("GET", f"/api/v1/lists/{source['id']}/export")

    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    text = exported.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["email", "first_name", "last_name", "status", "created_at", "city", "note", "plan"]
    assert rows[0]["first_name"] == "'=HYPERLINK(\"http://x\")"
    assert (rows[1]["last_name"], rows[1]["note"], rows[1]["city"]) == ("'+1 555", "'@home", "Köln")
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())

    copy = await account.new_list()
    job = await imported(account, copy["id"], exported.content)
    assert (job["status"], job["imported"], job["error_count"]) == ("completed", 3, 0)

    def comparable(items: list[dict]) -> list[tuple]:
        return [(m["email"], m["first_name"], m["last_name"], m["status"], m["attributes"]) for m in items]

    assert comparable(await members(account, copy["id"])) == comparable(await members(account, source["id"]))


async def test_an_export_of_another_accounts_list_is_404(account: AccountClient, other_account: AccountClient) -> None:
    mailing_list = await account.new_list()
    assert (await other_account.request("GET", f"/api/v1/lists/{mailing_list['id']}/export")).status_code == 404


async def test_a_file_over_the_size_limit_is_a_413_and_nothing_is_kept(fresh_database: str, nats_server, tmp_path) -> None:
    spool = tmp_path / "spool"
    settings = Settings(
        database_url=fresh_database,
        nats_url=nats_server.url,
        internal_token=INTERNAL_TOKEN,
        import_max_bytes=4096,
        import_spool_dir=spool,
    )
    async with running_service(create_app(settings)) as http:
        account = AccountClient(http, "acct-limits")
        mailing_list = await account.new_list()
        content = b"email\n" + b"".join(b"p%d@example.com\n" % n for n in range(1000))
        refused = await start_import(account, mailing_list["id"], content)
        assert refused.status_code == 413 and "larger than the limit" in refused.json()["detail"]
        assert list(spool.iterdir()) == []
        accepted = await imported(account, mailing_list["id"], content[:2000].rsplit(b"\n", 1)[0] + b"\n")
        assert accepted["status"] == "completed" and accepted["imported"] > 50
        assert list(spool.iterdir()) == []  # the job deleted its upload
