"""Test sends and retry-failed rounds (issue 7, items 3 and 7): DeliverEmail per named recipient,
outside any fan-out, idempotent by msg id."""

from __future__ import annotations

from mailstify_contracts import CampaignRecipientsRequeued, CampaignTestSendRequested, Recipient, subjects

from dispatcher.service_layer.handlers import NamedRecipientSends

from .fakes import CONTENT, FakeContentStore, FakeMailQueue

TRIAL = CONTENT.model_copy(update={"subject": "[Test] Hi"})


def sends() -> tuple[NamedRecipientSends, FakeMailQueue, FakeContentStore]:
    queue, content = FakeMailQueue(), FakeContentStore()
    return NamedRecipientSends(publisher=queue, content=content), queue, content


def person(subscriber_id: str) -> Recipient:
    return Recipient(subscriber_id=subscriber_id, email=f"{subscriber_id.replace(':', '.')}@example.com")


def trial(content_key: str, *subscriber_ids: str) -> CampaignTestSendRequested:
    return CampaignTestSendRequested(
        account_id="acct-1",
        campaign_id="camp-1",
        content_key=content_key,
        content=TRIAL,
        recipients=[person(s) for s in subscriber_ids],
    )


async def test_a_test_send_stores_its_content_under_its_own_key_and_queues_each_recipient() -> None:
    subject, queue, content = sends()
    request = trial("test-req-1", "test:req-1:0", "test:req-1:1")

    assert await subject.test_send(request) == 2
    assert await subject.test_send(request) == 2  # redelivered

    assert content.values == {"test-req-1": TRIAL}
    assert sorted(queue.by_msg_id) == [
        subjects.deliver_msg_id("camp-1", "test:req-1:0"),
        subjects.deliver_msg_id("camp-1", "test:req-1:1"),
    ]
    assert {(d.content_key, d.round, d.campaign_id) for d in queue.by_msg_id.values()} == {("test-req-1", 0, "camp-1")}


async def test_a_test_send_never_mails_a_recipient_the_campaign_would_count() -> None:
    subject, queue, content = sends()
    request = trial("test-req-2", "42", "test:req-2:0")
    assert await subject.test_send(request) == 1
    assert [d.recipient.subscriber_id for d in queue.published] == ["test:req-2:0"]

    assert await subject.test_send(request.model_copy(update={"recipients": [person("42")]})) == 0
    assert len(queue.published) == 1 and content.puts == 1


async def test_a_requeue_sends_each_recipient_once_in_its_round() -> None:
    subject, queue, content = sends()
    request = CampaignRecipientsRequeued(
        account_id="acct-1", campaign_id="camp-1", round=2, recipients=[person("7"), person("9")]
    )

    assert await subject.requeue(request) == 2
    await subject.requeue(request)  # redelivered: the same msg ids

    assert sorted(queue.by_msg_id) == [subjects.deliver_msg_id("camp-1", s, 2) for s in ("7", "9")]
    assert {(d.content_key, d.round) for d in queue.by_msg_id.values()} == {("camp-1", 2)}
    assert content.puts == 0  # the campaign's content is in the bucket since its fan-out
