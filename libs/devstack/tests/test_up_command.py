"""`mailstify up` starts the whole platform, says when it is up, and Ctrl-C leaves no process behind.

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
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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


def test_up_starts_everything_and_ctrl_c_leaves_nothing_behind(stack_dir: Path) -> None:
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    command = [str(Path(sysconfig.get_path("scripts")) / "mailstify"), "up", "--dir", str(stack_dir)]
    command += [str(part) for flag_and_port in ports.items() for part in flag_and_port]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    up = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    output = Output(up.stdout)
    try:
        banner = output.wait_for("Mailstify is up", UP_TIMEOUT)
        assert banner is not None, f"`mailstify up` did not come up; its output:\n{output.tail()}"
        gateway = f"http://127.0.0.1:{ports['--gateway-port']}"
        assert f"open {gateway}  (dev inbox: http://127.0.0.1:{ports['--inbox-port']})" in banner
        assert httpx.get(f"{gateway}/healthz", timeout=10).status_code == 200

        started = descendants(up.pid)
        assert len(started) >= 8 + 1, f"expected every process of the stack, found {started}"
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        up.wait(timeout=30)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()

    deadline = time.monotonic() + 5  # the last ones may still be exiting after `up` itself
    while (left_behind := still_running(started)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left_behind == {}, f"processes left behind: {left_behind}\n{output.tail()}"
    assert up.returncode == 130, output.tail()
