"""A hard bounce suppresses the address on every list of the account (issue 6, item 4).

The SMTP server here is this module's own: it answers `550 5.1.1 ... User unknown` to RCPT TO for
the addresses in `GONE` and accepts every other one. The whole platform runs against it (the module
replaces the session's `mailstify_stack`, as tests/test_cluster.py does), with its own NATS and its
own databases on the session's PostgreSQL.
"""

from __future__ import annotations

import collections
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from mailstify_devstack import nats
from mailstify_devstack.net import LOOPBACK, free_port, free_ports
from mailstify_devstack.postgres import PostgresServer
from mailstify_devstack.processes import RunningProcess, stop_all
from mailstify_devstack.pytest_plugin import STACK_READY_TIMEOUT, STACK_TEST_SETTINGS, MailstifyStack
from mailstify_devstack.services import SERVICE_NAMES, Infrastructure, Secrets, local_url, service_process, wait_until_ready

from .conftest import Api, until

pytestmark = pytest.mark.e2e

TAG = uuid.uuid4().hex[:8]
GONE = f"gone.{TAG}@example.com"


class RefusingServer:
    """aiosmtpd handler: 550 for the addresses that do not exist, accept the rest; counts RCPTs."""

    def __init__(self, gone: set[str]):
        self.gone = gone
        self.rcpt_attempts: collections.Counter[str] = collections.Counter()
        self.delivered: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_attempts[address] += 1
        if address in self.gone:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        self.delivered.extend(envelope.rcpt_tos)
        return "250 2.0.0 Ok: queued"


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[RefusingServer, int]]:
    handler = RefusingServer({GONE})
    port = free_port()
    controller = Controller(handler, hostname=LOOPBACK, port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture(scope="module")
def mailstify_stack(
    smtp_server: tuple[RefusingServer, int], postgres_server: PostgresServer, mailstify_session_dir: Path
) -> Iterator[MailstifyStack]:
    """The five services sending to `smtp_server`; what the `api` fixture signs up against here."""
    _, smtp_port = smtp_server
    logs = mailstify_session_dir / "logs"
    with nats.running(mailstify_session_dir / "bounce-nats", logs / "bounce-nats.log") as nats_server:
        ports = dict(zip(SERVICE_NAMES, free_ports(len(SERVICE_NAMES)), strict=True))
        infra = Infrastructure(nats_server.url, postgres_server.server_url, LOOPBACK, smtp_port)
        secrets = Secrets.generate()
        processes: dict[str, RunningProcess] = {}
        try:
            for name in SERVICE_NAMES:
                spec = service_process(name, ports, infra, secrets)
                env = {
                    **spec.env,
                    **STACK_TEST_SETTINGS.get(name, {}),
                    "MAILSTIFY_DATABASE_URL": f"{postgres_server.server_url}/bounce_{name}",
                }
                processes[name] = RunningProcess.start(dataclasses.replace(spec, env=env), logs / f"bounce-{name}.log")
            stack = MailstifyStack(
                service_urls={name: local_url(port) for name, port in ports.items()},
                nats_url=nats_server.url,
                inbox=None,  # type: ignore[arg-type]  # mail goes to smtp_server, which the test reads
                internal_token=secrets.internal_token,
                processes=processes,
            )
            problems = wait_until_ready(
                stack.service_urls, STACK_READY_TIMEOUT, give_up=lambda: not all(p.alive() for p in processes.values())
            )
            if problems:
                pytest.fail(f"the services did not become ready:\n{stack.readiness_report(problems)}", pytrace=False)
            yield stack
        finally:
            stop_all(processes.values())


async def _sent(api: Api, campaign_id: str) -> dict:
    async def finished() -> dict | None:
        current = await api.call("GET", f"/campaigns/{campaign_id}", 200)
        return current if current["status"] == "sent" else None

    return await until(finished, timeout=60)


async def _status(api: Api, list_id: str, subscriber_id: str) -> str:
    return (await api.call("GET", f"/lists/{list_id}/subscribers/{subscriber_id}", 200))["status"]


async def test_a_hard_bounce_suppresses_the_address_on_every_list(api: Api, smtp_server) -> None:
    server, _ = smtp_server
    kept, other = f"kept.{TAG}@example.com", f"other.{TAG}@example.com"
    first_list, (gone_first, _) = await api.new_list_with([{"email": GONE, "first_name": "Gone"}, {"email": kept}])
    second_list, (gone_second, other_member) = await api.new_list_with([{"email": GONE}, {"email": other}])

    campaign = await api.new_campaign(first_list["id"])
    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})
    done = await _sent(api, campaign["id"])
    assert (done["sent_count"], done["failed_count"]) == (1, 1), done

    async def bounced_everywhere() -> bool:
        return (
            await _status(api, first_list["id"], gone_first["id"]) == "bounced"
            and await _status(api, second_list["id"], gone_second["id"]) == "bounced"
        )

    await until(bounced_everywhere, timeout=30)
    suppressed = await api.call("GET", "/suppressions", 200)
    assert [(s["email"], s["reason"]) for s in suppressed["items"]] == [(GONE, "bounced")]
    assert "550" in suppressed["items"][0]["detail"]
    assert (await api.call("GET", f"/lists/{second_list['id']}", 200))["counts"] == {"subscribed": 1, "bounced": 1}

    # The next campaign, to the other list, skips the address: no second RCPT TO for it.
    second = await api.new_campaign(second_list["id"])
    await api.call("POST", f"/campaigns/{second['id']}/send", 202, json={})
    done = await _sent(api, second["id"])
    assert (done["total"], done["sent_count"], done["failed_count"]) == (1, 1, 0), done
    assert server.rcpt_attempts[GONE] == 1
    assert server.delivered.count(other) == 1 and server.delivered.count(kept) == 1
    assert await _status(api, second_list["id"], other_member["id"]) == "subscribed"

    # Lifting the suppression lets the address be mailed again.
    await api.call("DELETE", f"/suppressions/{GONE}", 204)
    assert (await api.call("GET", "/suppressions", 200))["items"] == []
    assert await _status(api, first_list["id"], gone_first["id"]) == "subscribed"
    assert (await api.client.delete(f"/api/v1/suppressions/{GONE}")).status_code == 404


async def test_the_suppression_list_is_the_accounts_own(api: Api) -> None:
    page = await api.call("GET", "/suppressions", 200, params={"limit": 10})
    assert page == {"items": [], "next_cursor": None}
    for params in ({"limit": 0}, {"cursor": "nope!"}):
        assert (await api.client.get("/api/v1/suppressions", params=params)).status_code == 422
