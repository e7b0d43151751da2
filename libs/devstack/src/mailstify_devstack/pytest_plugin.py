"""Pytest fixtures backed by real processes, for the whole repository (`-p mailstify_devstack.pytest_plugin`
in the root pyproject's addopts).

Session-scoped, started once on free loopback ports and stopped (by PID) at the end:

    nats_server       .url
    postgres_server   .port .host .admin_dsn .server_url .sqlalchemy_url(dbname)
    smtp_inbox        .smtp_host .smtp_port .http_url .messages() .raw(id) .clear() .wait_for(count, timeout)
    mailstify_stack   the five services against the three above: .gateway_url .service_url(name)
                      .nats_url .inbox .internal_token .log_tail(name)

Per test: `fresh_database`, the SQLAlchemy URL of a new, empty, uniquely named database.

With `MAILSTIFY_TEST_DOCKER=1` and a reachable Docker engine, NATS, PostgreSQL and the SMTP inbox run
in containers instead (`mailstify_devstack.containers`). `MAILSTIFY_TEST_KEEP=1` keeps the session's
directory (data and logs) and prints where it is.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from . import inbox, nats, postgres
from .inbox import InboxClient
from .nats import NatsServer
from .net import free_port, free_ports
from .postgres import PostgresServer
from .processes import RunningProcess, stop_all
from .services import SERVICE_NAMES, Infrastructure, Secrets, local_url, service_processes, wait_until_ready

STACK_READY_TIMEOUT = 60.0


@functools.cache
def _containers() -> ModuleType | None:
    """The container backend when asked for and usable; imported only then."""
    if os.environ.get("MAILSTIFY_TEST_DOCKER") != "1":
        return None
    try:
        from . import containers
    except ImportError as missing:
        raise pytest.UsageError(
            "MAILSTIFY_TEST_DOCKER=1 needs testcontainers: `uv sync --all-packages --all-extras`"
        ) from missing
    if not containers.engine_reachable():
        warnings.warn("MAILSTIFY_TEST_DOCKER=1 but no Docker engine is reachable: using local processes", stacklevel=1)
        return None
    return containers


@pytest.fixture(scope="session")
def mailstify_session_dir() -> Iterator[Path]:
    """Data and logs of the session's processes. Not pytest's tmp_path: that lives under a 0700
    directory PostgreSQL's unprivileged user could not reach, and deep paths overflow socket names."""
    directory = Path(tempfile.mkdtemp(prefix="mailstify-test-"))
    directory.chmod(0o755)
    yield directory
    if os.environ.get("MAILSTIFY_TEST_KEEP") == "1":
        print(f"\nmailstify: kept the test processes' data and logs in {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_server(mailstify_session_dir: Path) -> Iterator[NatsServer]:
    with _jetstream(mailstify_session_dir, "nats") as server:
        yield server


@contextlib.contextmanager
def _jetstream(session_dir: Path, name: str) -> Iterator[NatsServer]:
    backend = _containers()
    with backend.nats_server() if backend else nats.running(session_dir / name, _log(session_dir, name)) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server(mailstify_session_dir: Path) -> Iterator[PostgresServer]:
    backend = _containers()
    local = mailstify_session_dir / "postgres"
    log = _log(mailstify_session_dir, "postgres")
    with backend.postgres_server() if backend else postgres.running(local, log, free_port()) as server:
        yield server


@pytest.fixture(scope="session")
def smtp_inbox(mailstify_session_dir: Path) -> Iterator[InboxClient]:
    backend = _containers()
    local = mailstify_session_dir / "inbox"
    log = _log(mailstify_session_dir, "inbox")
    with backend.smtp_inbox() if backend else inbox.running(local, log, *free_ports(2)) as client:
        yield client


def _log(session_dir: Path, name: str) -> Path:
    return session_dir / "logs" / f"{name}.log"


@pytest.fixture
def fresh_database(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a new empty database, dropped after the test (connections left open included)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    postgres.create_database(postgres_server.admin_dsn, name)
    yield postgres_server.sqlalchemy_url(name)
    postgres.drop_database(postgres_server.admin_dsn, name)


@dataclass
class MailstifyStack:
    service_urls: dict[str, str]
    nats_url: str
    inbox: InboxClient
    internal_token: str
    processes: dict[str, RunningProcess]

    @property
    def gateway_url(self) -> str:
        return self.service_urls["gateway"]

    def service_url(self, name: str) -> str:
        return self.service_urls[name]

    def log_tail(self, name: str, lines: int = 40) -> str:
        return self.processes[name].log_tail(lines)

    def readiness_report(self, problems: dict[str, str]) -> str:
        sections = []
        for name, process in self.processes.items():
            if not process.alive():
                state = f"exited with code {process.returncode}"
            else:
                state = f"not ready: {problems[name]}" if name in problems else "ready"
            sections.append(f"--- {name} ({state}); last lines of {process.log_path}:\n{process.log_tail()}")
        return "\n".join(sections)


@pytest.fixture(scope="session")
def stack_nats_server(mailstify_session_dir: Path) -> Iterator[NatsServer]:
    """The stack's own JetStream server. Its services hold the shared durable consumers; on the
    `nats_server` that per-service integration tests use, they would take those tests' messages."""
    with _jetstream(mailstify_session_dir, "stack-nats") as server:
        yield server


@pytest.fixture(scope="session")
def mailstify_stack(
    stack_nats_server: NatsServer,
    postgres_server: PostgresServer,
    smtp_inbox: InboxClient,
    mailstify_session_dir: Path,
) -> Iterator[MailstifyStack]:
    """The five services as processes (the same command lines as `mailstify up`), every one ready."""
    assert smtp_inbox.smtp_port is not None
    nats_server = stack_nats_server
    ports = dict(zip(SERVICE_NAMES, free_ports(len(SERVICE_NAMES)), strict=True))
    infra = Infrastructure(nats_server.url, postgres_server.server_url, smtp_inbox.smtp_host, smtp_inbox.smtp_port)
    secrets = Secrets.generate()
    with contextlib.ExitStack() as cleanup:
        processes: dict[str, RunningProcess] = {}
        cleanup.callback(lambda: stop_all(processes.values()))
        for spec in service_processes(ports, infra, secrets):
            processes[spec.name] = RunningProcess.start(spec, _log(mailstify_session_dir, spec.name))
        stack = MailstifyStack(
            service_urls={name: local_url(port) for name, port in ports.items()},
            nats_url=nats_server.url,
            inbox=smtp_inbox,
            internal_token=secrets.internal_token,
            processes=processes,
        )
        problems = wait_until_ready(
            stack.service_urls, STACK_READY_TIMEOUT, give_up=lambda: not all(p.alive() for p in processes.values())
        )
        if problems:
            pytest.fail(
                f"the Mailstify services did not become ready:\n{stack.readiness_report(problems)}", pytrace=False
            )
        yield stack
