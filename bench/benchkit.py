"""What the benchmarks under bench/ share: a stack of their own (PostgreSQL, NATS and services as
local processes from mailstify_devstack, on fixed loopback ports, in one directory, each stopped by
PID), an API client signed up through the gateway, and CPU seconds and peak memory per process.

A benchmark's run.py imports it after putting bench/ on sys.path (the line above its import)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from mailstify_devstack import nats, postgres
from mailstify_devstack.net import LOOPBACK, wait_until
from mailstify_devstack.processes import ProcessSpec, RunningProcess, stop_all
from mailstify_devstack.services import Infrastructure, Secrets, local_url, service_process, wait_until_ready


@dataclass(frozen=True)
class StackPorts:
    services: Mapping[str, int]  # every service's port (services call each other)
    postgres: int
    nats: int
    smtp: int  # where the mailers send


class BenchStack:
    """Processes started in `directory` (logs in `directory/logs`); `close` stops all of them by PID.
    Each process has a name: a service's own (`gateway`), or an instance's (`mailer-2`)."""

    def __init__(
        self, directory: Path, ports: StackPorts, env: Mapping[str, str] | None = None, python: str | None = None
    ):
        self.directory = directory
        self.ports = ports
        self.env = dict(env or {})  # on top of every service's usual environment
        # The interpreter the services run on (another checkout's venv runs that checkout's code).
        self.python = python
        self.secrets = Secrets.generate()
        self.processes: dict[str, RunningProcess] = {}
        self.postgres = postgres.PostgresServer(ports.postgres)
        self.infrastructure = Infrastructure(
            nats.url(ports.nats), self.postgres.server_url, LOOPBACK, ports.smtp
        )

    def __enter__(self) -> BenchStack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self, name: str, spec: ProcessSpec) -> RunningProcess:
        process = RunningProcess.start(spec, self.directory / "logs" / f"{name}.log")
        self.processes[name] = process
        return process

    def start_infrastructure(self, postgres_settings: Mapping[str, str]) -> None:
        data_dir = self.directory / "postgres"
        postgres.init_cluster(data_dir)
        server = self.start("postgres", postgres.process_spec(data_dir, self.ports.postgres, postgres_settings))
        store_dir = self.directory / "nats"
        store_dir.mkdir(parents=True, exist_ok=True)
        broker = self.start("nats", nats.process_spec(store_dir, self.ports.nats))
        postgres.wait_ready(self.ports.postgres, 30, still_alive=server.alive)
        wait_until(lambda: nats.answers_nats(LOOPBACK, self.ports.nats), timeout=15, what="nats-server",
                   still_alive=broker.alive)  # fmt: skip

    def start_services(self, *services: str) -> list[str]:
        """Start each service once, on its port, and wait until all are ready; returns their names."""
        return self._start_ready([(service, service, self.ports.services[service]) for service in services], None)

    def start_replicas(
        self, service: str, instances: Iterable[tuple[str, int]], env: Mapping[str, str] | None = None
    ) -> list[str]:
        """Start `service` once per (instance name, port) of `instances` (e.g. mailer replicas) and wait
        until all are ready; returns the instance names."""
        return self._start_ready([(name, service, port) for name, port in instances], env)

    def _start_ready(self, instances: list[tuple[str, str, int]], env: Mapping[str, str] | None) -> list[str]:
        """(name, service, port) each started with `env` on top of the service's usual environment."""
        started: dict[str, RunningProcess] = {}
        for name, service, port in instances:
            spec = service_process(service, {**self.ports.services, service: port}, self.infrastructure, self.secrets)
            argv = [self.python, *spec.argv[1:]] if self.python else spec.argv
            spec = ProcessSpec(spec.name, argv, {**spec.env, **self.env, **(env or {})}, spec.unset_prefixes)
            started[name] = self.start(name, spec)
        urls = {name: local_url(port) for name, _service, port in instances}
        problems = wait_until_ready(urls, 60, give_up=lambda: not all(p.alive() for p in started.values()))
        if problems:
            raise SystemExit(f"services not ready: {problems}; logs in {self.directory / 'logs'}")
        return list(started)

    def stop(self, names: Iterable[str]) -> None:
        stop_all([self.processes.pop(name) for name in list(names)])

    def close(self) -> None:
        """Services first, then what they depend on: none of them logs a burst of reconnect errors."""
        infrastructure = [name for name in ("nats", "postgres") if name in self.processes]
        self.stop([name for name in self.processes if name not in infrastructure])
        self.stop(infrastructure)

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}


def api_client(gateway: str) -> httpx.Client:
    """A client of the gateway's API, authenticated with the API key of a freshly signed-up account."""
    with httpx.Client(base_url=gateway, timeout=30) as anonymous:
        signup = anonymous.post("/api/v1/auth/signup", json={"email": "bench@example.com", "password": "bench password 1"})
        signup.raise_for_status()
        key = anonymous.post(
            "/api/v1/api-keys", json={"name": "bench"}, headers={"X-CSRF-Token": anonymous.cookies["mailstify_csrf"]}
        )
        key.raise_for_status()
    return httpx.Client(base_url=gateway, timeout=600, headers={"Authorization": f"Bearer {key.json()['key']}"})


def _tree(pid: int) -> list[psutil.Process]:
    """The process and its descendants (PostgreSQL: the wrapper, the postmaster and its backends)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process tree so far. A child that has exited and been reaped is in
    its parent's `children_*` times, so backends that come and go are counted too."""
    total = 0.0
    for process in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def peak_rss_kib(pid: int) -> int:
    """The largest peak resident set size (VmHWM: the kernel keeps each process's high-water mark)
    of one process in the tree. Not a sum: PostgreSQL's backends share their buffers."""
    peak = 0
    for process in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    return peak


class CpuWindow:
    """CPU seconds each process (tree) used between `with` entry and exit."""

    def __init__(self, pids: Mapping[str, int]):
        self.pids = dict(pids)
        self.seconds: dict[str, float] = {}

    def __enter__(self) -> CpuWindow:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = {name: cpu_seconds(pid) - self._before[name] for name, pid in self.pids.items()}


@contextlib.contextmanager
def run_directory(prefix: str, keep: bool) -> Iterator[Path]:
    """A fresh temporary directory for a run's data and logs, removed at the end unless `keep`.
    Within it SIGTERM (a `kill`, a CI timeout) unwinds like Ctrl-C, through every `finally` that stops
    what the run started; both then end the run with a one-line message."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)  # PostgreSQL's unprivileged user must reach its data directory
    try:
        yield directory
    except KeyboardInterrupt:
        raise SystemExit("interrupted; every process this run started has been stopped") from None
    finally:
        if keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
