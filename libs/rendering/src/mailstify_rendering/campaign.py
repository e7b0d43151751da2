"""A campaign as both services see it: validated at save time (campaign service), previewed, and
prepared for sending (mailer) — all through the same compile and render."""

from __future__ import annotations

from dataclasses import dataclass

from mailstify_contracts import CampaignContent, Recipient

from .environment import DEFAULT_LIMITS, RenderError, RenderLimits, environment
from .mime import (
    DEFAULT_HEADER_OPTIONS,
    HeaderOptions,
    MessageFields,
    MimeSkeleton,
    UnsupportedAddress,
    message_id,
    recipient_name,
)
from .templates import CampaignTemplates, RenderedContent, compile_campaign, compile_template

# Who a template is test-rendered for at save time.
SAMPLE_RECIPIENT = Recipient(
    subscriber_id="sample", email="jane.doe@example.com", first_name="Jane", last_name="Doe", attributes={}
)
SAMPLE_UNSUBSCRIBE_URL = "https://example.com/unsubscribe/sample"


class TemplateRejected(ValueError):
    """A campaign template that would not render: `field`, `line` (or None) and a human message,
    e.g. "body_html: line 3: loops may run at most 10000 iterations in one email"."""

    def __init__(self, field: str, line: int | None, message: str):
        self.field = field
        self.line = line
        self.message = message
        super().__init__(f"{field}: line {line}: {message}" if line else f"{field}: {message}")

    @classmethod
    def from_render_error(cls, error: RenderError, default_field: str = "body_html") -> TemplateRejected:
        return cls(error.field or default_field, error.line, error.reason)


def validate_campaign(
    content: CampaignContent,
    limits: RenderLimits = DEFAULT_LIMITS,
    sample: Recipient = SAMPLE_RECIPIENT,
) -> None:
    """Compile subject, body_html and body_text with the environment the send uses, then render them
    for a sample subscriber under the same budget: a template that cannot compile, or that blows a
    bound, is refused at save time. Raises TemplateRejected."""
    try:
        compile_campaign(content, limits).render(sample, SAMPLE_UNSUBSCRIBE_URL)
    except RenderError as exc:
        raise TemplateRejected.from_render_error(exc) from exc


def check_template(field: str, source: str | None, *, html: bool = False,
                   limits: RenderLimits = DEFAULT_LIMITS) -> None:
    """Compile one template (syntax, allowed filters, nesting). Raises TemplateRejected."""
    if not source:
        return
    try:
        compile_template(environment(html, limits), source, field)
    except RenderError as exc:
        raise TemplateRejected.from_render_error(exc, field) from exc


def render_preview(content: CampaignContent, recipient: Recipient, unsubscribe_url: str,
                   limits: RenderLimits = DEFAULT_LIMITS) -> RenderedContent:
    """What `PreparedCampaign.build` puts in the message for this recipient, byte for byte.
    Raises RenderError."""
    return compile_campaign(content, limits).render(recipient, unsubscribe_url)


@dataclass(frozen=True)
class PreparedCampaign:
    """A campaign prepared for sending: templates compiled and MIME skeleton encoded once, then one
    message per recipient from them.

    The mailer sends what `build` returns, DKIM-signed when it has a key (the signature is one header
    prepended, the rest byte for byte this); a campaign preview shows the same message unsigned,
    since the campaign service never holds the signing key."""

    content: CampaignContent
    templates: CampaignTemplates
    skeleton: MimeSkeleton

    @classmethod
    def prepare(
        cls,
        content: CampaignContent,
        limits: RenderLimits = DEFAULT_LIMITS,
        options: HeaderOptions = DEFAULT_HEADER_OPTIONS,
    ) -> PreparedCampaign:
        """Raises RenderError when no message can be built from this content."""
        try:
            skeleton = MimeSkeleton(content, options=options)
        except UnsupportedAddress as exc:
            raise RenderError(f"invalid sender: {exc}", field="from_email") from exc
        return cls(content=content, templates=compile_campaign(content, limits), skeleton=skeleton)

    def message_id(self, campaign_id: str, subscriber_id: str) -> str:
        return message_id(campaign_id, subscriber_id, self.content.from_email)

    def render(self, recipient: Recipient, unsubscribe_url: str) -> RenderedContent:
        return self.templates.render(recipient, unsubscribe_url)

    def build(self, campaign_id: str, recipient: Recipient, unsubscribe_url: str, date: str) -> bytes:
        """The message's bytes. Raises RenderError or UnsupportedAddress (a ValueError)."""
        rendered = self.templates.render(recipient, unsubscribe_url)
        return self.skeleton.build(
            MessageFields(
                campaign_id=campaign_id,
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
