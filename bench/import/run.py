"""Benchmark: import a 1,000,000-row CSV through the gateway, against PostgreSQL's raw COPY.

    .venv/bin/python bench/import/run.py [--rows 1000000] [--keep]

Starts its own PostgreSQL (POSTGRES_SETTINGS), NATS, and the gateway and audience services
on ports 18000-18099, in a temporary directory; generates a CSV with ~1% invalid addresses and ~1%
duplicates; signs up, creates a list, uploads the file as multipart through the gateway, polls the
import until it is done, and prints:

    rows/s (end to end: upload start to job completed), the error count, the audience's peak RSS;
    the ceiling: the raw COPY rate of the rows the import loaded into a scratch copy of `subscribers`
    (same columns and indexes, which any load of these rows must maintain) on the same server, and
    the ratio of the two; for reference, the raw COPY rate of the file into a scratch table with no
    indexes (docs/decisions/0018-import-benchmark-baseline.md says why that is not the ceiling).

Rates vary ±40% on a shared machine: compare within one run (which is why the ceiling is measured
in the same run), never across runs. Everything it starts is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import httpx
import psycopg

from mailstify_devstack import postgres
from mailstify_devstack.services import local_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for the shared benchkit
from benchkit import BenchStack, StackPorts, api_client, peak_rss_kib, run_directory  # noqa: E402

PORTS = StackPorts(
    services={"gateway": 18000, "audience": 18001, "campaign": 18002, "dispatcher": 18003, "mailer": 18004},
    postgres=18010,
    nats=18011,
    smtp=18012,  # nothing listens: no mail is sent in this benchmark
)
# A production-like server rather than the 128 MB default: a million-row list and its indexes fit in
# the cache, and a checkpoint does not land in the middle of the merge. Durability stays on (fsync).
POSTGRES_SETTINGS = {"shared_buffers": "512MB", "max_wal_size": "4GB"}
DOMAINS = ("example.com", "mail.example.org", "post.example.net", "inbox.example.io", "corp.example.co.uk")


def generate_csv(path: Path, rows: int, seed: int = 7) -> tuple[int, int]:
    """Write the file; returns (invalid rows, duplicate rows) it contains."""
    rng = random.Random(seed)
    invalid = duplicates = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,first_name,last_name,plan,city\n")
        for n in range(rows):
            roll = rng.random()
            if roll < 0.01:
                email, invalid = f"broken{n}.example.com", invalid + 1  # no @
            elif roll < 0.02 and n > 0:
                email, duplicates = f"person{rng.randrange(n)}@{DOMAINS[0]}", duplicates + 1
            else:
                email = f"person{n}@{DOMAINS[n % len(DOMAINS)]}"
            out.write(f"{email},First{n},Last{n % 977},{'pro' if n % 3 else 'free'},City {n % 101}\n")
    return invalid, duplicates


def run_import(client: httpx.Client, csv_path: Path) -> tuple[str, dict, float]:
    list_id = client.post("/api/v1/lists", json={"name": "bench"}).json()["id"]
    started = time.perf_counter()
    with csv_path.open("rb") as upload:
        answer = client.post(f"/api/v1/lists/{list_id}/imports", files={"file": ("bench.csv", upload, "text/csv")})
    answer.raise_for_status()
    job_path = f"/api/v1/imports/{answer.json()['id']}"
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        job = client.get(job_path).json()
        if job["status"] in ("completed", "failed"):
            return list_id, job, time.perf_counter() - started
        time.sleep(0.2)
    raise SystemExit("the import did not finish within 30 minutes")


def raw_copy_with_indexes(server: postgres.PostgresServer, list_id: int) -> tuple[int, float]:
    """COPY the rows the import loaded (dumped from the list beforehand, so neither parsing nor
    validation is timed) into a scratch copy of `subscribers` with the same columns and indexes:
    the ceiling for loading these rows into a table shaped like the one the import must maintain."""
    dsn = postgres.conninfo(server.host, server.port, "mailstify_audience", server.user, server.password)
    columns = "account_id, list_id, email, first_name, last_name, attributes, status"
    with psycopg.connect(dsn, autocommit=True) as conn:
        dump = bytearray()
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY (SELECT {columns} FROM subscribers WHERE list_id = %s) TO STDOUT", (list_id,)) as copy:
                for data in copy:
                    dump += data
        conn.execute("DROP TABLE IF EXISTS bench_copy_scratch")
        conn.execute("CREATE TABLE bench_copy_scratch (LIKE subscribers INCLUDING ALL)")
        conn.execute("CHECKPOINT")  # as the import found it: no checkpoint owed from the import's writes
        started = time.perf_counter()
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY bench_copy_scratch ({columns}) FROM STDIN") as copy:
                for offset in range(0, len(dump), 1024 * 1024):
                    copy.write(dump[offset : offset + 1024 * 1024])
        elapsed = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM bench_copy_scratch").fetchone()[0]
        conn.execute("DROP TABLE bench_copy_scratch")
    return rows, elapsed


def raw_copy(server: postgres.PostgresServer, csv_path: Path) -> tuple[int, float]:
    """COPY the same file into a scratch table without indexes (for reference, not the ceiling)."""
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_scratch")
        conn.execute(
            "CREATE TABLE bench_copy_scratch (email text, first_name text, last_name text, plan text, city text)"
        )
        started = time.perf_counter()
        with conn.cursor() as cursor, csv_path.open("rb") as source:
            with cursor.copy("COPY bench_copy_scratch FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                while chunk := source.read(1024 * 1024):
                    copy.write(chunk)
        elapsed = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM bench_copy_scratch").fetchone()[0]
        conn.execute("DROP TABLE bench_copy_scratch")
    return rows, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (data and logs)")
    args = parser.parse_args()
    with run_directory("mailstify-bench-import-", args.keep) as directory:
        run(directory, args.rows)


def run(directory: Path, rows: int) -> None:
    csv_path = directory / "bench.csv"
    print(f"generating {rows:,} rows ...", flush=True)
    invalid, duplicates = generate_csv(csv_path, rows)
    print(f"  {csv_path.stat().st_size / 2**20:.1f} MiB, {invalid:,} invalid and {duplicates:,} duplicate rows")
    print(f"  PostgreSQL {' '.join(f'{k}={v}' for k, v in POSTGRES_SETTINGS.items())}")
    with BenchStack(directory, PORTS) as stack:
        stack.start_infrastructure(POSTGRES_SETTINGS)
        stack.start_services("gateway", "audience")
        with api_client(local_url(PORTS.services["gateway"])) as client:
            print("importing through the gateway ...", flush=True)
            list_id, job, elapsed = run_import(client, csv_path)
        audience_peak_kib = peak_rss_kib(stack.processes["audience"].pid)
        if job["status"] != "completed":
            raise SystemExit(f"the import failed: {job['detail']}")
        rows_per_second = job["processed"] / elapsed
        print("raw COPY of the imported rows into a scratch copy of subscribers ...", flush=True)
        copied, copy_seconds = raw_copy_with_indexes(stack.postgres, int(list_id))
        copy_rate = copied / copy_seconds
        print("raw COPY of the file into a scratch table without indexes ...", flush=True)
        bare_copied, bare_seconds = raw_copy(stack.postgres, csv_path)
        print()
        print(f"import: {job['processed']:,} rows in {elapsed:.1f} s = {rows_per_second:,.0f} rows/s "
              f"(imported {job['imported']:,}, errors {job['error_count']:,})")  # fmt: skip
        print(f"audience peak RSS: {audience_peak_kib / 1024:.0f} MB")
        print(f"raw COPY into a scratch copy of subscribers (same columns and indexes): "
              f"{copied:,} rows in {copy_seconds:.1f} s = {copy_rate:,.0f} rows/s")  # fmt: skip
        print(f"import / raw COPY: {rows_per_second / copy_rate:.0%}")
        print(f"for reference, raw COPY of the file into a table without indexes: {bare_copied:,} rows in "
              f"{bare_seconds:.1f} s = {bare_copied / bare_seconds:,.0f} rows/s")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
