"""The fan-out over fakes: paging, exact totals, resuming after a crash, back-pressure, empty lists."""

from __future__ import annotations

import pytest

from mailstify_contracts import Recipient, subjects
from mailstify_servicekit import UpstreamUnavailable

from .fakes import CONTENT, Harness, SimulatedCrash, request


async def test_every_recipient_gets_one_message_and_the_total_is_exact() -> None:
    h = Harness(recipients=2500)

    fanout = await h.run()

    assert len(h.queue.by_msg_id) == 2500
    assert len(h.queue.published) == 2500  # nothing published twice, before any de-duplication
    assert h.queue.publish_calls == 3
    assert {d.recipient.subscriber_id for d in h.queue.by_msg_id.values()} == {str(i) for i in range(1, 2501)}
    assert all(d.content_key == "camp-1" and d.campaign_id == "camp-1" for d in h.queue.by_msg_id.values())
    ((completed, subject, msg_id),) = h.completions()
    assert (completed.total, subject, msg_id) == (2500, subjects.CAMPAIGN_FANOUT_COMPLETED, "fanout:camp-1")
    assert fanout.completed and h.uow.committed["camp-1"].published == 2500
    assert h.content.values["camp-1"] == CONTENT
    assert h.sleeps == []  # a backlog far under the window: no wait


async def test_the_snapshot_is_pinned_by_the_first_page() -> None:
    h = Harness(recipients=30, page_size=10)
    await h.run()
    assert h.recipients.calls[0]["up_to"] is None
    assert {c["up_to"] for c in h.recipients.calls[1:]} == {"30"}
    assert [c["after"] for c in h.recipients.calls] == [None, "10", "20"]


async def test_an_empty_list_completes_with_total_zero() -> None:
    h = Harness(recipients=0)
    await h.run()
    assert h.queue.publish_calls == 0
    ((completed, _, _),) = h.completions()
    assert completed.total == 0


async def test_a_deleted_list_completes_with_what_was_published() -> None:
    h = Harness(recipients=5)
    await h.run(request(list_id="gone"))
    ((completed, _, _),) = h.completions()
    assert completed.total == 0


async def test_a_crash_between_publish_and_checkpoint_resumes_without_double_counting() -> None:
    h = Harness(recipients=25, page_size=10)
    h.queue.crash_after_publish = 1  # page 1 checkpointed, page 2 published but not checkpointed

    with pytest.raises(SimulatedCrash):
        await h.run()
    assert h.uow.committed["camp-1"].published == 10
    assert not h.completions()

    fanout = await h.run()  # the redelivered request

    # Page 2 was republished as recorded, not fetched again; the next fetch starts after it.
    assert [c["after"] for c in h.recipients.calls] == [None, "10", "20"]
    assert len(h.queue.by_msg_id) == 25
    # Only the page published but not checkpointed went out twice (its copies share msg ids).
    again = sorted(int(d.recipient.subscriber_id) for d in h.queue.published)
    assert again == sorted([*range(1, 26), *range(11, 21)])
    assert fanout.published == 25
    ((completed, _, _),) = h.completions()
    assert completed.total == 25


async def test_a_redelivered_request_after_completion_does_nothing() -> None:
    h = Harness(recipients=12, page_size=5)
    await h.run()
    calls, puts, published = len(h.recipients.calls), h.content.puts, len(h.queue.published)
    assert (calls, puts, published) == (3, 1, 12)

    await h.run()

    assert (len(h.recipients.calls), h.content.puts, len(h.completions())) == (calls, puts, 1)
    assert len(h.queue.published) == published


async def test_a_full_mail_queue_is_waited_out_not_dropped() -> None:
    h = Harness(recipients=15, page_size=10)
    h.queue.refusals_left = 3

    await h.run()

    assert len(h.queue.by_msg_id) == 15
    assert len(h.queue.published) == 15  # the refused attempts stored nothing
    assert len(h.sleeps) == 3 and all(0 < s <= 5 for s in h.sleeps)
    ((completed, _, _),) = h.completions()
    assert completed.total == 15


async def test_an_unreachable_audience_keeps_the_checkpoint_for_the_retry() -> None:
    h = Harness(recipients=20, page_size=10)
    h.recipients.failure = (2, UpstreamUnavailable("audience unreachable"))

    with pytest.raises(UpstreamUnavailable):
        await h.run()
    assert h.uow.committed["camp-1"].published == 10

    await h.run()
    assert h.recipients.calls[-1]["after"] == "10"
    assert h.uow.committed["camp-1"].published == 20
    assert [e.total for e, _, _ in h.completions()] == [20]


PAGE = [Recipient(subscriber_id=str(i), email=f"s{i}@example.com") for i in range(1, 11)]


async def test_a_worker_that_lost_the_race_stops() -> None:
    h = Harness(recipients=20, page_size=10)
    await h.dispatcher._start(request())
    stale = await h.dispatcher._start(request())
    # Another worker checkpoints first...
    fresh = await h.dispatcher._start(request())
    fresh.record(PAGE, "10")
    assert await h.dispatcher._save(fresh)
    # ...so the stale copy's recorded page is refused...
    stale.record(PAGE, "10")
    assert not await h.dispatcher._save(stale)
    # ...and so is a checkpoint of a page that a redelivery finished publishing first.
    other = await h.dispatcher._start(request())
    other.checkpoint()
    assert await h.dispatcher._save(other)
    fresh.checkpoint()
    assert not await h.dispatcher._save(fresh)
    assert h.uow.committed["camp-1"].published == 10 and h.uow.committed["camp-1"].pending is None
