"""B5/B6/B8 on in-memory fakes: ambiguous outcomes are unknown, delivery-path refusals are deferred
(never the recipient's failure), retries follow the configured schedule."""

import pytest

from mailstify_contracts import DeliveryDeferred, DeliveryFailed, DeliveryOutcomeUnknown, subjects, topology
from mailstify_messaging.retry import DEFAULT_RETRY_SCHEDULE, RetrySchedule

from mailer.config import Settings
from mailer.domain.classification import classify
from mailer.domain.model import SmtpAttempt, SmtpPhase, Status
from mailer.service_layer.handlers.delivery import ACK

from .test_delivering import CONTENT, World, task


@pytest.mark.parametrize("reply", ["SMTPReadTimeoutError: Timed out", "SMTPServerDisconnected: Unexpected EOF"])
@pytest.mark.parametrize("last", [False, True])
def test_no_reply_after_the_data_was_sent_is_unknown_never_retried(reply, last):
    outcome = classify(SmtpAttempt(None, reply, phase=SmtpPhase.DATA_SENT), last_attempt=last)
    assert outcome.status is Status.UNKNOWN and outcome.status.is_terminal
    assert outcome.reason.startswith("outcome unknown: no reply after the message data was sent")


@pytest.mark.parametrize("phase", [SmtpPhase.SESSION, SmtpPhase.MAIL, SmtpPhase.RCPT, SmtpPhase.DATA])
def test_no_reply_before_the_data_was_sent_is_retried(phase):
    assert classify(SmtpAttempt(None, "TimeoutError", phase=phase), last_attempt=False).status is Status.RETRY


@pytest.mark.parametrize(
    "attempt",
    [
        SmtpAttempt(550, "5.7.1 Sender address rejected", phase=SmtpPhase.MAIL),
        SmtpAttempt(553, "5.1.8 Bad sender domain", phase=SmtpPhase.MAIL),
        SmtpAttempt(535, "5.7.8 Authentication credentials invalid", phase=SmtpPhase.SESSION),
        SmtpAttempt(530, "5.7.0 Authentication required", phase=SmtpPhase.RCPT),
        SmtpAttempt(554, "5.7.1 Relay access denied", phase=SmtpPhase.RCPT),
        SmtpAttempt(554, "no SMTP service here", phase=SmtpPhase.SESSION),
        SmtpAttempt(None, "SMTPConnectError: connection refused", phase=SmtpPhase.SESSION),
    ],
    ids=["mail-from-550", "mail-from-553", "auth-535", "rcpt-530", "relay-denied", "greeting-554", "refused"],
)
def test_sender_side_refusals_are_path_problems_never_the_recipients(attempt):
    outcome = classify(attempt, last_attempt=False)
    assert outcome.status is Status.RETRY and outcome.path_problem
    assert not outcome.permanent and not outcome.hard_bounce
    assert outcome.reason.startswith("delivery path: ") and outcome.smtp_code == attempt.code

    last = classify(attempt, last_attempt=True)
    assert last.status is Status.FAILED and not last.permanent and not last.hard_bounce
    assert last.reason == f"retries exhausted: {outcome.reason}"


@pytest.mark.parametrize("phase", [SmtpPhase.RCPT, SmtpPhase.DATA_SENT])
def test_a_mailbox_refusal_is_still_the_recipients_hard_bounce(phase):
    outcome = classify(SmtpAttempt(550, "5.1.1 no such user", phase=phase), last_attempt=False)
    assert (outcome.status, outcome.permanent, outcome.hard_bounce, outcome.path_problem) == (Status.FAILED, True, True, False)


async def test_unknown_outcome_is_recorded_reported_and_a_redelivery_is_not_sent():
    world = World()
    world.sender.replies["s1@example.com"] = [SmtpAttempt(None, "TimeoutError", phase=SmtpPhase.DATA_SENT)]
    assert await world.deliver(task("1")) == [ACK]
    assert world.status("1") is Status.UNKNOWN
    ((event, subject, msg_id),) = world.events
    assert isinstance(event, DeliveryOutcomeUnknown)
    assert (subject, msg_id) == (subjects.MAIL_RESULT_UNKNOWN, subjects.result_msg_id("c1", "1"))

    assert await world.deliver(task("1", attempt=2)) == [ACK]
    assert len(world.events) == 1 and world.ledger.rows[next(iter(world.ledger.rows))].attempts == 1


async def test_path_problem_defers_once_per_campaign_and_batch_and_retries_on_the_schedule():
    world = World()
    world.store.contents["c2"] = CONTENT
    refused = SmtpAttempt(550, "5.7.1 Sender address rejected", phase=SmtpPhase.MAIL)
    for i in ("1", "2", "3"):
        world.sender.replies[f"s{i}@example.com"] = [refused]
    world.sender.replies["s4@example.com"] = [SmtpAttempt(535, "5.7.8 bad credentials", phase=SmtpPhase.SESSION)]
    settlements = await world.deliver(task("1"), task("2"), task("3", campaign_id="c2"), task("4", campaign_id="c2"))

    assert all(s.retry and 48 <= s.delay <= 72 for s in settlements)
    assert {world.status(i) for i in ("1", "2")} == {world.status("3", "c2"), world.status("4", "c2")} == {Status.RETRY}
    assert not world.uow.events_of(DeliveryFailed)
    deferred = {e.campaign_id: (e, subject) for e, subject, _ in world.events}
    assert len(world.events) == 2 and set(deferred) == {"c1", "c2"}
    event, subject = deferred["c1"]
    assert isinstance(event, DeliveryDeferred) and subject == subjects.MAIL_RESULT_DEFERRED
    assert (event.smtp_code, event.account_id) == (550, "a1")
    assert event.reason == "delivery path: MAIL FROM: 550 5.7.1 Sender address rejected"


async def test_4xx_is_retried_len_plus_one_times_with_the_schedules_delays_then_fails():
    world = World(retry_schedule=RetrySchedule.parse("1s,3s", jitter=0))
    world.sender.replies["s1@example.com"] = [SmtpAttempt(451, "4.3.0 later")] * 5
    delays = []
    for attempt in (1, 2, 3):
        (settlement,) = await world.deliver(task("1", attempt=attempt))
        delays.append(settlement.delay if settlement.retry else "ack")
    assert delays == [1.0, 3.0, "ack"]
    ((event, _, _),) = world.events
    assert isinstance(event, DeliveryFailed) and not event.permanent and event.reason.startswith("retries exhausted")
    assert world.status("1") is Status.FAILED


def _settings(**overrides) -> Settings:
    return Settings(database_url="postgresql+psycopg://u@h/db", secret_key="k", **overrides)


def test_the_default_schedule_retries_for_at_least_30_minutes_and_sets_max_deliver():
    settings = _settings()
    assert settings.retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert settings.retry_schedule.span >= 30 * 60
    assert settings.deliveries_consumer.max_deliver == settings.retry_schedule.max_deliveries == 7
    # The declared default and the schedule agree, so a consumer declared from topology does too.
    assert topology.MAILER_DELIVERIES.max_deliver == DEFAULT_RETRY_SCHEDULE.max_deliveries


def test_the_schedule_is_configurable_from_the_environment(monkeypatch):
    monkeypatch.setenv("MAILSTIFY_RETRY_SCHEDULE", "30s, 2m,1h")
    settings = _settings()
    assert settings.retry_schedule.delays == (30.0, 120.0, 3600.0)
    consumer = settings.deliveries_consumer
    assert consumer.max_deliver == 4
    assert (consumer.durable, consumer.ack_wait_seconds) == (
        topology.MAILER_DELIVERIES.durable,
        topology.MAILER_DELIVERIES.ack_wait_seconds,
    )


@pytest.mark.parametrize("text", ["", "1m,,2m", "1x", "0s", "-1m"])
def test_an_invalid_schedule_is_refused_clearly(monkeypatch, text):
    monkeypatch.setenv("MAILSTIFY_RETRY_SCHEDULE", text)
    with pytest.raises(ValueError, match="retry_schedule|retry delays|retry schedule"):
        _settings()


def test_the_lease_must_stay_below_the_consumers_ack_wait():
    with pytest.raises(ValueError, match="ack_wait"):
        _settings(lease_seconds=topology.MAILER_DELIVERIES.ack_wait_seconds)
