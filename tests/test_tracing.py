"""Issue 10 acceptance: an SRE follows one campaign from the click to the SMTP reply.

A stack of its own exports every service's spans over OTLP/HTTP to a receiver in this test process
(`mailstify_devstack.otlp_receiver`, decoded from protobuf into memory). Through the gateway only:

- a 3-recipient campaign is one trace that starts at POST /send in the gateway and goes through the
  campaign service, its outbox, the dispatcher, the mailer's SMTP transaction (reply code, server)
  and the campaign service's result consumer, with the messaging attributes on the way; the log
  lines written meanwhile carry that trace id and the campaign id; the timeline names the trace;
- a 5,000-recipient campaign's trace stays small: big batches start traces of their own and link
  to the fan-out, instead of becoming its children.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstify_contracts import subjects
from mailstify_devstack import inbox
from mailstify_devstack.inbox import InboxClient
from mailstify_devstack.net import free_ports
from mailstify_devstack.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver
from mailstify_devstack.pytest_plugin import MailstifyStack, jetstream_server, running_stack

from .conftest import Api, unique_subscribers, until

pytestmark = pytest.mark.e2e

# The receiver's port range (this test's share of the machine's ports).
RECEIVER_PORTS = range(19200, 19300)
SERVICES = ("gateway", "campaign", "dispatcher", "mailer")
BIG_CAMPAIGN = 5_000
# Spans the send trace of BIG_CAMPAIGN may hold: the requests and the fan-out's pages (with their SQL
# statements) — nothing per recipient; the mailers' batches are traces of their own, linked.
MAX_SPANS_PER_TRACE = 300


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver(RECEIVER_PORTS) as running:
        yield running


@pytest.fixture(scope="module")
def traced_inbox(mailstify_session_dir: Path) -> Iterator[InboxClient]:
    """An inbox of its own: thousands of mails here must not weigh on the session's shared inbox."""
    directory = mailstify_session_dir / "traced-inbox"
    with inbox.running(directory, mailstify_session_dir / "logs" / "traced-inbox.log", *free_ports(2)) as client:
        yield client


@pytest.fixture(scope="module")
def mailstify_stack(
    postgres_server, traced_inbox: InboxClient, mailstify_session_dir: Path, web_frontend: Path, receiver: OtlpReceiver
) -> Iterator[MailstifyStack]:
    """This module's stack (it stands in for the session's in `api`): every service exporting spans
    to `receiver`, flushed every 200 ms."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "MAILSTIFY_TRACE_SAMPLE_RATIO": "1",
    }
    with contextlib.ExitStack() as stack:
        nats_server = stack.enter_context(jetstream_server(mailstify_session_dir, "traced-nats"))
        yield stack.enter_context(
            running_stack(
                nats_server, postgres_server, traced_inbox, mailstify_session_dir, extra_env=lambda _: env, name="traced"
            )
        )


def of(spans: list[ReceivedSpan], service: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.service == f"mailstify-{service}"]


def about(spans: list[ReceivedSpan], campaign_id: str, name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name and s.attributes.get("campaign.id") == campaign_id]


def in_or_linked_to(span: ReceivedSpan, trace_id: str) -> bool:
    return span.trace_id == trace_id or any(linked == trace_id for linked, _ in span.links)


def log_lines(stack: MailstifyStack, service: str) -> list[dict]:
    lines = []
    for raw in stack.processes[service].log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(raw)
            if isinstance(entry, dict):
                lines.append(entry)
    return lines


async def send_and_wait(api: Api, list_id: str, timeout: float) -> tuple[dict, dict]:
    campaign = await api.new_campaign(list_id)
    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})

    async def finished() -> dict | None:
        current = await api.call("GET", f"/campaigns/{campaign['id']}", 200)
        return current if current["status"] == "sent" else None

    sent = await until(finished, timeout=timeout, interval=0.25)
    timeline = await api.call("GET", f"/campaigns/{campaign['id']}/timeline", 200)
    return sent, timeline


async def test_one_campaign_is_one_trace_from_the_click_to_the_smtp_reply(
    api: Api, mailstify_stack: MailstifyStack, receiver: OtlpReceiver, traced_inbox: InboxClient
) -> None:
    mailing_list, _ = await api.new_list_with(unique_subscribers("Ada", "Grace", "Linus"))
    sent, timeline = await send_and_wait(api, mailing_list["id"], timeout=60)
    campaign_id = sent["id"]
    assert (sent["total"], sent["sent_count"]) == (3, 3)
    trace_id = timeline["trace_id"]
    assert trace_id and len(trace_id) == 32
    assert [m["kind"] for m in timeline["milestones"]][0] == "send_requested"
    assert timeline["fanned_out_at"] and timeline["first_delivery_at"] and timeline["last_delivery_at"]

    async def result_spans_arrived() -> list[ReceivedSpan] | None:
        spans = receiver.spans()
        results = about(of(spans, "campaign"), campaign_id, "campaign-results process")
        smtp = [s for s in of(spans, "mailer") if s.name == "smtp send" and s.trace_id == trace_id]
        return spans if results and smtp else None

    spans = await until(result_spans_arrived, timeout=30, interval=0.25)
    in_trace = [s for s in spans if s.trace_id == trace_id]
    by_id = {s.span_id: s for s in in_trace}

    # It started at the gateway's POST /send: the root of the platform's part of the trace. (Its parent
    # may be the caller's own span: this test process's httpx is instrumented once any in-process
    # service test of the session has set telemetry up, and then its requests carry a traceparent.)
    (root,) = [s for s in in_trace if s.parent_span_id is None or s.parent_span_id not in by_id]
    assert root.service == "mailstify-gateway" and root.kind == "server"
    assert any(str(value).endswith(f"/campaigns/{campaign_id}/send") for value in root.attributes.values())
    assert {s.service for s in in_trace} >= {f"mailstify-{name}" for name in SERVICES}

    # The campaign service published the send request through its outbox: the row kept the request's
    # context, and the dispatcher's consumer span continues it.
    (dispatch,) = about(of(in_trace, "dispatcher"), campaign_id, "dispatcher-send-requested process")
    assert dispatch.kind == "consumer"
    assert dispatch.attributes["messaging.system"] == "nats"
    assert dispatch.attributes["messaging.operation.type"] == "process"
    assert dispatch.attributes["messaging.destination.name"] == subjects.CAMPAIGN_SEND_REQUESTED
    assert dispatch.attributes["messaging.consumer.group.name"] == "dispatcher-send-requested"
    assert dispatch.attributes["messaging.message.id"] == subjects.send_requested_msg_id(campaign_id, 0)
    assert dispatch.attributes["account.id"]
    assert by_id[dispatch.parent_span_id].service == "mailstify-campaign"
    assert about(of(in_trace, "dispatcher"), campaign_id, "fanout page")

    # The mailer's batches (3 recipients: small, so parented) and the SMTP transaction with its reply.
    deliveries = about(of(spans, "mailer"), campaign_id, "mailer-deliver process")
    assert deliveries and all(in_or_linked_to(s, trace_id) for s in deliveries)
    assert sum(s.attributes["messaging.batch.message_count"] for s in deliveries) == 3
    for delivery in deliveries:
        assert delivery.attributes["messaging.destination.name"] == subjects.mail_deliver(campaign_id)
        assert delivery.attributes["messaging.consumer.group.name"] == "mailer-deliver"
    smtp = [s for s in of(in_trace, "mailer") if s.name == "smtp send"]
    assert smtp and all(by_id[s.parent_span_id].name == "mailer-deliver process" for s in smtp)
    assert sum(s.attributes["mailstify.mail.count"] for s in smtp) == 3
    for span in smtp:
        assert span.attributes["smtp.reply.code"] == 250
        assert span.attributes["server.address"] == traced_inbox.smtp_host
        assert span.attributes["server.port"] == traced_inbox.smtp_port
        assert span.kind == "client"
    settles = [s for s in of(in_trace, "mailer") if s.name == "mailer-deliver settle"]
    assert settles and all(s.attributes["messaging.operation.type"] == "settle" for s in settles)

    # The outcomes came back to the campaign service's result consumer, in (or linked to) the trace.
    results = about(of(spans, "campaign"), campaign_id, "campaign-results process")
    assert all(in_or_linked_to(s, trace_id) for s in results)
    assert sum(s.attributes["messaging.batch.message_count"] for s in results if s.trace_id == trace_id) >= 1

    # What the services logged while handling it carries the trace and the campaign.
    campaign_lines = [line for line in log_lines(mailstify_stack, "campaign") if line.get("trace_id") == trace_id]
    assert any(
        line.get("campaign_id") == campaign_id and "sending" in line["msg"] for line in campaign_lines
    ), campaign_lines
    dispatcher_lines = [line for line in log_lines(mailstify_stack, "dispatcher") if line.get("trace_id") == trace_id]
    assert any(line.get("campaign_id") == campaign_id for line in dispatcher_lines), dispatcher_lines
    span_ids = {s.span_id for s in in_trace}
    assert all(line["span_id"] in span_ids for line in campaign_lines + dispatcher_lines if "span_id" in line)


async def _import(api: Api, list_id: str, count: int) -> None:
    rows = "".join(f"r{n}.{list_id}@example.com,Reader{n}\n" for n in range(count))
    files = {"file": ("people.csv", f"email,first_name\n{rows}".encode(), "text/csv")}
    started = await api.client.post(f"/api/v1/lists/{list_id}/imports", files=files)
    assert started.status_code == 202, started.text

    async def imported() -> dict | None:
        job = await api.call("GET", f"/imports/{started.json()['id']}", 200)
        return job if job["status"] in ("completed", "failed") else None

    job = await until(imported, timeout=120, interval=0.25)
    assert (job["status"], job["imported"]) == ("completed", count), job


# 5,000 emails through the dev inbox on a shared 2-core machine take minutes, not seconds.
@pytest.mark.timeout(600)
async def test_a_big_campaign_links_its_batches_instead_of_growing_one_huge_trace(
    api: Api, mailstify_stack: MailstifyStack, receiver: OtlpReceiver
) -> None:
    mailing_list = await api.call("POST", "/lists", 201, json={"name": "big"})
    await _import(api, mailing_list["id"], BIG_CAMPAIGN)
    sent, timeline = await send_and_wait(api, mailing_list["id"], timeout=300)
    campaign_id, trace_id = sent["id"], timeline["trace_id"]
    assert sent["sent_count"] == BIG_CAMPAIGN

    async def every_delivery_batch_arrived() -> list[ReceivedSpan] | None:
        spans = receiver.spans()
        deliveries = about(of(spans, "mailer"), campaign_id, "mailer-deliver process")
        counted = sum(s.attributes["messaging.batch.message_count"] for s in deliveries)
        # Results travel a wave's successes to a message (decision 0027): fewer messages than emails.
        results = about(of(spans, "campaign"), campaign_id, "campaign-results process")
        return spans if counted >= BIG_CAMPAIGN and results else None

    spans = await until(every_delivery_batch_arrived, timeout=60, interval=0.5)
    in_trace = [s for s in spans if s.trace_id == trace_id]
    assert len(in_trace) <= MAX_SPANS_PER_TRACE, (
        f"{len(in_trace)} spans in the send trace, most: "
        f"{Counter((s.service, s.name) for s in in_trace).most_common(12)}"
    )

    pages = about(of(in_trace, "dispatcher"), campaign_id, "fanout page")
    assert sum(p.attributes["messaging.batch.message_count"] for p in pages) == BIG_CAMPAIGN

    deliveries = about(of(spans, "mailer"), campaign_id, "mailer-deliver process")
    assert sum(s.attributes["messaging.batch.message_count"] for s in deliveries) >= BIG_CAMPAIGN
    # Every batch of the fan-out's messages, however small, starts its own trace and links to it.
    in_trace_ids = {s.span_id for s in in_trace}
    for batch in deliveries:
        # Its own trace, linked to the fan-out's publish spans (which are in the send trace).
        assert batch.parent_span_id is None and batch.trace_id != trace_id
        assert batch.links and all(linked == trace_id and span in in_trace_ids for linked, span in batch.links)
        # A batch span is about many subscribers and names none; a batch of one names its subscriber
        # (event_attributes). A fast mailer can drain the stream faster than the fan-out fills it and
        # fetch a single message.
        assert ("subscriber.id" in batch.attributes) == (batch.attributes["messaging.batch.message_count"] == 1)
    assert not of(in_trace, "mailer")
    # No per-email SMTP span anywhere: one per batch.
    batch_ids = {s.span_id for s in deliveries}
    smtp = Counter(s.parent_span_id for s in of(spans, "mailer") if s.name == "smtp send" and s.parent_span_id in batch_ids)
    assert smtp and max(smtp.values()) == 1
