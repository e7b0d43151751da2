"""The session's PostgreSQL server, its per-test databases, and how its server process stops."""

from __future__ import annotations

import subprocess
import tempfile
import time
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

    assert fresh_database == f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/{name}"
    assert postgres.create_database(postgres_server.admin_dsn, name) is False  # exists: left alone


def test_test_clusters_trade_durability_for_speed(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.admin_dsn) as connection:
        assert connection.execute("SHOW fsync").fetchone() == ("off",)


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: it sits under a 0700 directory PostgreSQL's unprivileged user cannot reach.
    with tempfile.TemporaryDirectory(prefix="mailstify-pg-") as directory:
        Path(directory).chmod(0o755)
        yield Path(directory)


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
