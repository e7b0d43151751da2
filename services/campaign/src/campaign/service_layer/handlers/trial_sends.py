"""Test sends: the campaign as it stands, to up to five addresses, through the real pipeline
(dispatcher → mailer → SMTP), marked `[Test]` in the subject and never counted.

The recipients' subscriber ids carry the contracts' test prefix, so the campaign's result ledger
ignores their outcomes and its control state never holds them; the content travels under a key of
its own, so a test of a draft being edited never touches the content of a send.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from mailstify_contracts import CampaignTestSendRequested, Recipient, subjects
from mailstify_rendering import SAMPLE_RECIPIENT
from mailstify_servicekit.emails import normalise_email
from mailstify_servicekit.errors import InvalidInput, NotFound

from ..ports import CampaignUnitOfWork, RecipientDirectory
from .campaigns import load_campaign

MAX_TEST_ADDRESSES = 5
TEST_SUBJECT_MARK = "[Test] "


def _addresses(emails: Sequence[str]) -> list[str]:
    if not 1 <= len(emails) <= MAX_TEST_ADDRESSES:
        raise InvalidInput(f"emails: give 1 to {MAX_TEST_ADDRESSES} addresses")
    normalised: list[str] = []
    for position, email in enumerate(emails):
        try:
            address = normalise_email(email)
        except InvalidInput as exc:
            raise InvalidInput(f"emails[{position}]: {exc.detail}") from exc
        if address not in normalised:
            normalised.append(address)
    return normalised


async def send_test(
    uow: CampaignUnitOfWork,
    recipients: RecipientDirectory,
    account_id: str,
    campaign_id: str,
    emails: Sequence[str],
    subscriber_id: str | None = None,
) -> list[str]:
    """Queue the test mails; the addresses they go to (normalised, without repeats)."""
    addresses = _addresses(emails)
    async with uow:
        campaign = await load_campaign(uow, account_id, campaign_id)
    person = SAMPLE_RECIPIENT
    if subscriber_id is not None:
        found = await recipients.find_recipient(account_id, campaign.list_id, subscriber_id)
        if found is None:
            raise NotFound(f"subscriber {subscriber_id} not found on the campaign's list {campaign.list_id}")
        person = found
    content = campaign.content().model_copy(update={"subject": TEST_SUBJECT_MARK + campaign.subject})
    request_id = uuid.uuid4().hex
    test_recipients = [
        # Rendered as `person`, delivered to the test address.
        Recipient(
            subscriber_id=f"{subjects.TEST_SUBSCRIBER_PREFIX}{request_id}:{n}",
            email=address,
            first_name=person.first_name,
            last_name=person.last_name,
            attributes=person.attributes,
        )
        for n, address in enumerate(addresses)
    ]
    async with uow:
        uow.emit(
            CampaignTestSendRequested(
                account_id=account_id,
                campaign_id=campaign.id,
                content_key=f"test-{campaign.id}-{request_id}",
                content=content,
                recipients=test_recipients,
            ),
            subjects.CAMPAIGN_TEST_SEND_REQUESTED,
        )
        await uow.commit()
    return addresses
