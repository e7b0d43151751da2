"""An import whose audience process is SIGKILLed mid-way: after a restart the list is as it was and
the job says failed. The service runs as a real process here (the same command line as in the
stack), because only a process can be killed."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailstify_devstack.net import LOOPBACK, free_port
from mailstify_devstack.processes import ProcessSpec, RunningProcess
from mailstify_devstack.services import wait_until_ready
from mailstify_servicekit import ACCOUNT_HEADER, TOKEN_HEADER

pytestmark = pytest.mark.integration

TOKEN = "crash-test-token"


class AudienceProcess:
    def __init__(self, database_url: str, nats_url: str, log_dir: Path):
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = log_dir / "audience.log"
        self._spec = ProcessSpec(
            "audience",
            [sys.executable, "-m", "uvicorn", "--factory", "audience.entrypoints.app:create_app",
             "--host", LOOPBACK, "--port", str(self.port), "--no-access-log"],
            {"MAILSTIFY_DATABASE_URL": database_url, "MAILSTIFY_NATS_URL": nats_url,
             "MAILSTIFY_INTERNAL_TOKEN": TOKEN, "MAILSTIFY_IMPORT_SPOOL_DIR": str(log_dir / "spool")},
        )  # fmt: skip
        self.process: RunningProcess | None = None

    def start(self) -> None:
        self.process = RunningProcess.start(self._spec, self.log_path)
        problems = wait_until_ready({"audience": self.url}, 60, give_up=lambda: not self.process.alive())
        assert not problems, f"audience not ready: {problems}\n{self.process.log_tail()}"

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.stop()


@pytest.fixture
def audience(fresh_database: str, nats_server, tmp_path: Path) -> Iterator[AudienceProcess]:
    service = AudienceProcess(fresh_database, nats_server.url, tmp_path)
    service.start()
    yield service
    if service.process is not None:
        service.process.stop()


def _poll(client: httpx.Client, path: str, done, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(path).json()
        if done(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached the expected state; last: {body}")


def test_a_killed_import_leaves_the_list_as_before_and_is_failed_after_restart(audience: AudienceProcess) -> None:
    headers = {TOKEN_HEADER: TOKEN, ACCOUNT_HEADER: f"acct-{uuid.uuid4().hex[:8]}"}
    with httpx.Client(base_url=audience.url, headers=headers, timeout=30) as client:
        list_id = client.post("/api/v1/lists", json={"name": "crash"}).json()["id"]
        assert client.post(f"/api/v1/lists/{list_id}/subscribers", json={"email": "kept@example.com"}).status_code == 201
        rows = b"email,first_name\n" + b"".join(b"p%d@example.com,P%d\n" % (n, n) for n in range(400_000))
        started = client.post(f"/api/v1/lists/{list_id}/imports", files={"file": ("big.csv", rows, "text/csv")})
        assert started.status_code == 202, started.text
        job_path = f"/api/v1/imports/{started.json()['id']}"
        # Mid-way: rows are being staged, nothing is merged yet.
        _poll(client, job_path, lambda job: job["status"] == "running" and job["processed"] >= 20_000)

        audience.kill()
        audience.start()

        job = _poll(client, job_path, lambda job: job["status"] != "running")
        assert job["status"] == "failed" and "stopped while this import ran" in job["detail"], job
        members = client.get(f"/api/v1/lists/{list_id}/subscribers").json()["items"]
        assert [m["email"] for m in members] == ["kept@example.com"]
        assert client.get(f"/api/v1/lists/{list_id}").json()["counts"] == {"subscribed": 1}
        # The list takes a new import at once.
        again = client.post(f"/api/v1/lists/{list_id}/imports", files={"file": ("a.csv", b"email\na@example.com\n")})
        assert again.status_code == 202, again.text
