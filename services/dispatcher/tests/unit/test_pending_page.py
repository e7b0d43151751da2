"""Exact totals (issue 7, item 6): a page is recorded before it is published, and a resume
republishes exactly the recorded page, even when the list changed while the dispatcher was down."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailstify_contracts import Recipient

from dispatcher.domain.fanout import Fanout

from .fakes import Harness, SimulatedCrash

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def recipients(*ids: int) -> list[Recipient]:
    return [Recipient(subscriber_id=str(i), email=f"s{i}@example.com") for i in ids]


def fanout() -> Fanout:
    return Fanout(campaign_id="c", account_id="a", list_id="l", created_at=NOW)


def test_a_recorded_page_counts_only_at_its_checkpoint() -> None:
    f = fanout()
    page = f.record(recipients(1, 2, 3), next_after="3")
    assert (f.published, f.last_subscriber_id, f.pending) == (0, None, page)
    assert not page.last

    assert f.checkpoint() == page
    assert (f.published, f.last_subscriber_id, f.pending) == (3, "3", None)


def test_the_last_page_moves_the_checkpoint_to_its_last_recipient() -> None:
    f = fanout()
    page = f.record(recipients(4, 9), next_after=None)
    assert page.last and page.checkpoint == "9"
    f.checkpoint()
    assert (f.published, f.last_subscriber_id) == (2, "9")
    assert f.complete(NOW).total == 2


def test_an_empty_last_page_keeps_the_checkpoint() -> None:
    f = fanout()
    f.record(recipients(1), next_after="1")
    f.checkpoint()
    f.record([], next_after=None)
    f.checkpoint()
    assert (f.published, f.last_subscriber_id) == (1, "1")


def test_one_page_at_a_time() -> None:
    f = fanout()
    with pytest.raises(ValueError, match="no page to checkpoint"):
        f.checkpoint()
    f.record(recipients(1), next_after=None)
    with pytest.raises(ValueError, match="still to publish"):
        f.record(recipients(2), next_after=None)
    with pytest.raises(ValueError, match="still to publish"):
        f.complete(NOW)
    f.checkpoint()
    f.complete(NOW)
    with pytest.raises(ValueError, match="already ended"):
        f.record(recipients(2), next_after=None)


def test_giving_up_leaves_the_pending_page_uncounted() -> None:
    f = fanout()
    f.record(recipients(1, 2), next_after="2")
    f.checkpoint()
    f.record(recipients(3, 4), next_after=None)
    failed = f.fail("down", NOW)
    assert failed is not None and failed.published == 2
    with pytest.raises(ValueError, match="already ended"):
        f.checkpoint()


async def test_a_resume_after_the_list_changed_republishes_the_recorded_page_and_counts_exactly() -> None:
    h = Harness(recipients=50, page_size=10)
    # Pages 1 and 2 go out; the process dies after 4 messages of page 3 (subscribers 21..24).
    h.queue.crash_mid_publish = (2, 4)
    with pytest.raises(SimulatedCrash):
        await h.run()
    recorded = h.uow.committed["camp-1"]
    assert recorded.published == 20
    assert recorded.pending is not None
    assert [r.subscriber_id for r in recorded.pending.recipients] == [str(i) for i in range(21, 31)]
    assert h.queue.subscribers() == list(range(1, 25))

    # While it is down, subscribers leave: some already mailed (3, 22), some of the recorded page not
    # yet mailed (27, 30), some of later pages (35, 41, 50).
    for gone in (3, 22, 27, 30, 35, 41, 50):
        h.recipients.ids.remove(gone)

    fanout = await h.run()

    # The recorded page went out whole, as recorded; later pages as the list is now.
    expected = [*range(1, 31), *(i for i in range(31, 51) if i not in (35, 41, 50))]
    assert h.queue.subscribers() == expected
    ((completed, _, _),) = h.completions()
    assert completed.total == fanout.published == len(expected) == len(h.queue.by_msg_id)
    # Page 3 was not fetched again.
    # Page 3 was not fetched again; the pages after it were, from the list without 35.
    assert [c["after"] for c in h.recipients.calls] == [None, "10", "20", "30", "42"]


async def test_a_crash_right_after_recording_publishes_the_page_on_resume() -> None:
    h = Harness(recipients=5, page_size=10)
    h.queue.crash_mid_publish = (0, 0)  # died before the first message of the (only) page reached the queue
    with pytest.raises(SimulatedCrash):
        await h.run()
    assert h.queue.subscribers() == [] and h.uow.committed["camp-1"].pending is not None
    h.recipients.ids.clear()  # the whole list left meanwhile

    await h.run()

    assert h.queue.subscribers() == [1, 2, 3, 4, 5]
    assert [e.total for e, _, _ in h.completions()] == [5]
