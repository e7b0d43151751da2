"""The pure parts of the event streams: coalescing to a few updates per second without losing the
last one, the snapshots built from events and from the campaign resource, the SSE wire format."""

from __future__ import annotations

import json

from gateway.domain import sse
from gateway.domain.live_updates import (
    Coalescer,
    campaign_progress,
    campaign_progress_of_resource,
    list_change,
    supersedes,
)
from mailstify_contracts import CampaignStatusChanged, SubscriberChanged


def test_the_first_value_of_a_key_is_due_at_once() -> None:
    coalescer: Coalescer[str, int] = Coalescer(min_interval=0.25)
    coalescer.offer("a", 1)
    assert coalescer.take_due(now=10.0) == [1]
    assert coalescer.next_due_at() is None


def test_values_offered_within_the_interval_wait_and_only_the_latest_is_delivered() -> None:
    coalescer: Coalescer[str, int] = Coalescer(min_interval=0.25)
    coalescer.offer("a", 1)
    assert coalescer.take_due(now=10.0) == [1]
    for value in (2, 3, 4):
        coalescer.offer("a", value)
    assert coalescer.take_due(now=10.1) == []
    assert coalescer.next_due_at() == 10.25
    assert coalescer.take_due(now=10.25) == [4]
    assert coalescer.take_due(now=20.0) == []


def test_a_burst_of_a_hundred_updates_in_one_second_gives_at_most_five() -> None:
    coalescer: Coalescer[str, int] = Coalescer(min_interval=0.25)
    delivered: list[int] = []
    for step in range(100):
        now = step * 0.01
        coalescer.offer("a", step)
        delivered += coalescer.take_due(now)
    due_at = coalescer.next_due_at()
    assert due_at is not None
    delivered += coalescer.take_due(due_at)
    assert delivered[0] == 0 and delivered[-1] == 99  # the last one always arrives
    assert len(delivered) <= 5
    assert delivered == sorted(delivered)


def test_keys_are_coalesced_independently() -> None:
    coalescer: Coalescer[str, str] = Coalescer(min_interval=0.25)
    coalescer.offer("a", "a1")
    assert coalescer.take_due(now=1.0) == ["a1"]
    coalescer.offer("a", "a2")
    coalescer.offer("b", "b1")
    assert coalescer.take_due(now=1.1) == ["b1"]  # b never sent: not held back by a
    assert coalescer.take_due(now=1.25) == ["a2"]


def test_a_key_quiet_for_longer_than_the_interval_is_forgotten_and_due_at_once_again() -> None:
    coalescer: Coalescer[str, int] = Coalescer(min_interval=0.25)
    coalescer.offer("a", 1)
    coalescer.take_due(now=1.0)
    coalescer.take_due(now=2.0)
    coalescer.offer("a", 2)
    assert coalescer.take_due(now=2.0) == [2]


def test_a_value_that_does_not_supersede_the_waiting_one_queues_behind_it() -> None:
    coalescer: Coalescer[str, tuple[str, int]] = Coalescer(0.25, supersedes=lambda new, old: new[0] == old[0])
    coalescer.offer("c", ("draft", 0))
    assert coalescer.take_due(now=1.0) == [("draft", 0)]
    for value in (("sending", 0), ("sending", 2), ("sent", 3)):
        coalescer.offer("c", value)
    assert coalescer.take_due(now=1.1) == []
    assert coalescer.take_due(now=1.25) == [("sending", 2), ("sent", 3)]


def test_a_status_change_is_never_superseded_but_counts_in_one_status_are() -> None:
    sending, more, sent = (
        campaign_progress(STATUS.model_copy(update=change))
        for change in ({}, {"sent_count": 2}, {"status": "sent", "sent_count": 3})
    )
    assert supersedes(more, sending)
    assert not supersedes(sent, more)
    assert supersedes(list_change(LIST_CHANGE), list_change(LIST_CHANGE.model_copy(update={"change": "removed"})))


STATUS = CampaignStatusChanged(
    account_id="acct-1",
    campaign_id="cmp-1",
    status="sending",
    total=3,
    sent_count=1,
    failed_count=1,
    unknown_count=0,
    cancelled_count=0,
    unsubscribe_count=0,
    last_error="550 no such user",
)


def test_an_event_and_the_campaign_resource_make_the_same_snapshot() -> None:
    resource = {
        "id": "cmp-1",
        "name": "Welcome",
        "subject": "Hi",
        "status": "sending",
        "total": 3,
        "sent_count": 1,
        "failed_count": 1,
        "unknown_count": 0,
        "cancelled_count": 0,
        "unsubscribe_count": 0,
        "bounce_count": 0,
        "last_error": "550 no such user",
    }
    from_event, from_resource = campaign_progress(STATUS), campaign_progress_of_resource("acct-1", resource)
    assert from_event == from_resource
    assert from_event.topic == "campaign" and from_event.account_id == "acct-1"
    not_progress = ("name", "subject", "bounce_count")
    assert dict(from_event.data) == {key: value for key, value in resource.items() if key not in not_progress}


LIST_CHANGE = SubscriberChanged(
    account_id="acct-1", list_id="7", change="added", subscriber_id="9", email="a@x.test", status="subscribed"
)


def test_a_subscriber_change_is_a_list_update_of_its_list() -> None:
    update = list_change(LIST_CHANGE)
    assert update.topic == "list" and update.subject_id == "7" and update.key == ("list", "7")
    assert update.data["id"] == "7" and update.data["change"] == "added" and update.data["email"] == "a@x.test"


def test_an_event_is_one_id_event_and_data_line() -> None:
    wire = sse.event("campaign", {"id": "c", "last_error": "line one\nline two\r\n"}, 42)
    lines = wire.decode().split("\n")
    assert lines[:2] == ["id: 42", "event: campaign"]
    assert lines[2].startswith("data: ") and lines[3:] == ["", ""]
    assert json.loads(lines[2][len("data: ") :])["last_error"] == "line one\nline two\r\n"


def test_comments_and_retry_hints() -> None:
    assert sse.comment("keep-alive") == b": keep-alive\n\n"
    assert sse.retry(3000) == b"retry: 3000\n\n"


def test_ids_continue_after_the_last_event_id_a_browser_sends() -> None:
    assert sse.next_event_id(None) == 1
    assert sse.next_event_id("41") == 42
    assert sse.next_event_id(" 7 ") == 8
    for foreign in ("", "abc", "-3", "1.5", "9" * 19, "9" * 5000):
        assert sse.next_event_id(foreign) == 1
