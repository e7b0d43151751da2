"""Subject names: `<domain>.<entity>.<event>.v<N>`. Services never hard-code a subject string."""

from __future__ import annotations

CAMPAIGN_SEND_REQUESTED = "campaign.send.requested.v1"
CAMPAIGN_FANOUT_COMPLETED = "campaign.fanout.completed.v1"
CAMPAIGN_FANOUT_FAILED = "campaign.fanout.failed.v1"
CAMPAIGN_STATUS_CHANGED = "campaign.status.changed.v1"

# DeliverEmail carries the campaign id as the last token so a campaign's backlog can be
# inspected, purged or filtered on its own.
MAIL_DELIVER_PREFIX = "mail.deliver.v1"
MAIL_DELIVER_ALL = f"{MAIL_DELIVER_PREFIX}.*"

MAIL_RESULT_SUCCEEDED = "mail.result.succeeded.v1"
MAIL_RESULT_FAILED = "mail.result.failed.v1"
MAIL_RESULT_UNKNOWN = "mail.result.unknown.v1"
MAIL_RESULT_DEFERRED = "mail.result.deferred.v1"
MAIL_RESULT_ALL = "mail.result.>"

# On the CAMPAIGN stream (it captures `audience.>`).
AUDIENCE_SUBSCRIBER_UNSUBSCRIBED = "audience.subscriber.unsubscribed.v1"


def mail_deliver(campaign_id: str) -> str:
    return f"{MAIL_DELIVER_PREFIX}.{campaign_id}"


def deliver_msg_id(campaign_id: str, subscriber_id: str) -> str:
    """JetStream de-duplication key: a recipient is fanned out at most once per duplicate window."""
    return f"deliver:{campaign_id}:{subscriber_id}"


def result_msg_id(campaign_id: str, subscriber_id: str) -> str:
    """One outcome per recipient and campaign on the RESULT stream, whichever path reports it (a
    send, an abandoned send, a delivery given up on): JetStream drops the later copies."""
    return f"result:{campaign_id}:{subscriber_id}"


def fanout_msg_id(campaign_id: str) -> str:
    """One end of fan-out per campaign on the CAMPAIGN stream, completed or failed."""
    return f"fanout:{campaign_id}"

