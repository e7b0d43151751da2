"""The one renderer: merge fields, footer, text alternative and MIME skeleton for every campaign email.

The campaign service validates (`validate_campaign`, `sanitize_html`, `body_is_empty`) and previews
(`render_preview`); the mailer sends (`PreparedCampaign`). Both compile with the same bounded
environment, so what a user previews is byte for byte what people receive.
"""

from .campaign import (
    SAMPLE_RECIPIENT,
    SAMPLE_UNSUBSCRIBE_URL,
    PreparedCampaign,
    TemplateRejected,
    check_template,
    render_preview,
    validate_campaign,
)
from .environment import DEFAULT_LIMITS, RenderError, RenderLimits, environment
from .mime import (
    DEFAULT_HEADER_OPTIONS,
    HeaderOptions,
    MessageFields,
    MimeSkeleton,
    UnsupportedAddress,
    build_reference_message,
    feedback_id,
    list_id,
    message_id,
    recipient_name,
    wire_body,
)
from .sanitize import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, URL_SCHEMES, body_is_empty, safe_url_value, sanitize_html
from .templates import (
    CampaignTemplates,
    MergeFields,
    RenderedContent,
    compile_campaign,
    header_text,
    merge_context,
)
from .text import html_to_text

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "DEFAULT_HEADER_OPTIONS",
    "DEFAULT_LIMITS",
    "SAMPLE_RECIPIENT",
    "SAMPLE_UNSUBSCRIBE_URL",
    "URL_SCHEMES",
    "CampaignTemplates",
    "HeaderOptions",
    "MergeFields",
    "MessageFields",
    "MimeSkeleton",
    "PreparedCampaign",
    "RenderError",
    "RenderLimits",
    "RenderedContent",
    "TemplateRejected",
    "UnsupportedAddress",
    "body_is_empty",
    "build_reference_message",
    "check_template",
    "compile_campaign",
    "environment",
    "feedback_id",
    "header_text",
    "html_to_text",
    "list_id",
    "merge_context",
    "message_id",
    "recipient_name",
    "render_preview",
    "safe_url_value",
    "sanitize_html",
    "validate_campaign",
    "wire_body",
]
