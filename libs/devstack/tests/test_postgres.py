"""The session's PostgreSQL server and its per-test databases (through the fixture interface only: it
may be a container), and the local launcher: its settings, URLs and how its server process stops."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mailstify_devstack import postgres
from mailstify_devstack.net import free_port
from mailstify_devstack.postgres import PostgresServer


def connect(sqlalchemy_url: str) -> psycopg.Connection:
    return psycopg.connect(sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def test_fresh_database_is_a_working_empty_database(fresh_database: str) -> None:
    with connect(fresh_database) as connection:
        tables = connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        connection.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        connection.execute("INSERT INTO notes VALUES (1, 'héllo')")
        stored = connection.execute("SELECT body, current_setting('server_encoding') FROM notes").fetchone()

    assert tables == (0,)
    assert stored == ("héllo", "UTF8")


def test_each_test_gets_its_own_database(fresh_database: str, postgres_server: PostgresServer) -> None:
    name = fresh_database.rsplit("/", 1)[1]

    assert name.startswith("test_")
    assert fresh_database == postgres_server.sqlalchemy_url(name)
    assert postgres.create_database(postgres_server.admin_dsn, name) is False  # exists: left alone


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    # Not pytest's tmp_path: it sits under a 0700 directory PostgreSQL's unprivileged user cannot reach.
    with tempfile.TemporaryDirectory(prefix="mailstify-pg-") as directory:
        Path(directory).chmod(0o755)
        yield Path(directory)


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    with scratch() as directory:
        yield directory


@pytest.fixture(scope="module")
def local_server() -> Iterator[PostgresServer]:
    """A server of the local launcher itself, whatever backend the session's `postgres_server` has."""
    with scratch() as directory, postgres.running(directory / "data", directory / "postgres.log", free_port()) as server:
        yield server


def test_local_test_clusters_trade_durability_for_speed(local_server: PostgresServer) -> None:
    with psycopg.connect(local_server.admin_dsn) as connection:
        settings = connection.execute("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'max_connections')")
        assert dict(settings.fetchall()) == {"fsync": "off", "max_connections": "300"}


def test_a_local_server_is_the_password_less_superuser_on_loopback(local_server: PostgresServer) -> None:
    name = f"test_{uuid.uuid4().hex[:12]}"

    assert local_server.server_url == f"postgresql+psycopg://postgres@127.0.0.1:{local_server.port}"
    assert postgres.create_database(local_server.admin_dsn, name) is True
    with connect(local_server.sqlalchemy_url(name)) as connection:
        assert connection.execute("SELECT current_user, current_database()").fetchone() == ("postgres", name)


def test_the_server_stops_at_once_even_with_clients_connected(scratch_dir: Path) -> None:
    # SIGTERM alone would be a "smart" shutdown that waits for this client forever (run_postgres.py).
    with postgres.running(scratch_dir / "data", scratch_dir / "postgres.log", free_port()) as server:
        client = psycopg.connect(server.admin_dsn)
        started = time.monotonic()
    stop_took = time.monotonic() - started
    client.close()

    assert stop_took < 5
    # The postmaster exits only after all its children, so its command line (the only one that names the
    # data directory) being gone means every PostgreSQL process is.
    leftovers = subprocess.run(["pgrep", "-f", str(scratch_dir / "data")], capture_output=True, text=True).stdout
    assert leftovers == ""
    assert "database system is shut down" in (scratch_dir / "postgres.log").read_text()
