"""What the rendering tests share: a campaign's content with overridable fields, and the
unsubscribe URL they render with."""

from __future__ import annotations

from mailstify_contracts import CampaignContent

URL = "https://mail.example.com/u/tok"


def content(**overrides) -> CampaignContent:
    fields = {
        "subject": "Hello {{ subscriber.first_name }}",
        "from_name": "Acme",
        "from_email": "news@acme.test",
        "body_html": "<p>Hi {{ subscriber.first_name }}</p>",
        "body_text": "Hi {{ subscriber.first_name }}",
    }
    return CampaignContent(**{**fields, **overrides})
