"""Subject names: `<domain>.<entity>.<event>.v<N>`. Services never hard-code a subject string."""

from __future__ import annotations

CAMPAIGN_SEND_REQUESTED = "campaign.send.requested.v1"
CAMPAIGN_FANOUT_COMPLETED = "campaign.fanout.completed.v1"
CAMPAIGN_STATUS_CHANGED = "campaign.status.changed.v1"

# DeliverEmail carries the campaign id as the last token so a campaign's backlog can be
# inspected, purged or filtered on its own.
MAIL_DELIVER_PREFIX = "mail.deliver.v1"
MAIL_DELIVER_ALL = f"{MAIL_DELIVER_PREFIX}.*"

MAIL_RESULT_SUCCEEDED = "mail.result.succeeded.v1"
MAIL_RESULT_FAILED = "mail.result.failed.v1"
MAIL_RESULT_ALL = "mail.result.>"


def mail_deliver(campaign_id: str) -> str:
    return f"{MAIL_DELIVER_PREFIX}.{campaign_id}"


def deliver_msg_id(campaign_id: str, subscriber_id: str) -> str:
    """JetStream de-duplication key: a recipient is fanned out at most once per duplicate window."""
    return f"deliver:{campaign_id}:{subscriber_id}"
