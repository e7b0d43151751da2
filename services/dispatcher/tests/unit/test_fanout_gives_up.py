"""B7: a fan-out that cannot proceed gives up after `max_attempts` deliveries, whatever the error,
marking the fan-out failed and staging FanoutFailed in one transaction; then it is over."""

from __future__ import annotations

from mailstify_contracts import CampaignContent, CampaignSendRequested, FanoutCompleted, FanoutFailed, subjects
from mailstify_servicekit import UpstreamUnavailable

from dispatcher.domain.fanout import Fanout
from dispatcher.service_layer.handlers import Dispatcher

from .fakes import FakeContentStore, FakeControl, FakeDispatcherUnitOfWork, FakeMailQueue, FakeRecipients

CONTENT = CampaignContent(subject="Hi", from_name="Team", from_email="team@example.com", body_html="<p>Hi</p>")
REQUEST = CampaignSendRequested(account_id="acct-1", campaign_id="camp-1", list_id="list-1", content=CONTENT)


class AlwaysFailing(FakeRecipients):
    def __init__(self, count: int, error: Exception, fail_from_call: int = 1):
        super().__init__(count)
        self.error = error
        self.fail_from_call = fail_from_call

    async def page(self, account_id, list_id, *, after, up_to, limit):  # type: ignore[no-untyped-def]
        if len(self.calls) + 1 >= self.fail_from_call:
            self.calls.append({"after": after})
            raise self.error
        return await super().page(account_id, list_id, after=after, up_to=up_to, limit=limit)


def dispatcher(recipients: FakeRecipients, max_attempts: int = 3) -> tuple[Dispatcher, FakeDispatcherUnitOfWork]:
    uow = FakeDispatcherUnitOfWork()
    queue = FakeMailQueue()
    return (
        Dispatcher(
            new_uow=uow,
            recipients=recipients,
            publisher=queue,
            content=FakeContentStore(),
            control=FakeControl(),
            backlog=queue,
            page_size=10,
            max_attempts=max_attempts,
        ),
        uow,
    )


async def test_it_retries_until_the_last_attempt_then_fails_the_fanout() -> None:
    # The first page (10 recipients) goes out; then the audience service stays down.
    subject, uow = dispatcher(AlwaysFailing(25, UpstreamUnavailable("audience unreachable"), fail_from_call=2))

    assert await subject.attempt(REQUEST, 1) is False
    assert await subject.attempt(REQUEST, 2) is False
    assert uow.events == []
    assert await subject.attempt(REQUEST, 3) is True

    fanout = uow.committed["camp-1"]
    assert fanout.failed and not fanout.completed and fanout.published == 10
    (event, subject_name, msg_id) = uow.events[0]
    assert isinstance(event, FanoutFailed)
    assert (subject_name, msg_id) == (subjects.CAMPAIGN_FANOUT_FAILED, subjects.fanout_msg_id("camp-1"))
    assert (event.published, event.account_id) == (10, "acct-1")
    assert "after 3 attempts" in event.reason and "audience unreachable" in event.reason
    assert fanout.failure_reason == event.reason


async def test_any_error_counts_not_only_service_errors() -> None:
    subject, uow = dispatcher(AlwaysFailing(5, KeyError("items")), max_attempts=1)
    assert await subject.attempt(REQUEST, 1) is True
    (failed,) = uow.events_of(FanoutFailed)
    assert "KeyError" in failed.reason and failed.published == 0


async def test_a_redelivered_request_of_a_failed_fanout_does_nothing() -> None:
    recipients = AlwaysFailing(5, UpstreamUnavailable("down"))
    subject, uow = dispatcher(recipients, max_attempts=1)
    await subject.attempt(REQUEST, 1)
    calls = len(recipients.calls)

    recipients.fail_from_call = 10**9  # the audience is back
    assert await subject.attempt(REQUEST, 2) is True
    assert len(recipients.calls) == calls
    assert uow.events_of(FanoutCompleted) == []
    assert len(uow.events_of(FanoutFailed)) == 1


async def test_a_completed_fanout_is_never_failed_afterwards() -> None:
    subject, uow = dispatcher(FakeRecipients(5))
    assert await subject.attempt(REQUEST, 1) is True
    await subject.give_up(REQUEST, "late")
    assert uow.events_of(FanoutFailed) == []
    assert len(uow.events_of(FanoutCompleted)) == 1


async def test_a_fanout_that_recovers_before_the_last_attempt_completes() -> None:
    recipients = AlwaysFailing(5, UpstreamUnavailable("down"))
    subject, uow = dispatcher(recipients, max_attempts=3)
    assert await subject.attempt(REQUEST, 1) is False
    recipients.fail_from_call = 10**9
    assert await subject.attempt(REQUEST, 2) is True
    (completed,) = uow.events_of(FanoutCompleted)
    assert completed.total == 5 and uow.events_of(FanoutFailed) == []


def test_the_first_end_wins_in_the_domain() -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, tzinfo=UTC)
    fanout = Fanout(campaign_id="c", account_id="a", list_id="l", created_at=now, published=4)
    assert fanout.fail("down", now) is not None
    assert fanout.fail("again", now) is None
    assert fanout.ended and fanout.failure_reason == "down"
