"""The delivery service's orchestration, on in-memory fakes (the SQL itself is covered by the
integration tests)."""

import pytest

from mailstify_contracts import (
    CampaignContent,
    DeliverEmail,
    DeliveryFailed,
    DeliveryOutcomeUnknown,
    DeliveriesSucceeded,
    Recipient,
    subjects,
)

from mailstify_messaging.retry import DEFAULT_RETRY_SCHEDULE, RetrySchedule

from mailer.domain.model import OUTCOME_UNKNOWN_REASON, DeliveryKey, SmtpAttempt, Status
from mailer.service_layer.campaign_cache import CampaignCache
from mailer.service_layer.handlers.delivery import ACK, DeliveryPolicy, DeliveryService, DeliveryTask, Settlement

from .fakes import FakeContentStore, FakeControl, FakeLedger, FakeMailerUnitOfWork, FakeSender, Row

CONTENT = CampaignContent(
    subject="Hi {{ subscriber.first_name }}", from_name="Acme", from_email="news@acme.test", body_html="<p>Hi</p>"
)
LEASE = 60.0


class World:
    def __init__(
        self, retry_schedule: RetrySchedule = DEFAULT_RETRY_SCHEDULE, pool_size: int = 2, ledger: FakeLedger | None = None
    ):
        self.ledger = ledger or FakeLedger()
        self.now = 0.0
        self.pauses: list[float] = []
        self.uow = FakeMailerUnitOfWork(self.ledger)
        self.store = FakeContentStore({"c1": CONTENT})
        self.sender = FakeSender()
        self.control = FakeControl()
        self.service = DeliveryService(
            unit_of_work=lambda: self.uow.opened_as(single_statement=False),
            single_statement=lambda: self.uow.opened_as(single_statement=True),
            campaigns=CampaignCache(self.store, refresh_seconds=60),
            sender=self.sender,
            policy=DeliveryPolicy(
                "https://m.test", b"k", lease_seconds=LEASE, sending_lease_seconds=LEASE, pool_size=pool_size,
                retry_schedule=retry_schedule,
            ),
            control=self.control,
            clock=lambda: self.now,
            sleep=self._pause,
        )

    async def _pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    async def deliver(self, *tasks: DeliveryTask) -> list[Settlement]:
        return await self.service.deliver(list(tasks))

    @property
    def events(self) -> list:
        return self.uow.events

    def status(self, subscriber_id: str, campaign_id: str = "c1") -> Status:
        return self.ledger.rows[DeliveryKey(campaign_id, subscriber_id)].status


def task(subscriber_id: str, attempt: int = 1, last: bool = False, campaign_id: str = "c1") -> DeliveryTask:
    event = DeliverEmail(
        account_id="a1",
        campaign_id=campaign_id,
        recipient=Recipient(subscriber_id=subscriber_id, email=f"s{subscriber_id}@example.com", first_name="Jo"),
        content_key=campaign_id,
    )
    return DeliveryTask(event, attempt, last)


@pytest.fixture
def world() -> World:
    return World()


async def test_sends_records_and_reports_each_recipient():
    world = World(pool_size=4)
    assert await world.deliver(task("1"), task("2")) == [ACK, ACK]
    assert [m.rcpt_to for m in world.sender.sent] == ["s1@example.com", "s2@example.com"]
    assert [world.status("1"), world.status("2")] == [Status.SENT, Status.SENT]
    # One wave, one campaign: its successes reported together.
    ((event, subject, msg_id),) = world.events
    assert isinstance(event, DeliveriesSucceeded) and subject == subjects.MAIL_RESULT_SUCCEEDED_MANY
    assert msg_id == str(event.event_id) and (event.account_id, event.campaign_id) == ("a1", "c1")
    assert [(d.subscriber_id, d.email, d.message_id) for d in event.deliveries] == [
        ("1", "s1@example.com", "<c1.1@acme.test>"),
        ("2", "s2@example.com", "<c1.2@acme.test>"),
    ]


async def test_duplicate_in_one_batch_is_sent_once(world):
    assert await world.deliver(task("1"), task("1")) == [ACK, ACK]
    assert len(world.sender.sent) == 1
    assert len(world.events) == 1


async def test_terminal_row_is_acked_without_sending(world):
    await world.deliver(task("1"))
    assert await world.deliver(task("1", attempt=2)) == [ACK]
    assert len(world.sender.sent) == 1
    assert len(world.events) == 1


async def test_row_leased_by_another_replica_is_retried_after_the_lease(world):
    world.ledger.rows[DeliveryKey("c1", "1")] = Row(Status.SENDING, 1, lease_until=world.ledger.now + 20)
    (settlement,) = await world.deliver(task("1"))
    assert settlement.retry and 20 <= settlement.delay <= 22
    assert world.sender.sent == [] and world.events == []


async def test_expired_lease_is_recorded_unknown_and_reported_not_resent(world):
    world.ledger.rows[DeliveryKey("c1", "1")] = Row(Status.SENDING, 1, lease_until=world.ledger.now - 1)
    assert await world.deliver(task("1", attempt=2)) == [ACK]
    assert world.sender.sent == []
    assert world.status("1") is Status.UNKNOWN
    ((event, subject, msg_id),) = world.events
    assert isinstance(event, DeliveryOutcomeUnknown) and subject == subjects.MAIL_RESULT_UNKNOWN
    assert msg_id == "result:c1:1" and event.reason == OUTCOME_UNKNOWN_REASON


async def test_4xx_is_retried_then_sent_on_the_next_delivery(world):
    world.sender.replies["s1@example.com"] = [SmtpAttempt(451, "4.3.0 later")]
    (settlement,) = await world.deliver(task("1"))
    # The first delay of the default retry schedule (1 minute ± 20 %).
    assert settlement.retry and 48 <= settlement.delay <= 72
    assert world.status("1") is Status.RETRY and world.events == []
    assert await world.deliver(task("1", attempt=2)) == [ACK]
    assert world.status("1") is Status.SENT
    assert world.ledger.rows[DeliveryKey("c1", "1")].attempts == 2
    assert len(world.events) == 1


async def test_4xx_on_the_last_delivery_fails_for_good(world):
    world.sender.replies["s1@example.com"] = [SmtpAttempt(451, "4.3.0 later")]
    assert await world.deliver(task("1", attempt=8, last=True)) == [ACK]
    ((event, _, _),) = world.events
    assert isinstance(event, DeliveryFailed) and event.permanent is False and event.smtp_code == 451
    assert world.status("1") is Status.FAILED


async def test_hard_bounce_is_reported(world):
    world.sender.replies["s1@example.com"] = [SmtpAttempt(550, "5.1.1 no such user")]
    assert await world.deliver(task("1")) == [ACK]
    ((event, _, _),) = world.events
    assert (event.permanent, event.hard_bounce, event.smtp_code) == (True, True, 550)


async def test_outcome_of_a_claim_taken_over_meanwhile_is_not_reported_twice(world):
    original = world.ledger.settle_wave

    async def taken_over_then_record(outcomes, to_mark, lease_seconds):
        if outcomes:
            world.ledger.rows[DeliveryKey("c1", "1")].status = Status.UNKNOWN  # another replica's verdict
        return await original(outcomes, to_mark, lease_seconds)

    world.ledger.settle_wave = taken_over_then_record
    assert await world.deliver(task("1")) == [ACK]
    assert world.status("1") is Status.UNKNOWN
    assert world.events == []


async def test_missing_content_is_retried_without_sending(world):
    (settlement,) = await world.deliver(task("1", campaign_id="nope"))
    assert settlement.retry
    assert world.status("1", "nope") is Status.RETRY
    assert world.sender.sent == [] and world.events == []


async def test_broken_template_fails_permanently_without_sending(world):
    world.store.contents["bad"] = CONTENT.model_copy(update={"body_html": "{{ oops "})
    assert await world.deliver(task("1", campaign_id="bad")) == [ACK]
    ((event, _, _),) = world.events
    assert isinstance(event, DeliveryFailed) and event.permanent and not event.hard_bounce
    assert "invalid campaign template" in event.reason
    assert world.sender.sent == []


async def test_messages_not_started_in_time_are_released_for_a_quick_retry(world):
    world.sender.out_of_time = True
    (settlement,) = await world.deliver(task("1"))
    assert settlement.retry and settlement.delay is not None
    assert world.status("1") is Status.RETRY and world.events == []


async def test_content_is_read_once_per_campaign(world):
    await world.deliver(task("1"), task("2"))
    await world.deliver(task("3"))
    assert world.store.reads == 1


async def test_only_the_waves_on_the_wire_are_sending_and_the_rest_stay_claimed():
    world = World(pool_size=6)  # two lanes of 3
    on_the_wire: list[int] = []
    waiting: list[int] = []

    def look_at_the_ledger(mails: list) -> None:
        statuses = [row.status for row in world.ledger.rows.values()]
        on_the_wire.append(statuses.count(Status.SENDING))
        waiting.append(statuses.count(Status.CLAIMED))
        # Every mail handed to the sender is `sending` in the ledger before it goes out.
        assert all(world.status(m.rcpt_to[1:].split("@")[0]) is Status.SENDING for m in mails)

    world.sender.on_send = look_at_the_ledger
    assert await world.deliver(*(task(str(i)) for i in range(20))) == [ACK] * 20
    assert max(on_the_wire) <= 6 and max(waiting) >= 10
    assert {world.status(str(i)) for i in range(20)} == {Status.SENT}


@pytest.mark.parametrize(("pool_size", "lanes"), [(32, (16, 16)), (25, (13, 12)), (3, (2, 1)), (1, (1,))])
def test_the_lanes_share_every_connection_of_the_pool(pool_size, lanes):
    policy = DeliveryPolicy(
        "https://m.test", b"k", lease_seconds=LEASE, sending_lease_seconds=LEASE, pool_size=pool_size
    )
    assert policy.lane_sizes == lanes


@pytest.mark.parametrize("pool_size", [5, 1])
async def test_an_odd_pool_is_used_whole_and_never_overrun(pool_size):
    world = World(pool_size=pool_size)
    waves: list[int] = []
    on_the_wire: list[int] = []

    def look_at_the_ledger(mails: list) -> None:
        waves.append(len(mails))
        on_the_wire.append([row.status for row in world.ledger.rows.values()].count(Status.SENDING))

    world.sender.on_send = look_at_the_ledger
    assert await world.deliver(*(task(str(i)) for i in range(20))) == [ACK] * 20
    # A pool of 5 is waves of 3 and 2, not two of 2; a pool of 1 is one lane, never two mails at once.
    assert set(waves) == ({3, 2} if pool_size == 5 else {1}) and sum(waves) == 20
    assert max(on_the_wire) <= pool_size
    assert {world.status(str(i)) for i in range(20)} == {Status.SENT}


async def test_settlements_are_told_as_each_wave_is_recorded(world):
    told: list[tuple[str, Status, int]] = []

    async def settled(t: DeliveryTask, settlement: Settlement) -> None:
        told.append((t.key.subscriber_id, world.status(t.key.subscriber_id), len(world.sender.sent)))

    await world.service.deliver([task(str(i)) for i in range(6)], on_settled=settled)
    # Each told once, with its outcome already recorded, and the first while others were still to go.
    assert sorted(sid for sid, _, _ in told) == [str(i) for i in range(6)]
    assert {status for _, status, _ in told} == {Status.SENT}
    assert told[0][2] < 6


async def test_a_claim_taken_over_by_another_replica_is_not_sent(world):
    original = world.ledger.settle_wave

    async def taken_over(outcomes, to_mark, lease_seconds):
        if any(claim.key == DeliveryKey("c1", "2") for claim in to_mark):
            world.ledger.rows[DeliveryKey("c1", "2")].attempts += 1  # its lease ran out; claimed afresh
        return await original(outcomes, to_mark, lease_seconds)

    world.ledger.settle_wave = taken_over
    assert await world.deliver(task("1"), task("2")) == [ACK, ACK]
    assert [m.rcpt_to for m in world.sender.sent] == ["s1@example.com"]
    assert world.status("2") is Status.CLAIMED  # the other replica's claim, untouched


async def test_a_wave_is_one_statement_committed_on_its_own(world):
    assert await world.deliver(*(task(str(i)) for i in range(4))) == [ACK] * 4

    # Each wave's settle (the next wave's marks with the last one's outcomes) ran as one statement.
    assert world.uow.single_statement_opened >= 3
    assert sorted(d.subscriber_id for e, _, _ in world.events for d in e.deliveries) == ["0", "1", "2", "3"]


async def test_a_wave_that_renews_the_waiting_claims_is_one_transaction():
    world = World(pool_size=2)

    def slow_relay(mails: list) -> None:
        world.now += LEASE  # each send takes a whole claim lease: the waiting claims must be renewed
        world.ledger.now += LEASE

    world.sender.on_send = slow_relay
    assert await world.deliver(*(task(str(i)) for i in range(4))) == [ACK] * 4
    assert {world.status(str(i)) for i in range(4)} == {Status.SENT}
    assert len(world.sender.sent) == 4  # no claim ran out and was sent by "another replica"


class DatabaseAway(FakeLedger):
    """A ledger whose database is unreachable for the first `failures` tries of one statement."""

    def __init__(self, statement: str, failures: float):
        super().__init__()
        self.failing, self.failures = statement, failures

    def _reach(self, statement: str) -> None:
        if statement == self.failing and self.failures > 0:
            self.failures -= 1
            raise ConnectionError("connection refused")

    async def claim(self, *args):
        self._reach("claim")
        return await super().claim(*args)

    async def settle_wave(self, *args):
        self._reach("settle_wave")
        return await super().settle_wave(*args)


async def test_a_database_down_at_the_claim_holds_the_batch_until_it_is_back_without_using_up_a_delivery():
    # Put back at once, the batch would come round again within a second and use up its deliveries
    # while the database is down.
    world = World(ledger=DatabaseAway("claim", failures=2))
    assert await world.deliver(task("1"), task("2")) == [ACK, ACK]
    assert world.pauses == [0.5, 1.0]
    assert [m.rcpt_to for m in world.sender.sent] == ["s1@example.com", "s2@example.com"]
    assert [world.status("1"), world.status("2")] == [Status.SENT, Status.SENT]


async def test_outcomes_of_mail_already_sent_wait_for_the_database_to_come_back():
    world = World(ledger=DatabaseAway("settle_wave", failures=3))
    assert await world.deliver(task("1")) == [ACK]
    assert world.pauses == [0.5, 1.0, 1.5]
    assert len(world.sender.sent) == 1 and world.status("1") is Status.SENT
    assert [type(e) for e, _, _ in world.events] == [DeliveriesSucceeded]


async def test_a_database_away_longer_than_the_patience_fails_the_batch_so_it_is_redelivered():
    world = World(ledger=DatabaseAway("claim", failures=float("inf")))
    with pytest.raises(ConnectionError):
        await world.deliver(task("1"))
    assert sum(world.pauses) >= 120.0 and max(world.pauses) == 5.0
    assert world.sender.sent == []
