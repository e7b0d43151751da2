"""A campaign prepared for sending: templates compiled and MIME skeleton encoded once, then one
message per recipient from them."""

from __future__ import annotations

from dataclasses import dataclass

from mailstify_contracts import CampaignContent, Recipient

from .mime import MessageFields, MimeSkeleton, UnsupportedAddress, message_id, recipient_name
from .model import Outcome, Status
from .rendering import CampaignTemplates, RenderError, compile_campaign


@dataclass(frozen=True)
class PreparedCampaign:
    content: CampaignContent
    templates: CampaignTemplates
    skeleton: MimeSkeleton

    @classmethod
    def prepare(cls, content: CampaignContent) -> PreparedCampaign:
        """Raises RenderError when no message can be built from this content."""
        try:
            skeleton = MimeSkeleton(content)
        except UnsupportedAddress as exc:
            raise RenderError(f"invalid sender: {exc}") from exc
        return cls(content=content, templates=compile_campaign(content), skeleton=skeleton)

    def message_id(self, campaign_id: str, subscriber_id: str) -> str:
        return message_id(campaign_id, subscriber_id, self.content.from_email)

    def build(self, campaign_id: str, recipient: Recipient, unsubscribe_url: str, date: str) -> bytes:
        """The message's bytes. Raises RenderError or UnsupportedAddress (a ValueError)."""
        rendered = self.templates.render(recipient, unsubscribe_url)
        return self.skeleton.build(
            MessageFields(
                to_email=recipient.email,
                to_name=recipient_name(recipient.first_name, recipient.last_name),
                subject=rendered.subject,
                message_id=self.message_id(campaign_id, recipient.subscriber_id),
                date=date,
                unsubscribe_url=unsubscribe_url,
                text=rendered.text,
                html=rendered.html,
            )
        )


def unbuildable(reason: str) -> Outcome:
    """No message can be built for this recipient (broken template, unusable address): retrying
    would build the same nothing, so it fails for good, without an SMTP reply and without a bounce."""
    return Outcome(Status.FAILED, reason=reason, permanent=True)
