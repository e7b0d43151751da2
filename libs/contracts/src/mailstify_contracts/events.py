"""The events Mailstify services exchange. Adding a field is a new optional field; anything else is a
new version (see the committed JSON Schemas and tests/test_schemas.py)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .envelope import Event


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CampaignContent(_Value):
    """Everything needed to render a campaign's message; travels once per campaign, not per recipient."""

    subject: str
    from_name: str
    from_email: str
    reply_to: str | None = None
    body_html: str
    body_text: str | None = None
    # The list sent to, for the List-Id header; None in content stored before it was carried.
    list_id: str | None = None


class Recipient(_Value):
    """The merge fields of one subscriber, as snapshotted at fan-out time."""

    subscriber_id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict[str, object] = Field(default_factory=dict)


class CampaignSendRequested(Event):
    type: Literal["campaign.send_requested"] = "campaign.send_requested"

    campaign_id: str
    list_id: str
    content: CampaignContent


class CampaignTestSendRequested(Event):
    """Send the campaign's content (subject already marked `[Test]`) to a few addresses through the
    real pipeline. Each recipient's subscriber id carries subjects.TEST_SUBSCRIBER_PREFIX, so no
    outcome of it is counted; `content_key` is unique per request, so the campaign's own content
    (and a send running meanwhile) is untouched."""

    type: Literal["campaign.test_send_requested"] = "campaign.test_send_requested"

    campaign_id: str
    content_key: str
    content: CampaignContent
    recipients: list[Recipient] = Field(min_length=1, max_length=5)


class CampaignRecipientsRequeued(Event):
    """Retry-failed: send these recipients of the campaign once more, in retry round `round` (from 1).
    The campaign service names only recipients still subscribed, in chunks (at most 500 each)."""

    type: Literal["campaign.recipients_requeued"] = "campaign.recipients_requeued"

    campaign_id: str
    round: int = Field(ge=1)
    recipients: list[Recipient] = Field(min_length=1, max_length=500)


class DeliverEmail(Event):
    """One per recipient. Small on purpose: the body is fetched by `content_key` from the content store."""

    type: Literal["mail.deliver"] = "mail.deliver"

    campaign_id: str
    recipient: Recipient
    content_key: str
    # 0 for the campaign's send, n for its n-th retry of failed recipients: a new round may send to
    # a recipient whose earlier round failed (the mailer's ledger and the msg ids are per round).
    round: int = Field(default=0, ge=0)


class FanoutCompleted(Event):
    type: Literal["campaign.fanout_completed"] = "campaign.fanout_completed"

    campaign_id: str
    total: int = Field(ge=0)


class FanoutFailed(Event):
    """The fan-out cannot proceed (e.g. the audience service kept failing until the send request ran
    out of deliveries): `published` recipients were handed to the mail queue and still go out."""

    type: Literal["campaign.fanout_failed"] = "campaign.fanout_failed"

    campaign_id: str
    published: int = Field(ge=0)
    reason: str


class DeliverySucceeded(Event):
    type: Literal["mail.delivery_succeeded"] = "mail.delivery_succeeded"

    campaign_id: str
    subscriber_id: str
    email: str
    round: int = Field(default=0, ge=0)
    message_id: str
    smtp_reply: str = ""


class DeliveredEmail(_Value):
    """One recipient's accepted message, as a DeliveriesSucceeded carries it."""

    subscriber_id: str
    email: str
    round: int = Field(default=0, ge=0)
    message_id: str
    smtp_reply: str = ""


class DeliveriesSucceeded(Event):
    """The recipients of one campaign a mailer's wave delivered: one event for up to a wave of
    successes instead of a DeliverySucceeded each (decision 0027). Failures stay one event each."""

    type: Literal["mail.deliveries_succeeded"] = "mail.deliveries_succeeded"

    campaign_id: str
    deliveries: tuple[DeliveredEmail, ...]


class DeliveryFailed(Event):
    type: Literal["mail.delivery_failed"] = "mail.delivery_failed"

    campaign_id: str
    subscriber_id: str
    email: str
    round: int = Field(default=0, ge=0)
    reason: str
    # permanent: the server refused for good (5xx); otherwise retries were exhausted or the outcome is unknown.
    permanent: bool
    smtp_code: int | None = None
    hard_bounce: bool = False


class DeliveryOutcomeUnknown(Event):
    """The mail may or may not have reached the recipient: the server went silent after it had the
    message data, or a mailer died mid-send. Never re-sent (ARCHITECTURE.md §6.3), counted apart."""

    type: Literal["mail.delivery_unknown"] = "mail.delivery_unknown"

    campaign_id: str
    subscriber_id: str
    email: str
    round: int = Field(default=0, ge=0)
    reason: str


class DeliveryDeferred(Event):
    """A delivery-path problem (the relay refused the sender, authentication failed, the relay is
    unreachable): the campaign's deliveries are retried later and the campaign shows the reason.
    About the path, never about a recipient, so it carries none."""

    type: Literal["mail.delivery_deferred"] = "mail.delivery_deferred"

    campaign_id: str
    reason: str
    smtp_code: int | None = None


CampaignStatus = Literal["draft", "scheduled", "sending", "paused", "sent", "cancelled", "failed"]


class CampaignStatusChanged(Event):
    type: Literal["campaign.status_changed"] = "campaign.status_changed"

    campaign_id: str
    status: CampaignStatus
    total: int | None = None
    sent_count: int = 0
    failed_count: int = 0
    unknown_count: int = 0
    last_error: str | None = None
    cancelled_count: int = 0
    unsubscribe_count: int = 0


ControlState = Literal["active", "paused", "cancelled"]


class CampaignControlChanged(Event):
    """Whether a campaign's recipients may be sent to: the campaign service writes it (through its
    outbox) as the value of the campaign's key in the CAMPAIGN_CONTROL bucket, the dispatcher and
    every mailer read it. `paused` holds sending, `cancelled` settles what is left as cancelled."""

    type: Literal["campaign.control_changed"] = "campaign.control_changed"

    campaign_id: str
    state: ControlState


class DeliveryCancelled(Event):
    """A recipient was not sent to because their campaign was cancelled first."""

    type: Literal["mail.delivery_cancelled"] = "mail.delivery_cancelled"

    campaign_id: str
    subscriber_id: str
    email: str
    round: int = Field(default=0, ge=0)


class SubscriberUnsubscribed(Event):
    """A subscriber left their list (their status became `unsubscribed`); `campaign_id` names the
    campaign whose unsubscribe link they followed, None when it was not through a campaign."""

    type: Literal["audience.subscriber_unsubscribed"] = "audience.subscriber_unsubscribed"

    subscriber_id: str
    list_id: str
    email: str
    campaign_id: str | None = None



SubscriberChange = Literal["added", "updated", "removed", "imported"]


class SubscriberChanged(Event):
    """Something on a list changed, for live list pages: one event per subscriber added, updated or
    removed through the API, and one per import (`imported`, with its counts, not one per row).
    `subscriber_id` and `email` are None for an import."""

    type: Literal["audience.subscriber_changed"] = "audience.subscriber_changed"

    list_id: str
    change: SubscriberChange
    subscriber_id: str | None = None
    email: str | None = None
    status: str | None = None
    import_id: str | None = None
    imported: int = Field(default=0, ge=0)
    updated: int = Field(default=0, ge=0)


ALL_EVENTS: tuple[type[Event], ...] = (
    CampaignSendRequested,
    CampaignTestSendRequested,
    CampaignRecipientsRequeued,
    DeliverEmail,
    FanoutCompleted,
    FanoutFailed,
    DeliverySucceeded,
    DeliveriesSucceeded,
    DeliveryFailed,
    DeliveryOutcomeUnknown,
    DeliveryDeferred,
    CampaignStatusChanged,
    SubscriberUnsubscribed,
    CampaignControlChanged,
    DeliveryCancelled,
    SubscriberChanged,
)

EVENTS_BY_TYPE: dict[str, type[Event]] = {e.wire_type(): e for e in ALL_EVENTS}


# Straight from JSON into the event's model by its `type` (pydantic's own parser): ~3 µs where
# json.loads + model_validate took ~9, paid per email by the mailer and the campaign service.
_ANY_EVENT: TypeAdapter[Event] = TypeAdapter(Annotated[Union[ALL_EVENTS], Field(discriminator="type")])


def decode_event(data: bytes) -> Event:
    """Parse any event by its `type` field; raises ValueError (a ValidationError) on bad input."""
    return _ANY_EVENT.validate_json(data)
