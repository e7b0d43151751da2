"""Benchmark: send a campaign through the whole platform into Postfix's `smtp-sink`, against what one
Python process pushing pre-rendered messages into the same sink manages.

    .venv/bin/python bench/send_throughput/run.py [--recipients 100000] [--slow-smtp]
        [--connections N] [--batch-size N] [--telemetry-ab | --against CHECKOUT] [--rounds 4]
        [--profile DIR] [--keep]

Installs Postfix (Debian package `postfix`) when `smtp-sink` is missing and it runs as root; starts
smtp-sink, PostgreSQL, NATS and the five services (2 mailer replicas pointed at the sink) on ports
18300-18399 in a temporary directory; inserts N subscribers straight into the audience database;
creates a campaign (~8 KB HTML with merge fields) through the gateway's API, sends it, polls until
it is `sent`, and prints:

    emails/s from the send request to `sent`; CPU seconds (and ms per email) and peak RSS of every
    process of the stack; then, the stack stopped, the raw ceiling — aiosmtplib alone, one process,
    32 persistent connections, a pre-rendered 10 KB message, ~10 s into the same sink — in msgs/s,
    and `ratio=<end to end / raw ceiling>`.

`--slow-smtp` makes the sink answer each DATA after 1 s (`smtp-sink -w 1`, a slow relay) and sends a
campaign of N (default 4,000) with 1, 2 and then 4 mailer replicas of `--connections` SMTP
connections each (default 25, in batches of twice that: two waves of each of the two lanes),
printing emails/s for each and its multiple of one replica's rate. A send has seconds of latency
that replicas do not divide (fan-out, the first fetch, counting the last results, the last batch's
tail): N must keep them small beside the ~40 s that 4 replicas need for 4,000.

`--connections` and `--batch-size` set each mailer's `MAILSTIFY_SMTP_POOL_SIZE` and
`MAILSTIFY_BATCH_SIZE` (without them the end-to-end send runs on the mailer's defaults): what a
deployer tunes for the relay at hand (README, "Scaling knobs").

`--telemetry-ab` and `--against CHECKOUT` run two stacks at once into the same sink, `--rounds` times,
and print both rates and their ratio: telemetry off against on, or this checkout's code against
another's (e.g. `git worktree add /tmp/before HEAD && (cd /tmp/before && uv sync --frozen)`): a
change worth 10% is lost in the drift between two runs one after the other.

Rates vary ±40% on a shared machine: compare within one run (which is why the ceiling is measured
in the same run), never across runs. Everything it starts is stopped by PID at the end, also on
Ctrl-C, SIGTERM or a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import aiosmtplib
import httpx
import psycopg
from psycopg.conninfo import make_conninfo

from mailstify_devstack.net import LOOPBACK, is_listening, wait_until
from mailstify_devstack.processes import ProcessSpec, RunningProcess
from mailstify_devstack.services import local_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for the shared benchkit
from benchkit import BenchStack, CpuWindow, StackPorts, api_client, peak_rss_kib, run_directory  # noqa: E402

PORTS = StackPorts(
    services={"gateway": 18300, "audience": 18301, "campaign": 18302, "dispatcher": 18303, "mailer": 18304},
    postgres=18310,
    nats=18311,
    smtp=18312,
)
MAILER_PORTS = (18304, 18305, 18306, 18307)  # one per replica, up to the 4 of --slow-smtp
# --telemetry-ab and --against run a second stack beside the first, sending into the same sink.
TWIN_PORTS = StackPorts(
    services={"gateway": 18320, "audience": 18321, "campaign": 18322, "dispatcher": 18323, "mailer": 18324},
    postgres=18330,
    nats=18331,
    smtp=PORTS.smtp,
)
TWIN_MAILER_PORTS = (18324, 18325)
# A production-like server: durability on (fsync), room for every replica's pool of connections.
POSTGRES_SETTINGS = {"shared_buffers": "256MB", "max_wal_size": "4GB", "max_connections": "300"}
SMTP_SINK = Path("/usr/sbin/smtp-sink")
SINK_BACKLOG = "1024"
E2E_REPLICAS = 2
SLOW_REPLICAS = (1, 2, 4)
SLOW_CONNECTIONS = 25  # per replica, with --slow-smtp
RAW_CONNECTIONS = 32
RAW_SECONDS = 10.0
# The measurement's own load: each poll is an authenticated request through the gateway to the
# campaign service (~5-10 ms of CPU), CPU the mailers cannot have; at 4 a second the gateway alone
# took 0.09 ms per email of a 100,000-recipient send. So the pause is a quarter of the time the send
# still needs at its rate so far, between these bounds: few polls in the middle, and `sent` seen
# within ~0.1 s at the end.
POLL_SECONDS = 0.25
MIN_POLL_SECONDS, MAX_POLL_SECONDS = 0.1, 2.0
DOMAINS = ("example.com", "mail.example.org", "post.example.net", "inbox.example.io", "corp.example.co.uk")

PARAGRAPH = "<p>Here is what is new this month: faster sending, calmer inboxes, and fewer surprises.</p>\n"
CAMPAIGN = {
    "subject": "News for {{ subscriber.first_name }}",
    "from_name": "Acme News",
    "from_email": "news@acme.test",
    "body_html": (
        "<p>Hello {{ subscriber.first_name }}, on your {{ subscriber.attributes.plan }} plan:</p>\n"
        + PARAGRAPH * 90
        + "<p>Thanks for reading, {{ subscriber.first_name }}.</p>\n"
    ),
}


def ensure_smtp_sink() -> None:
    if SMTP_SINK.is_file():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(
            f"{SMTP_SINK} is missing: install Postfix, which ships it (as root: "
            "`DEBIAN_FRONTEND=noninteractive apt-get install -y postfix`), or run this benchmark as root"
        )
    print("installing postfix (for smtp-sink) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "postfix"]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # most often a stale package index
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not SMTP_SINK.is_file():
        raise SystemExit(f"installing postfix failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def sink_spec(port: int, reply_delay: int | None) -> ProcessSpec:
    # No -c: its per-message counter on stdout would need a reader. As root it must drop to a user.
    argv = [str(SMTP_SINK), *(["-u", "nobody"] if os.geteuid() == 0 else [])]
    argv += [*(["-w", str(reply_delay)] if reply_delay else []), f"{LOOPBACK}:{port}", SINK_BACKLOG]
    return ProcessSpec("smtp-sink", argv)


def seed(stack: BenchStack, account_id: str, list_id: str, count: int) -> float:
    """`count` subscribed subscribers in one statement; returns the seconds it took."""
    conninfo = make_conninfo(stack.postgres.admin_dsn, dbname="mailstify_audience")
    started = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO subscribers (account_id, list_id, email, first_name, attributes)"
            " SELECT %s, %s, 'person' || n || '@' || (%s::text[])[1 + n %% %s], 'First' || n,"
            " jsonb_build_object('plan', CASE WHEN n %% 3 = 0 THEN 'free' ELSE 'pro' END)"
            " FROM generate_series(1, %s) AS n",
            (account_id, int(list_id), list(DOMAINS), len(DOMAINS), count),
        )
    return time.perf_counter() - started


def prepare_list(stack: BenchStack, client: httpx.Client, recipients: int) -> str:
    account_id = client.get("/api/v1/auth/me").raise_for_status().json()["account"]["id"]
    list_id = client.post("/api/v1/lists", json={"name": "bench"}).raise_for_status().json()["id"]
    print(f"seeding {recipients:,} subscribers ...", flush=True)
    seconds = seed(stack, account_id, list_id, recipients)
    print(f"  {seconds:.1f} s")
    return list_id


def create_campaign(client: httpx.Client, list_id: str, name: str) -> str:
    """The new campaign's API path."""
    campaign = client.post("/api/v1/campaigns", json={"name": name, "list_id": list_id, **CAMPAIGN})
    return f"/api/v1/campaigns/{campaign.raise_for_status().json()['id']}"


def poll_campaign(client: httpx.Client, path: str) -> dict:
    """The campaign now; one that stopped other than `sent` (failed, cancelled...) ends the benchmark."""
    current = client.get(path).raise_for_status().json()
    if current["status"] not in ("sending", "scheduled", "sent"):
        raise SystemExit(f"the campaign ended {current['status']}: {current.get('last_error')}")
    return current


def send_campaign(client: httpx.Client, list_id: str, name: str, timeout: float) -> tuple[dict, float]:
    """Create the campaign, send it, and poll it until `sent`; returns it and the seconds from the
    send request to the first poll that saw it `sent`."""
    path = create_campaign(client, list_id, name)
    started = time.perf_counter()
    client.post(f"{path}/send", json={}).raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = poll_campaign(client, path)
        if current["status"] == "sent":
            return current, time.perf_counter() - started
        time.sleep(poll_pause(current, time.perf_counter() - started))
    raise SystemExit(f"the campaign was not sent within {timeout:.0f} s: {counts(current)}")


def poll_pause(campaign: dict, elapsed: float) -> float:
    """How long to wait before polling `campaign` again, `elapsed` seconds after its send request."""
    done = campaign["sent_count"] + campaign["failed_count"] + campaign["unknown_count"]
    if not campaign["total"] or not done:
        return POLL_SECONDS
    left = (campaign["total"] - done) / (done / elapsed)
    return min(MAX_POLL_SECONDS, max(MIN_POLL_SECONDS, left / 4))


def counts(campaign: dict) -> str:
    return " ".join(f"{key}={campaign[key]}" for key in ("total", "sent_count", "failed_count", "unknown_count"))


def start_platform(stack: BenchStack) -> httpx.Client:
    stack.start_infrastructure(POSTGRES_SETTINGS)
    stack.start_services("gateway", "audience", "campaign", "dispatcher")
    return api_client(local_url(stack.ports.services["gateway"]))


def start_mailers(
    stack: BenchStack, replicas: int, env: dict[str, str] | None = None, ports: tuple[int, ...] = MAILER_PORTS
) -> list[str]:
    instances = [(f"mailer-{n + 1}", ports[n]) for n in range(replicas)]
    return stack.start_replicas("mailer", instances, env)


def print_resources(window: CpuWindow, peaks: dict[str, int], emails: int) -> None:
    print(f"{'process':<12} {'CPU s':>8} {'ms/email':>9} {'peak RSS MB':>12}")
    for name, seconds in window.seconds.items():
        print(f"{name:<12} {seconds:>8.1f} {seconds * 1000 / emails:>9.3f} {peaks[name] / 1024:>12.0f}")
    total = sum(window.seconds.values())
    print(f"{'total':<12} {total:>8.1f} {total * 1000 / emails:>9.3f}")
    print("(CPU from the send request to `sent`, a process with its children; peak RSS: the kernel's "
          "high-water mark of the largest one, e.g. PostgreSQL's biggest backend)")


@contextlib.contextmanager
def py_spy_profiles(pids: dict[str, int], into: Path | None) -> Iterator[None]:
    """With `into`, py-spy samples each Python service during the block; folded stacks land in
    `into/<process>.txt` (flamegraph.pl / speedscope read them)."""
    spy = shutil.which("py-spy")
    if into is None:
        yield
        return
    if spy is None:
        raise SystemExit("--profile needs py-spy on PATH (uv tool install py-spy)")
    into.mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(
            [spy, "record", "--nonblocking", "--format", "raw", "--rate", "200", "--pid", str(pid),
             "--output", str(into / f"{name}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for name, pid in pids.items()
        if name not in ("postgres", "nats", "smtp-sink")
    ]
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            recorder.wait(timeout=30)
        print(f"py-spy profiles (folded stacks) in {into}")


def end_to_end(
    directory: Path, recipients: int, sink: RunningProcess, mailer_env: dict[str, str], profile: Path | None = None
) -> float:
    """The campaign sent with E2E_REPLICAS mailers; returns emails/s."""
    with BenchStack(directory, PORTS) as stack, start_platform(stack) as client:
        start_mailers(stack, E2E_REPLICAS, mailer_env)
        list_id = prepare_list(stack, client, recipients)
        pids = {**stack.pids(), "smtp-sink": sink.pid}
        print(f"sending to {recipients:,} with {E2E_REPLICAS} mailer replicas ...", flush=True)
        with CpuWindow(pids) as window, py_spy_profiles(pids, profile):
            campaign, seconds = send_campaign(client, list_id, "bench", timeout=120 + recipients / 100)
        peaks = {name: peak_rss_kib(pid) for name, pid in pids.items()}
    rate = campaign["sent_count"] / seconds
    print()
    print(f"end to end: {campaign['sent_count']:,} sent in {seconds:.1f} s from the send request to `sent` "
          f"= {rate:,.0f} emails/s ({counts(campaign)})")  # fmt: skip
    print_resources(window, peaks, max(campaign["sent_count"], 1))
    return rate


def raw_message() -> bytes:
    """A ~10 KB multipart message rendered once, with CRLF line endings (what goes on the wire)."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = "Acme News <news@acme.test>"
    message["To"] = "person@example.com"
    message["Subject"] = "News for you"
    html = CAMPAIGN["body_html"].replace("{{ subscriber.first_name }}", "First1").replace(
        "{{ subscriber.attributes.plan }}", "pro"
    )
    message.set_content("Here is what is new this month.\n" * 40)
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


async def raw_ceiling(port: int) -> tuple[int, float, int]:
    """aiosmtplib alone: RAW_CONNECTIONS persistent connections each sending the same pre-rendered
    message for RAW_SECONDS. Returns (messages, seconds, message size)."""
    message = raw_message()
    deadline = time.perf_counter() + RAW_SECONDS

    async def one_connection(index: int) -> int:
        smtp = aiosmtplib.SMTP(hostname=LOOPBACK, port=port, timeout=30, start_tls=False)
        await smtp.connect()
        sent = 0
        try:
            while time.perf_counter() < deadline:
                await smtp.sendmail("news@acme.test", [f"person{index}.{sent}@example.com"], message)
                sent += 1
        finally:
            await smtp.quit()
        return sent

    started = time.perf_counter()
    sent = await asyncio.gather(*(one_connection(n) for n in range(RAW_CONNECTIONS)))
    return sum(sent), time.perf_counter() - started, len(message)


def mailer_tuning(connections: int | None, batch_size: int | None) -> dict[str, str]:
    """The mailers' environment for `--connections` and `--batch-size` (empty: their defaults)."""
    env = {"MAILSTIFY_SMTP_POOL_SIZE": connections, "MAILSTIFY_BATCH_SIZE": batch_size}
    return {name: str(value) for name, value in env.items() if value is not None}


def slow_relay(directory: Path, recipients: int, connections: int, batch_size: int | None) -> None:
    # Batches of twice the pool by default (two waves per lane): against a slow relay a replica should
    # not hoard messages the others could be sending (a deployer's setting for such a relay, README
    # "Scaling knobs").
    env = mailer_tuning(connections, batch_size or 2 * connections)
    rates: dict[int, float] = {}
    with BenchStack(directory, PORTS) as stack, start_platform(stack) as client:
        list_id = prepare_list(stack, client, recipients)
        for replicas in SLOW_REPLICAS:
            mailers = start_mailers(stack, replicas, env)
            ideal = recipients / (replicas * connections)
            print(f"sending to {recipients:,} with {replicas} mailer replica(s) ...", flush=True)
            campaign, seconds = send_campaign(client, list_id, f"bench x{replicas}", timeout=60 + 3 * ideal)
            stack.stop(mailers)
            rates[replicas] = campaign["sent_count"] / seconds
            print(f"  {seconds:.1f} s ({counts(campaign)})")
    print()
    print(f"slow SMTP (smtp-sink -w 1: each DATA answered after 1 s), {recipients:,} recipients, "
          f"{connections} SMTP connections per mailer replica:")  # fmt: skip
    for replicas, rate in rates.items():
        ceiling = replicas * connections
        print(f"replicas={replicas}: {rate:,.1f} emails/s = {rate / rates[SLOW_REPLICAS[0]]:.2f}x one replica "
              f"({rate / ceiling:.0%} of {ceiling} connections x 1 msg/s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, help="subscribers to send to (default 100,000; 4,000 with --slow-smtp)")
    parser.add_argument("--slow-smtp", action="store_true", help="a sink taking 1 s per DATA; 1, 2 and 4 replicas")
    parser.add_argument("--connections", type=int,
                        help=f"SMTP connections per mailer (default: the mailer's, 32; {SLOW_CONNECTIONS} with --slow-smtp)")  # fmt: skip
    parser.add_argument("--batch-size", type=int,
                        help="deliveries per mailer batch (default: the mailer's, 200; 2 x connections with --slow-smtp)")  # fmt: skip
    parser.add_argument("--telemetry-ab", action="store_true",
                        help="send with telemetry off and on (no exporter) from two stacks at once, and compare")  # fmt: skip
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="send from this checkout and from CHECKOUT (with its own .venv) at once, and compare")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=4,
                        help="with --telemetry-ab or --against: rounds, the sides swapping ports")  # fmt: skip
    parser.add_argument("--profile", type=Path, help="sample each service with py-spy into this directory")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (data and logs)")
    args = parser.parse_args()
    recipients = args.recipients or (4_000 if args.slow_smtp else 100_000)
    if (args.telemetry_ab or args.against) and (args.connections or args.batch_size):
        parser.error("--connections and --batch-size tune the single send and --slow-smtp, not a side-by-side run")
    ensure_smtp_sink()
    with run_directory("mailstify-bench-send-", args.keep) as directory:
        spec = sink_spec(PORTS.smtp, 1 if args.slow_smtp else None)
        print(f"{' '.join(spec.argv)}; data and logs in {directory}", flush=True)
        with RunningProcess.start(spec, directory / "logs" / "smtp-sink.log") as sink:
            wait_until(lambda: is_listening(LOOPBACK, PORTS.smtp), timeout=10, what="smtp-sink", still_alive=sink.alive)
            if args.slow_smtp:
                slow_relay(directory, recipients, args.connections or SLOW_CONNECTIONS, args.batch_size)
            elif args.telemetry_ab:
                telemetry_side_by_side(directory, recipients, args.rounds)
            elif args.against:
                checkouts_side_by_side(directory, recipients, args.rounds, args.against.resolve())
            else:
                tuning = mailer_tuning(args.connections, args.batch_size)
                compare_with_raw_ceiling(directory, recipients, sink, tuning, args.profile)


@dataclass(frozen=True)
class Side:
    """One of two stacks sending at once: its label, environment and interpreter (None: this one)."""

    label: str
    env: dict[str, str]
    python: str | None = None


def telemetry_side_by_side(directory: Path, recipients: int, rounds: int) -> None:
    """The same send with MAILSTIFY_TELEMETRY=off and on (traces and metrics recorded, nothing
    exported: OTEL_EXPORTER_OTLP_ENDPOINT unset), side by side (see `side_by_side`)."""
    os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    off, on = Side("off", {"MAILSTIFY_TELEMETRY": "off"}), Side("on", {"MAILSTIFY_TELEMETRY": "on"})
    rates = side_by_side(directory, recipients, rounds, (off, on))
    print(f"on/off = {mean(rates['on']) / mean(rates['off']):.3f}")


def checkouts_side_by_side(directory: Path, recipients: int, rounds: int, other: Path) -> None:
    """This checkout's code against another checkout's (its own `.venv`, e.g. a `git worktree` of the
    commit before a change, set up with `uv sync`), side by side (see `side_by_side`)."""
    python = other / ".venv" / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"{python} is missing: run `uv sync --frozen` in {other} first")
    rates = side_by_side(directory, recipients, rounds, (Side("this", {}), Side("other", {}, str(python))))
    print(f"this/other = {mean(rates['this']) / mean(rates['other']):.3f} (other: {other})")


def side_by_side(directory: Path, recipients: int, rounds: int, sides: tuple[Side, Side]) -> dict[str, list[float]]:
    """The same send from two stacks at once, into the same sink, `rounds` times with the two sides
    swapping ports each round; prints each round and the means, returns the rates by label.

    Why at once and not one after the other: this machine's speed drifts by more than the changes
    measured. In one-after-the-other runs every process, smtp-sink and PostgreSQL included, took up
    to 15% more CPU per email in one send than in the send before it, and eight sends (off, on, on,
    off, twice) still gave on/off anywhere from 0.83 to 1.09. Two stacks sending at the same time
    share whatever the machine gives. Each rate counts up to the moment the first campaign is
    `sent`, the span in which both were running, so the one finishing later is not helped by having
    the machine to itself at the end."""
    rates: dict[str, list[float]] = {side.label: [] for side in sides}
    for number in range(rounds):
        ordered = sides if number % 2 == 0 else sides[::-1]
        print(f"\nround {number + 1}: {ordered[0].label} on ports {PORTS.postgres}.., {ordered[1].label} on {TWIN_PORTS.postgres}..",
              flush=True)  # fmt: skip
        run = directory / f"round-{number + 1}"
        with contextlib.ExitStack() as stacks:
            started = []
            for ports, mailer_ports, side in ((PORTS, MAILER_PORTS, ordered[0]), (TWIN_PORTS, TWIN_MAILER_PORTS, ordered[1])):
                side_dir = run / side.label
                side_dir.mkdir(parents=True, mode=0o755)
                for path in (run, side_dir):
                    path.chmod(0o755)  # PostgreSQL's unprivileged user must reach its data directory
                stack = stacks.enter_context(BenchStack(side_dir, ports, side.env, side.python))
                client = stacks.enter_context(start_platform(stack))
                start_mailers(stack, E2E_REPLICAS, ports=mailer_ports)
                list_id = prepare_list(stack, client, recipients)
                started.append((side.label, client, create_campaign(client, list_id, f"bench {side.label}")))
            print(f"sending to {recipients:,} from each stack, with {E2E_REPLICAS} mailer replicas each ...", flush=True)
            round_rates, line = head_to_head(started, timeout=120 + recipients / 50)
            for label, rate in round_rates.items():
                rates[label].append(rate)
            print(line)
    print()
    for label, values in rates.items():
        print(f"{label}: {' '.join(f'{r:,.0f}' for r in values)} emails/s (mean {mean(values):,.0f})")
    return rates


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def head_to_head(sides: list[tuple[str, httpx.Client, str]], timeout: float) -> tuple[dict[str, float], str]:
    """Send every side's campaign at once and poll them all until the first is `sent`; returns each
    side's emails/s up to that moment and a line saying so, once every campaign is `sent` (the
    stacks then stop with no send left half-way)."""
    started: dict[str, float] = {}
    for mode, client, path in sides:
        started[mode] = time.perf_counter()
        client.post(f"{path}/send", json={}).raise_for_status()
    deadline = time.monotonic() + timeout
    rates: dict[str, float] = {}
    line = ""
    while time.monotonic() < deadline:
        now = {mode: (poll_campaign(client, path), time.perf_counter()) for mode, client, path in sides}
        if not rates and any(campaign["status"] == "sent" for campaign, _at in now.values()):
            rates = {mode: campaign["sent_count"] / (at - started[mode]) for mode, (campaign, at) in now.items()}
            line = "  ".join(
                f"{mode}: {campaign['sent_count']:,} sent in {at - started[mode]:.1f} s = {rates[mode]:,.0f} emails/s"
                for mode, (campaign, at) in now.items()
            )
        if all(campaign["status"] == "sent" for campaign, _at in now.values()):
            return rates, line
        time.sleep(min(poll_pause(campaign, at - started[mode]) for mode, (campaign, at) in now.items()))
    raise SystemExit(f"the campaigns were not all sent within {timeout:.0f} s")


def compare_with_raw_ceiling(
    directory: Path, recipients: int, sink: RunningProcess, mailer_env: dict[str, str], profile: Path | None
) -> None:
    if mailer_env:
        print(f"mailers tuned: {' '.join(f'{name}={value}' for name, value in mailer_env.items())}")
    e2e_rate = end_to_end(directory, recipients, sink, mailer_env, profile)
    print(f"raw ceiling: aiosmtplib, 1 process, {RAW_CONNECTIONS} connections, pre-rendered message, "
          f"~{RAW_SECONDS:.0f} s, same sink ...", flush=True)  # fmt: skip
    messages, seconds, size = asyncio.run(raw_ceiling(PORTS.smtp))
    raw_rate = messages / seconds
    print(f"raw ceiling: {messages:,} msgs of {size / 1024:.1f} KB in {seconds:.1f} s = {raw_rate:,.0f} msgs/s")
    print(f"ratio={e2e_rate / raw_rate:.2f}")


if __name__ == "__main__":
    sys.exit(main())
