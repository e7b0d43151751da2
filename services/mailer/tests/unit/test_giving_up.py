"""Giving up on a delivery JetStream stopped delivering, on in-memory fakes (the SQL itself is
covered by the integration tests)."""

import pytest

from mailstify_contracts import DeliverEmail, DeliveryFailed, DeliveryOutcomeUnknown, Recipient, subjects

from mailer.domain.model import OUTCOME_UNKNOWN_REASON, DeliveryKey, Status
from mailer.service_layer.handlers.exhausted import GiveUpService

from .fakes import FakeLedger, FakeMailerUnitOfWork, Row

KEY = DeliveryKey("c1", "7")
EVENT = DeliverEmail(
    account_id="a1", campaign_id="c1", recipient=Recipient(subscriber_id="7", email="s7@example.com"), content_key="c1"
)


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def uow(ledger) -> FakeMailerUnitOfWork:
    return FakeMailerUnitOfWork(ledger)


@pytest.fixture
def service(uow) -> GiveUpService:
    return GiveUpService(lambda: uow)


@pytest.mark.parametrize("row", [None, Row(Status.RETRY, 3, smtp_code=451, smtp_reply="try later")])
async def test_a_delivery_that_never_went_out_fails_for_good_and_is_reported(service, ledger, uow, row):
    if row is not None:
        ledger.rows[KEY] = row
    await service.give_up(EVENT, deliveries=8)

    assert ledger.rows[KEY].status is Status.FAILED
    ((event, subject, msg_id),) = uow.events
    assert (subject, msg_id) == (subjects.MAIL_RESULT_FAILED, "result:c1:7")
    assert isinstance(event, DeliveryFailed)
    assert (event.reason, event.permanent, event.hard_bounce, event.smtp_code) == (
        "gave up after 8 deliveries",
        False,
        False,
        None,
    )
    assert (event.account_id, event.campaign_id, event.subscriber_id, event.email) == ("a1", "c1", "7", "s7@example.com")


async def test_an_abandoned_send_is_recorded_unknown_not_failed(service, ledger, uow):
    ledger.rows[KEY] = Row(Status.SENDING, 8, lease_until=ledger.now - 1)
    await service.give_up(EVENT, deliveries=8)

    assert ledger.rows[KEY].status is Status.UNKNOWN
    ((event, subject, msg_id),) = uow.events
    assert isinstance(event, DeliveryOutcomeUnknown) and not uow.events_of(DeliveryFailed)
    assert (subject, msg_id, event.reason) == (subjects.MAIL_RESULT_UNKNOWN, "result:c1:7", OUTCOME_UNKNOWN_REASON)


@pytest.mark.parametrize(
    "row",
    [
        Row(Status.SENT, 1, smtp_code=250),
        Row(Status.FAILED, 1, smtp_code=550),
        Row(Status.UNKNOWN, 1),
        # Another replica is sending a duplicate copy right now: its outcome will be reported.
        Row(Status.SENDING, 2, lease_until=FakeLedger.now + 30),
    ],
    ids=["sent", "failed", "unknown", "live-lease"],
)
async def test_a_settled_or_in_flight_delivery_is_left_alone(service, ledger, uow, row):
    ledger.rows[KEY] = row
    before = (row.status, row.attempts, row.smtp_code)
    await service.give_up(EVENT, deliveries=8)

    assert (row.status, row.attempts, row.smtp_code) == before
    assert uow.events == []
