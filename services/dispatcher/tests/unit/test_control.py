"""Pause and cancel hold (issue 7, item 5): the fan-out reads the campaign's control state before
every page, the first one included."""

from __future__ import annotations

import pytest

from mailstify_contracts import FanoutCompleted

from .fakes import Harness, SimulatedCrash, request


async def test_a_campaign_paused_before_its_first_page_publishes_nothing_and_acks() -> None:
    h = Harness(recipients=25, page_size=10)
    h.control.states["camp-1"] = "paused"

    assert await h.dispatcher.attempt(request(), 1) is True

    assert (h.recipients.calls, h.queue.published, h.completions()) == ([], [], [])
    assert not h.uow.committed["camp-1"].ended


async def test_a_pause_mid_fanout_stops_at_the_checkpoint_and_the_resume_carries_on() -> None:
    h = Harness(recipients=25, page_size=10)
    h.control.script = ["active", "paused"]  # paused once the first page is out

    fanout = await h.run()
    assert (fanout.published, fanout.ended, fanout.pending) == (10, False, None)
    assert h.queue.subscribers() == list(range(1, 11)) and h.completions() == []

    # A redelivered request while still paused stops again, before fetching anything.
    calls = len(h.recipients.calls)
    await h.run()
    assert len(h.recipients.calls) == calls and len(h.queue.published) == 10

    # Resume: the campaign service's new send request; the fan-out goes on from its checkpoint.
    h.control.script = ["active"]
    fanout = await h.run()
    assert h.recipients.calls[calls]["after"] == "10"
    assert len(h.queue.published) == 25 == len(h.queue.by_msg_id)  # nobody published twice
    assert [e.total for e, _, _ in h.completions()] == [25] and fanout.completed


async def test_a_cancel_mid_fanout_completes_with_what_was_published() -> None:
    h = Harness(recipients=35, page_size=10)
    h.control.script = ["active", "active", "cancelled"]

    fanout = await h.run()

    assert fanout.completed and h.uow.committed["camp-1"].completed
    assert h.queue.subscribers() == list(range(1, 21))
    ((completed, _, _),) = h.completions()
    assert isinstance(completed, FanoutCompleted) and completed.total == 20
    assert len(h.recipients.calls) == 2

    # Over: a redelivery reads nothing and publishes nothing.
    await h.run()
    assert len(h.recipients.calls) == 2 and len(h.completions()) == 1


async def test_a_campaign_cancelled_before_its_first_page_completes_with_total_zero() -> None:
    h = Harness(recipients=5)
    h.control.states["camp-1"] = "cancelled"
    await h.run()
    assert h.recipients.calls == [] and h.queue.published == []
    assert [e.total for e, _, _ in h.completions()] == [0]


@pytest.mark.parametrize("state", ["paused", "cancelled"])
async def test_a_page_recorded_before_a_crash_goes_out_whatever_the_state(state: str) -> None:
    # Part of it may be queued already: the total must count it, so it is finished first.
    h = Harness(recipients=25, page_size=10)
    h.queue.crash_mid_publish = (1, 3)
    with pytest.raises(SimulatedCrash):
        await h.run()
    h.control.states["camp-1"] = state  # type: ignore[assignment]

    fanout = await h.run()

    assert h.queue.subscribers() == list(range(1, 21))
    assert fanout.published == 20 and fanout.pending is None
    assert len(h.recipients.calls) == 2  # nothing fetched after the held state was read
    assert [e.total for e, _, _ in h.completions()] == ([20] if state == "cancelled" else [])
