"""Subject names: `<domain>.<entity>.<event>.v<N>`. Services never hard-code a subject string."""

from __future__ import annotations

CAMPAIGN_SEND_REQUESTED = "campaign.send.requested.v1"
CAMPAIGN_TEST_SEND_REQUESTED = "campaign.test_send.requested.v1"
CAMPAIGN_RECIPIENTS_REQUEUED = "campaign.recipients.requeued.v1"
CAMPAIGN_FANOUT_COMPLETED = "campaign.fanout.completed.v1"
CAMPAIGN_FANOUT_FAILED = "campaign.fanout.failed.v1"
CAMPAIGN_STATUS_CHANGED = "campaign.status.changed.v1"

# DeliverEmail carries the campaign id as the last token so a campaign's backlog can be
# inspected, purged or filtered on its own.
MAIL_DELIVER_PREFIX = "mail.deliver.v1"
MAIL_DELIVER_ALL = f"{MAIL_DELIVER_PREFIX}.*"

MAIL_RESULT_SUCCEEDED = "mail.result.succeeded.v1"
# DeliveriesSucceeded: a wave's successes of one campaign, together.
MAIL_RESULT_SUCCEEDED_MANY = "mail.result.succeeded_many.v1"
MAIL_RESULT_FAILED = "mail.result.failed.v1"
MAIL_RESULT_UNKNOWN = "mail.result.unknown.v1"
MAIL_RESULT_DEFERRED = "mail.result.deferred.v1"
MAIL_RESULT_CANCELLED = "mail.result.cancelled.v1"
MAIL_RESULT_ALL = "mail.result.>"

# A JetStream KV bucket: one key per campaign, its value a CampaignControlChanged. The campaign
# service writes it by publishing to the key's subject from its outbox, so the control state changes
# in the same transaction as the campaign's status, and a KV watch sees it at once.
CAMPAIGN_CONTROL_BUCKET = "CAMPAIGN_CONTROL"

# On the CAMPAIGN stream (it captures `audience.>`).
AUDIENCE_SUBSCRIBER_UNSUBSCRIBED = "audience.subscriber.unsubscribed.v1"
AUDIENCE_SUBSCRIBER_CHANGED = "audience.subscriber.changed.v1"


def mail_deliver(campaign_id: str) -> str:
    return f"{MAIL_DELIVER_PREFIX}.{campaign_id}"


def send_requested_msg_id(campaign_id: str, round_number: int) -> str:
    """A campaign's send is requested once per round: the first send, then one per resume (a resumed
    fan-out carries on from its checkpoint), so a redelivered outbox row is still dropped."""
    return f"send:{campaign_id}:{round_number}"


def _per_round(key: str, round_number: int) -> str:
    return key if round_number == 0 else f"{key}:r{round_number}"


def deliver_msg_id(campaign_id: str, subscriber_id: str, round_number: int = 0) -> str:
    """JetStream de-duplication key: a recipient is fanned out at most once per round and duplicate window."""
    return _per_round(f"deliver:{campaign_id}:{subscriber_id}", round_number)


def result_msg_id(campaign_id: str, subscriber_id: str, round_number: int = 0) -> str:
    """One outcome per recipient, campaign and round on the RESULT stream, whichever path reports it
    (a send, an abandoned send, a delivery given up on): JetStream drops the later copies."""
    return _per_round(f"result:{campaign_id}:{subscriber_id}", round_number)


def fanout_msg_id(campaign_id: str) -> str:
    """One end of fan-out per campaign on the CAMPAIGN stream, completed or failed."""
    return f"fanout:{campaign_id}"



def campaign_control(campaign_id: str) -> str:
    """The subject of the campaign's key in the CAMPAIGN_CONTROL bucket (a KV put is a publish there)."""
    return f"$KV.{CAMPAIGN_CONTROL_BUCKET}.{campaign_id}"


# Test sends reuse the pipeline with recipients whose subscriber ids carry this prefix: the campaign
# service never counts their outcomes, and a campaign's control state does not hold them.
TEST_SUBSCRIBER_PREFIX = "test:"


def is_test_recipient(subscriber_id: str) -> bool:
    return subscriber_id.startswith(TEST_SUBSCRIBER_PREFIX)
