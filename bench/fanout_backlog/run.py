"""Benchmark: the dispatcher's fan-out of N recipients with mailer-paced draining, and the peak memory
of NATS and the dispatcher — flat from 100,000 to 1,000,000 recipients when the fan-out keeps the
MAIL backlog under its window (decision 0021).

    .venv/bin/python bench/fanout_backlog/run.py [--recipients 100000 1000000] [--window 100000] [--keep]

For each N, in a fresh temporary directory: PostgreSQL, NATS and a real dispatcher process on ports
19400-19409; a stub of the audience service's recipients cursor (subscribers 1..N with merge fields,
in this process) instead of a seeded audience database; a drain standing in for mailers slower than
the fan-out: it takes and acks from the mailers' durable only what exceeds the window while the
fan-out runs (the backlog sits at the window, the worst case the pacing allows), then the rest.
Prints per N: seconds, the largest MAIL backlog seen, and the peak RSS (VmHWM) of NATS, the
dispatcher and PostgreSQL. `--window 0` runs the fan-out unpaced (a window far above N; the drain
then holds all N), as before the pacing, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
import time
import uuid
from pathlib import Path

import nats
import uvicorn
from fastapi import FastAPI, Query

from mailstify_contracts import CampaignContent, CampaignSendRequested, subjects, topology
from mailstify_devstack.postgres import TEST_SETTINGS
from mailstify_messaging import OutgoingMessage, ensure_topology, publish

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for the shared benchkit
from benchkit import BenchStack, StackPorts, peak_rss_kib, run_directory  # noqa: E402

PORTS = StackPorts(
    services={"gateway": 19400, "audience": 19401, "campaign": 19402, "dispatcher": 19403, "mailer": 19404},
    postgres=19405,
    nats=19406,
    smtp=19407,
)
ACCOUNT = "bench-account"
LIST_ID = "bench-list"
DRAIN_BATCH = 500
CONTENT = CampaignContent(
    subject="Hello {{ subscriber.first_name }}", from_name="Bench", from_email="bench@example.com", body_html="<p>Hi</p>"
)


def audience_stub(recipients: int) -> FastAPI:
    """The recipients cursor over subscribers 1..`recipients`, computed, not stored."""
    app = FastAPI()

    @app.get("/internal/lists/{list_id}/recipients")
    async def page(list_id: str, after: str | None = None, up_to: str | None = None, limit: int = Query(1000)):
        start = int(after) + 1 if after else 1
        end = min(start + limit - 1, recipients)
        return {
            "items": [
                {
                    "subscriber_id": str(i),
                    "email": f"subscriber{i}@example.com",
                    "first_name": f"First{i}",
                    "last_name": f"Last{i}",
                    "attributes": {"city": "Lyon", "plan": "pro", "n": i},
                }
                for i in range(start, end + 1)
            ],
            "up_to": str(recipients),
            "next_after": str(end) if end < recipients else None,
        }

    return app


def serve_in_thread(app: FastAPI, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


async def fan_out_and_drain(nats_url: str, recipients: int, hold_at: int) -> tuple[float, int]:
    """Send the campaign and drain MAIL as the slowest mailers would: only what exceeds `hold_at`
    messages while the fan-out runs (so the backlog sits there), everything once all are published.
    Returns (seconds until every recipient was taken, the largest backlog seen)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    largest = 0
    try:
        await ensure_topology(js, consumers=(topology.MAILER_DELIVERIES,), buckets=())
        drain = await js.pull_subscribe_bind(topology.MAILER_DELIVERIES.durable, stream=topology.MAIL_STREAM.name)
        request = CampaignSendRequested(
            account_id=ACCOUNT, campaign_id=uuid.uuid4().hex, list_id=LIST_ID, content=CONTENT
        )
        started = time.monotonic()
        await publish(js, OutgoingMessage.for_event(request, subjects.CAMPAIGN_SEND_REQUESTED))
        taken = 0
        while taken < recipients:
            backlog = (await js.stream_info(topology.MAIL_STREAM.name)).state.messages
            largest = max(largest, backlog)
            all_published = taken + backlog >= recipients
            excess = backlog if all_published else backlog - hold_at + DRAIN_BATCH
            if excess < DRAIN_BATCH:
                await asyncio.sleep(0.05)
                continue
            with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                for msg in await drain.fetch(min(excess, DRAIN_BATCH), timeout=1):
                    await msg.ack()
                    taken += 1
        return time.monotonic() - started, largest
    finally:
        await nc.close()


def run_once(recipients: int, window: int, keep: bool) -> dict[str, float]:
    with run_directory("mailstify-fanout-bench-", keep) as directory, BenchStack(directory, PORTS) as stack:
        stack.start_infrastructure(TEST_SETTINGS)
        audience = serve_in_thread(audience_stub(recipients), PORTS.services["audience"])
        try:
            # Unpaced: a window the fan-out never reaches, and mailers that fall behind all of it.
            window = window or 100 * recipients
            env = {"MAILSTIFY_LOG_LEVEL": "WARNING", "MAILSTIFY_FANOUT_WINDOW": str(window)}
            stack.start_replicas("dispatcher", [("dispatcher", PORTS.services["dispatcher"])], env)
            nats_url = f"nats://127.0.0.1:{PORTS.nats}"
            seconds, largest = asyncio.run(fan_out_and_drain(nats_url, recipients, min(window, recipients)))
            pids = stack.pids()
            return {
                "seconds": seconds,
                "largest_backlog": largest,
                **{f"{name}_peak_mib": peak_rss_kib(pids[name]) / 1024 for name in ("nats", "dispatcher", "postgres")},
            }
        finally:
            audience.should_exit = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--window", type=int, default=100_000, help="MAILSTIFY_FANOUT_WINDOW; 0: unpaced")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (data and logs)")
    args = parser.parse_args()
    for recipients in args.recipients:
        result = run_once(recipients, args.window, args.keep)
        print(
            f"recipients={recipients} window={args.window or 'unpaced'} seconds={result['seconds']:.0f} "
            f"largest_backlog={result['largest_backlog']} nats_peak_mib={result['nats_peak_mib']:.0f} "
            f"dispatcher_peak_mib={result['dispatcher_peak_mib']:.0f} postgres_peak_mib={result['postgres_peak_mib']:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
