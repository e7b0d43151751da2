"""Campaign control at the mailer, on in-memory fakes: a paused campaign's deliveries are held, not
sent, and released once it is resumed; a cancelled campaign's are settled `cancelled` without a send;
a test send is never held; a retry round sends again to a recipient whose earlier round failed."""

from mailstify_contracts import DeliverEmail, DeliveriesSucceeded, DeliveryCancelled, Recipient, subjects

from mailer.domain.model import DeliveryKey, SmtpAttempt, Status
from mailer.service_layer.handlers.delivery import ACK, DeliveryTask

from .test_delivering import World, task


async def test_a_paused_campaigns_deliveries_are_held_then_released_on_resume() -> None:
    world = World()
    world.store.contents["c2"] = world.store.contents["c1"]
    world.control.states["c1"] = "paused"
    assert await world.deliver(task("1"), task("2"), task("9", campaign_id="c2")) == [ACK, ACK, ACK]
    assert [m.rcpt_to for m in world.sender.sent] == ["s9@example.com"]
    assert sorted(world.uow.held.rows) == [("c1", "1", 0), ("c1", "2", 0)]
    assert DeliveryKey("c1", "1") not in world.ledger.rows  # never claimed: nothing counts as an attempt

    assert await world.service.holds.release_unpaused() == 0  # still paused
    world.control.states["c1"] = "active"
    assert await world.service.holds.release_unpaused() == 2
    assert world.uow.held.rows == {}
    released = [(e, s, m) for e, s, m in world.events if isinstance(e, DeliverEmail)]
    assert sorted(e.recipient.subscriber_id for e, _, _ in released) == ["1", "2"]
    assert {s for _, s, _ in released} == {subjects.mail_deliver("c1")}
    # A fresh msg id each: the original is still inside the stream's duplicate window.
    assert all(m.startswith("deliver:c1:") and ":released:" in m for _, _, m in released)

    assert await world.deliver(*(DeliveryTask(e, 1, False) for e, _, _ in released)) == [ACK, ACK]
    assert sorted(m.rcpt_to for m in world.sender.sent) == ["s1@example.com", "s2@example.com", "s9@example.com"]


async def test_a_cancelled_campaigns_deliveries_settle_cancelled_without_a_send() -> None:
    world = World()
    world.control.states["c1"] = "cancelled"
    assert await world.deliver(task("1"), task("2")) == [ACK, ACK]
    assert world.sender.sent == []
    assert [world.status("1"), world.status("2")] == [Status.CANCELLED, Status.CANCELLED]
    assert [(type(e), s, m) for e, s, m in world.events] == [
        (DeliveryCancelled, subjects.MAIL_RESULT_CANCELLED, "result:c1:1"),
        (DeliveryCancelled, subjects.MAIL_RESULT_CANCELLED, "result:c1:2"),
    ]
    # A redelivered copy finds the row settled.
    assert await world.deliver(task("1")) == [ACK]
    assert len(world.events) == 2


async def test_test_sends_are_never_held() -> None:
    world = World()
    world.control.states["c1"] = "paused"
    trial = task("1").event.model_copy(
        update={"recipient": Recipient(subscriber_id=f"{subjects.TEST_SUBSCRIBER_PREFIX}abc:0", email="me@example.com")}
    )
    assert await world.deliver(DeliveryTask(trial, 1, False)) == [ACK]
    assert world.uow.held.rows == {}, world.events
    assert len(world.sender.sent) == 1, world.events


async def test_a_retry_round_sends_again_to_a_failed_recipient_once() -> None:
    world = World()
    world.sender.replies["s1@example.com"] = [SmtpAttempt(550, "5.1.1 no such user")]
    await world.deliver(task("1"))
    assert world.status("1") is Status.FAILED and world.sender.sent == []

    retry = task("1").event.model_copy(update={"round": 1})
    assert await world.deliver(DeliveryTask(retry, 1, False)) == [ACK]
    assert [m.rcpt_to for m in world.sender.sent] == ["s1@example.com"]
    succeeded = [d for e, _, _ in world.events if isinstance(e, DeliveriesSucceeded) for d in e.deliveries]
    assert [(d.subscriber_id, d.round) for d in succeeded] == [("1", 1)]
    # The same round again, or a stale copy of round 0: nothing more goes out.
    await world.deliver(DeliveryTask(retry, 2, False), task("1", attempt=3))
    assert len(world.sender.sent) == 1


