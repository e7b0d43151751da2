"""`mailstify up` starts the whole platform, says when it is up, and Ctrl-C leaves no process behind;
with MAILSTIFY_SMTP_HOST set, mail goes through that relay and not the dev inbox.

Runs the real services: it passes once every service answers /healthz and /readyz."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sysconfig
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailstify_devstack.net import free_ports
from mailstify_devstack.services import Ports

UP_TIMEOUT = 120.0
PORT_FLAGS = [f"--{name}-port" for name in Ports().named()]


# Fields of /proc/<pid>/stat, counted after the command name (which may contain spaces).
STATE, PARENT, START_TIME = 0, 1, 19


def stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # exited meanwhile
        return None
    return stat[stat.rindex(")") + 2 :].split()


def descendants(root: int) -> dict[int, str]:
    """pid -> start time of every process below `root` (the start time tells a reused pid apart)."""
    table = {pid: fields for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if (fields := stat_fields(pid))}
    found: dict[int, str] = {}
    parents = [root]
    while parents:
        parent = parents.pop()
        for pid, fields in table.items():
            if int(fields[PARENT]) == parent and pid not in found:
                found[pid] = fields[START_TIME]
                parents.append(pid)
    return found


def still_running(processes: dict[int, str]) -> dict[int, str]:
    """Those of `processes` that still exist and are not zombies, with their command lines."""
    alive = {}
    for pid, started in processes.items():
        fields = stat_fields(pid)
        if fields and fields[START_TIME] == started and fields[STATE] != "Z":
            with contextlib.suppress(OSError):  # exited meanwhile
                alive[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return alive


class Output:
    """Collects a process's output lines on a thread, so the test can wait for one with a timeout."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)
            self._new.put(line)
        self._new.put(None)  # the process closed its output: it is gone

    def wait_for(self, text: str, timeout: float) -> str | None:
        """The first line containing `text`; None when the output ends or the time is up first."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                return None
            if line is None or text in line:
                return line
        return None

    def tail(self, count: int = 80) -> str:
        return "".join(self.lines[-count:])


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    # Short and reachable by PostgreSQL's unprivileged user (pytest's tmp_path is under a 0700 directory).
    directory = Path(tempfile.mkdtemp(prefix="mailstify-up-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


class Up:
    """`mailstify up` as a subprocess in its own process group, on free ports."""

    def __init__(self, stack_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        command = [str(Path(sysconfig.get_path("scripts")) / "mailstify"), "up", "--dir", str(stack_dir)]
        command += [str(part) for flag_and_port in self.ports.items() for part in flag_and_port]
        # Hermetic: none of the developer's own SMTP settings, only the test's.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSTIFY_SMTP_")}
        env |= {"PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
        )
        self.output = Output(self.process.stdout)
        self.gateway = f"http://127.0.0.1:{self.ports['--gateway-port']}"
        self.inbox = f"http://127.0.0.1:{self.ports['--inbox-port']}"

    def wait_until_up(self) -> str:
        banner = self.output.wait_for("Mailstify is up", UP_TIMEOUT)
        assert banner is not None, f"`mailstify up` did not come up; its output:\n{self.output.tail()}"
        return banner

    def ctrl_c_and_check_nothing_is_left(self) -> None:
        started = descendants(self.process.pid)
        assert len(started) >= 8 + 1, f"expected every process of the stack, found {started}"
        os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 5  # the last ones may still be exiting after `up` itself
        while (left_behind := still_running(started)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left_behind == {}, f"processes left behind: {left_behind}\n{self.output.tail()}"
        assert self.process.returncode == 130, self.output.tail()

    def kill(self) -> None:
        """After a failure: stop `up` as Ctrl-C would, then SIGKILL whatever is left, the processes it
        started included (honcho runs each in a process group of its own)."""
        if self.process.poll() is not None:
            return
        started = descendants(self.process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in still_running(started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_up_starts_everything_and_ctrl_c_leaves_nothing_behind(stack_dir: Path) -> None:
    up = Up(stack_dir)
    try:
        banner = up.wait_until_up()
        assert f"open {up.gateway}  (dev inbox: {up.inbox})" in banner
        assert httpx.get(f"{up.gateway}/healthz", timeout=10).status_code == 200
        assert not any("SMTP relay" in line for line in up.output.lines)

        up.ctrl_c_and_check_nothing_is_left()
    finally:
        up.kill()


class Relay:
    """A second, real SMTP server standing for the deployer's relay; keeps every envelope."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[tuple[Relay, int]]:
    (port,) = free_ports(1)
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="relay.test")
    controller.start()
    yield handler, port
    controller.stop()


def send_a_campaign_through_the_api(gateway: str, to: str) -> dict:
    """README "Send your first campaign": sign up, an API key, a list with one subscriber, a campaign,
    send it; returns the campaign once it is no longer sending."""
    with httpx.Client(base_url=f"{gateway}/api/v1", timeout=30) as anonymous:
        me = f"me-{uuid.uuid4().hex[:6]}@example.com"
        signup = anonymous.post("/auth/signup", json={"email": me, "password": "a long password"})
        assert signup.status_code == 201, signup.text
        key = anonymous.post(
            "/api-keys", json={"name": "cli"}, headers={"X-CSRF-Token": anonymous.cookies["mailstify_csrf"]}
        )
        assert key.status_code == 201, key.text
    auth = {"Authorization": f"Bearer {key.json()['key']}"}
    with httpx.Client(base_url=f"{gateway}/api/v1", timeout=30, headers=auth) as api:

        def call(method: str, path: str, expect: int, **kwargs: object) -> dict:
            response = api.request(method, path, **kwargs)  # type: ignore[arg-type]
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
            return response.json()

        mailing_list = call("POST", "/lists", 201, json={"name": "Friends"})
        call("POST", f"/lists/{mailing_list['id']}/subscribers", 201, json={"email": to, "first_name": "Ada"})
        campaign = call(
            "POST",
            "/campaigns",
            201,
            json={
                "name": "Hello",
                "subject": "Hi {{ subscriber.first_name }}",
                "list_id": mailing_list["id"],
                "from_name": "Me",
                "from_email": "me@example.com",
                "body_html": "<p>Hello {{ subscriber.first_name }}!</p>",
            },
        )
        call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})
        deadline = time.monotonic() + 30
        while (current := call("GET", f"/campaigns/{campaign['id']}", 200))["status"] == "sending":
            assert time.monotonic() < deadline, f"campaign still sending after 30 s: {current}"
            time.sleep(0.2)
        return current


def test_with_a_relay_configured_up_sends_mail_through_it_and_not_to_the_dev_inbox(
    stack_dir: Path, relay: tuple[Relay, int]
) -> None:
    received, relay_port = relay
    up = Up(stack_dir, {"MAILSTIFY_SMTP_HOST": "127.0.0.1", "MAILSTIFY_SMTP_PORT": str(relay_port)})
    try:
        said = up.output.wait_for("SMTP relay", 30)
        assert said is not None and f"through the SMTP relay 127.0.0.1:{relay_port} (MAILSTIFY_SMTP_HOST)" in said, (
            up.output.tail()
        )
        banner = up.wait_until_up()
        assert f"open {up.gateway}" in banner and "dev inbox:" not in banner
        assert f"SMTP relay 127.0.0.1:{relay_port}" in banner

        ada = f"ada.{uuid.uuid4().hex[:8]}@example.com"
        campaign = send_a_campaign_through_the_api(up.gateway, ada)

        assert (campaign["status"], campaign["sent_count"], campaign["failed_count"]) == ("sent", 1, 0), campaign
        (mail,) = received.envelopes
        assert mail.rcpt_tos == [ada]
        assert b"Subject: Hi Ada" in (mail.original_content or b"")
        assert httpx.get(f"{up.inbox}/api/messages", timeout=10).json() == []  # the dev inbox got nothing

        up.ctrl_c_and_check_nothing_is_left()
    finally:
        up.kill()
