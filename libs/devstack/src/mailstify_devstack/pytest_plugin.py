"""Pytest fixtures backed by real processes, for the whole repository (`-p mailstify_devstack.pytest_plugin`
in the root pyproject's addopts).

Session-scoped, started once on free loopback ports and stopped (by PID) at the end:

    nats_server       .url
    postgres_server   .port .host .admin_dsn .server_url .sqlalchemy_url(dbname)
    smtp_inbox        .smtp_host .smtp_port .messages() .raw(id) .clear() .wait_for(count, timeout)
    mailstify_stack   the five services against the three above: .gateway_url .service_url(name)
                      .nats_url .inbox .internal_token .log_tail(name)
    web_frontend      the gateway's front end built into its static folder (its path)

Per test: `fresh_database`, the SQLAlchemy URL of a new, empty, uniquely named database.

That is the whole interface, the same for either backend: a test must not assume what only local
processes give (no password, fsync off, the dev inbox's web page or its /html endpoint, a
127.0.0.1 host...). A test of the local programs themselves starts its own (`postgres.running`,
`inbox.running`, `nats.running`).

Backends: local processes by default. With `MAILSTIFY_TEST_DOCKER=1`, NATS, PostgreSQL and the SMTP
inbox run in containers (`mailstify_devstack.containers`, the `docker` extra, a reachable Docker
engine); without an engine or the extra the run stops with a usage error, it never falls back
silently. The mailstify_stack services get the inbox's SMTP address and none of the MAILSTIFY_SMTP_*
variables of the shell that runs pytest. `MAILSTIFY_TEST_KEEP=1` keeps the session's directory (data
and logs) and prints where it is.

Every async test runs on uvloop, the event loop the services run on (uvicorn picks it when it is
installed, decision 0028), so the tests that drive adapters in-process meet the loop production has.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import uvloop

from . import docker_engine, frontend, inbox, nats, postgres
from .inbox import InboxClient
from .nats import NatsServer
from .net import free_port, free_ports
from .postgres import PostgresServer
from .processes import RunningProcess, stop_all
from .services import SERVICE_NAMES, Infrastructure, Secrets, local_url, service_processes, wait_until_ready

STACK_READY_TIMEOUT = 60.0
# What the test stack sets beyond `mailstify up`'s settings: retries within a test's patience (the
# default schedule spans ≥ 40 minutes, and a message left retrying holds the shared durable busy).
STACK_TEST_SETTINGS: dict[str, dict[str, str]] = {"mailer": {"MAILSTIFY_RETRY_SCHEDULE": "1s,1s,2s,2s"}}
DOCKER_VARIABLE = "MAILSTIFY_TEST_DOCKER"


def pytest_configure(config: pytest.Config) -> None:
    _containers()  # a backend asked for but unusable stops the run here, before any test


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], object]]:
    return {"uvloop": uvloop.new_event_loop}


def pytest_report_header(config: pytest.Config) -> str:
    backend = "containers (testcontainers)" if _containers() else "local processes"
    return f"mailstify test infrastructure: {backend}"


@functools.cache
def _containers() -> ModuleType | None:
    """The container backend when asked for (and then it must be usable); imported only then."""
    if os.environ.get(DOCKER_VARIABLE) != "1":
        return None
    if (problem := docker_engine.problem()) is not None:
        raise pytest.UsageError(
            f"{DOCKER_VARIABLE}=1 asks for the test infrastructure in containers, but no Docker engine is"
            f" reachable ({problem}). Start one (or set DOCKER_HOST), or unset {DOCKER_VARIABLE} to use"
            " local processes."
        )
    try:
        from . import containers
    except ImportError as missing:
        raise pytest.UsageError(
            f"{DOCKER_VARIABLE}=1 needs the docker extra (testcontainers, {missing.name} is missing):"
            f" run the tests with `{DOCKER_VARIABLE}=1 ./mailstify test`, which installs it"
            " (`uv sync --frozen --extra docker`)."
        ) from missing
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


def ready_stack(
    processes: dict[str, RunningProcess],
    ports: dict[str, int],
    nats_url: str,
    inbox: InboxClient,
    internal_token: str,
) -> MailstifyStack:
    """The started service `processes` (listening on `ports`, by name) as a stack, once every one
    answers /readyz; otherwise the test fails with each one's state and log tail."""
    stack = MailstifyStack(
        service_urls={name: local_url(port) for name, port in ports.items()},
        nats_url=nats_url,
        inbox=inbox,
        internal_token=internal_token,
        processes=processes,
    )
    problems = wait_until_ready(
        stack.service_urls, STACK_READY_TIMEOUT, give_up=lambda: not all(p.alive() for p in processes.values())
    )
    if problems:
        pytest.fail(f"the Mailstify services did not become ready:\n{stack.readiness_report(problems)}", pytrace=False)
    return stack


@pytest.fixture(scope="session")
def web_frontend() -> Path:
    """The gateway's built front end (npm ci from the lock file, skipped while it is unchanged)."""
    frontend.ensure_built()
    return frontend.VENDOR


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
    web_frontend: Path,
) -> Iterator[MailstifyStack]:
    """The five services as processes (the same command lines as `mailstify up`), every one ready."""
    with running_stack(stack_nats_server, postgres_server, smtp_inbox, mailstify_session_dir) as stack:
        yield stack


def _no_extra_env(name: str) -> Mapping[str, str]:
    return {}


@contextlib.contextmanager
def running_stack(
    nats_server: NatsServer,
    postgres_server: PostgresServer,
    smtp_inbox: InboxClient,
    session_dir: Path,
    *,
    extra_env: Callable[[str], Mapping[str, str]] = _no_extra_env,
    name: str = "",
) -> Iterator[MailstifyStack]:
    """The five services as processes, ready. A second stack in one session (a test that needs the
    services started differently, e.g. exporting traces) gives a `name`, which prefixes its logs and
    its databases (`<name>_<service>`), and its own `nats_server` (the services share durables);
    `extra_env(service)` is added to each service's environment."""
    assert smtp_inbox.smtp_port is not None
    ports = dict(zip(SERVICE_NAMES, free_ports(len(SERVICE_NAMES)), strict=True))
    infra = Infrastructure(
        nats_server.url, postgres_server.server_url, smtp_inbox.smtp_host, smtp_inbox.smtp_port, smtp_inbox.http_url
    )
    secrets = Secrets.generate()
    with contextlib.ExitStack() as cleanup:
        processes: dict[str, RunningProcess] = {}
        cleanup.callback(lambda: stop_all(processes.values()))
        for spec in service_processes(ports, infra, secrets):
            env = {**spec.env, **STACK_TEST_SETTINGS.get(spec.name, {})}
            if name:
                env["MAILSTIFY_DATABASE_URL"] = f"{postgres_server.server_url}/{name}_{spec.name}"
            spec = dataclasses.replace(spec, env={**env, **extra_env(spec.name)})
            log_name = f"{name}-{spec.name}" if name else spec.name
            processes[spec.name] = RunningProcess.start(spec, _log(session_dir, log_name))
        yield ready_stack(processes, ports, nats_server.url, smtp_inbox, secrets.internal_token)


@contextlib.contextmanager
def jetstream_server(session_dir: Path, name: str) -> Iterator[NatsServer]:
    """A JetStream server of its own (local process, or a container under MAILSTIFY_TEST_DOCKER=1)."""
    with _jetstream(session_dir, name) as server:
        yield server
