"""Defect B3: merge fields cannot bring back what the HTML sanitiser removed. The rendered HTML is as
safe as the cleaned template, identically in preview and send."""

from __future__ import annotations

import email
from email import policy
from html.parser import HTMLParser

import pytest

from mailstify_contracts import CampaignContent, Recipient
from mailstify_rendering import (
    PreparedCampaign,
    RenderError,
    TemplateRejected,
    compile_campaign,
    render_preview,
    safe_url_value,
    validate_campaign,
)
from mailstify_rendering.mime import encoded_part

URL = "https://mail.example.com/u/tok"
DATE = "Tue, 24 Nov 2026 19:21:00 +0000"


def content(body_html: str, **overrides) -> CampaignContent:
    fields = {"subject": "Hi", "from_name": "Acme", "from_email": "news@acme.test", "body_html": body_html}
    return CampaignContent(**{**fields, **overrides})


def html(body_html: str, recipient: Recipient | None = None) -> str:
    recipient = recipient or Recipient(subscriber_id="1", email="jane@example.com", first_name="Jane")
    return render_preview(content(body_html), recipient, URL).html


class _Elements(HTMLParser):
    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    return _Elements(markup).elements


def hrefs(markup: str) -> list[str | None]:
    return [attrs.get("href") for tag, attrs in elements(markup) if tag == "a" and attrs.get("href") != URL]


@pytest.mark.parametrize(
    "body",
    [
        '{{ "<script>alert(1)</script>" | safe }}',
        '<p>{{ subscriber.first_name | safe }}</p>',
        "{{ 'x' | urlize }}",
        "{{ {'onclick': 'x'} | xmlattr }}",
        "{{ subscriber | tojson }}",
        "{% autoescape false %}{{ subscriber.first_name }}{% endautoescape %}",
    ],
)
def test_markup_producing_filters_and_autoescape_blocks_are_refused(body):
    with pytest.raises(TemplateRejected, match="^body_html: line 1: .*not allowed"):
        validate_campaign(content(body))
    with pytest.raises(RenderError, match="not allowed"):
        compile_campaign(content(body))


@pytest.mark.parametrize(
    "body",
    [
        "<a href=\"{{ 'javascript:alert(1)' }}\">x</a>",
        "<a href=\"java{{ 'script:alert(1)' }}\">x</a>",
        "<a href=\"{{ 'JavaScript:alert(1)' }}\">x</a>",
        "<a href=\"{{ '  java\\tscr\\nipt:alert(1)' }}\">x</a>",
        "<a href=\"{{ '\\x01javascript:alert(1)' }}\">x</a>",
        "<a href=\"{{ 'data:text/html;base64,PHNjcmlwdD4=' }}\">x</a>",
        "<a href=\"{{ 'vbscript:msgbox(1)' }}\">x</a>",
        "<a href=\"{{ 'javascript' }}{{ ':alert(1)' }}\">x</a>",
        "<a href=\"{{ 'javascript' }}&#58;alert(1)\">x</a>",
        "<a href=\"{{ 'java' }}&#x73;cript:alert(1)\">x</a>",
    ],
)
def test_a_merge_field_cannot_make_a_dangerous_link(body):
    rendered = html(body)
    # "#", or no href at all when the sanitiser already dropped it (an entity right after a field).
    assert hrefs(rendered) in (["#"], [None])
    assert "alert" not in rendered and "script:" not in rendered.lower()


def test_a_subscriber_attribute_cannot_make_a_dangerous_link_or_image():
    recipient = Recipient(
        subscriber_id="1",
        email="jane@example.com",
        attributes={"site": "javascript:alert(document.cookie)", "avatar": "data:image/svg+xml,<svg onload=alert(1)>"},
    )
    rendered = html(
        '<a href="{{ subscriber.attributes.site }}">site</a><img src="{{ subscriber.attributes.avatar }}" alt="a">',
        recipient,
    )
    assert hrefs(rendered) == ["#"]
    assert [attrs["src"] for tag, attrs in elements(rendered) if tag == "img"] == ["#"]
    assert "alert" not in rendered


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('<a href="https://shop.example/p/{{ subscriber.id }}?a=1&amp;b=2">x</a>', "https://shop.example/p/1?a=1&b=2"),
        ('<a href="{{ subscriber.attributes.site }}">x</a>', "http://jane.example/a?b=c&d"),
        ('<a href="mailto:{{ subscriber.email }}">x</a>', "mailto:jane@example.com"),
        ('<a href="tel:{{ subscriber.attributes.phone }}">x</a>', "tel:+1 555"),
        ('<a href="#{{ subscriber.id }}">x</a>', "#1"),
        ('<a href="/offers/{{ subscriber.id }}">x</a>', "/offers/1"),
        ('<a href="offers/{{ subscriber.id }}?at=12:30">x</a>', "offers/1?at=12:30"),
    ],
)
def test_ordinary_personalised_links_are_kept(template, expected):
    recipient = Recipient(
        subscriber_id="1",
        email="jane@example.com",
        attributes={"site": "http://jane.example/a?b=c&d", "phone": "+1 555"},
    )
    assert hrefs(html(template, recipient)) == [expected]


def test_merge_values_in_links_are_still_escaped():
    recipient = Recipient(subscriber_id="1", email="jane@example.com", attributes={"q": '"><script>alert(1)</script>'})
    rendered = html('<a href="https://e.example/?q={{ subscriber.attributes.q }}">x</a>', recipient)
    assert hrefs(rendered) == ['https://e.example/?q="><script>alert(1)</script>']
    assert "<script" not in rendered


def test_captured_markup_cannot_break_out_of_an_attribute():
    body = '{% set x %}" onmouseover="alert(1){% endset %}<b title="{{ x }}">hi</b>'
    rendered = html(body)
    assert [attrs for tag, attrs in elements(rendered) if tag == "b"] == [{"title": '" onmouseover="alert(1)'}]


def test_manipulated_markup_is_escaped():
    body = (
        '{% set x %}<i title="a">i</i>{% endset %}'
        "{{ x | replace('title', 'onclick') }}|{{ x[0:20] }}|{{ x[:] }}|{{ x.upper() }}|{{ x | reverse }}|"
        "{{ x.split(' ') | first }}|{{ x | list | join }}|{{ x }}"
    )
    rendered = html(body)
    assert [tag for tag, _ in elements(rendered)] == ["i", "p", "a"]  # only the untouched {{ x }}, and the footer
    assert "&lt;i onclick=" in rendered


def test_template_statements_inside_attributes_are_refused():
    # A statement in an attribute could splice attribute text into markup the sanitiser never saw.
    body = '{% set x %}<a title="{% endset %}{{ x }}" onclick="alert(1)">'
    with pytest.raises(TemplateRejected, match="not allowed inside the HTML attribute 'title'"):
        validate_campaign(content(body))
    with pytest.raises(TemplateRejected) as error:
        validate_campaign(content('<p>x</p>\n<a class="{% if subscriber.id %}vip{% endif %}">x</a>'))
    assert error.value.line == 2
    # The expression form works.
    rendered = html("<a class=\"{{ 'vip' if subscriber.id else '' }}\">x</a>")
    assert '<a class="vip">x</a>' in rendered


def test_unsafe_html_in_the_template_is_still_removed_when_sending():
    # A body that bypassed the campaign service's sanitising is cleaned again at compile time.
    rendered = html('<p onclick="x()">Hi {{ subscriber.first_name }}</p><script>alert(1)</script><a href="javascript:x()">y</a>')
    assert rendered.startswith("<p>Hi Jane</p><a>y</a>")


def test_the_unsubscribe_footer_and_links_work():
    rendered = html('<p>Bye</p><a href="{{ unsubscribe_url }}">leave</a>')
    assert rendered == f'<p>Bye</p><a href="{URL}">leave</a>'
    rendered = html("<p>Bye</p>")
    assert rendered.endswith(f'<a href="{URL}">Unsubscribe</a></p>')


def test_safe_url_value():
    assert safe_url_value("https://a.example/x?y=1&amp;z") == "https://a.example/x?y=1&amp;z"
    assert safe_url_value("&#106;avascript:alert(1)") == "#"
    assert safe_url_value("java&#x0A;script:alert(1)") == "#"
    assert safe_url_value("javascript&colon;alert(1)") == "#"
    assert safe_url_value("") == ""
    assert safe_url_value("?a=b:c") == "?a=b:c"


def test_preview_is_byte_for_byte_what_is_sent():
    body = (
        '<p>Hi {{ subscriber.first_name | default("there") }} &amp; welcome</p>'
        '<a href="https://shop.example/{{ subscriber.attributes.slug }}">Shop</a>'
        "{% for tag in subscriber.attributes.tags %}<span>{{ tag | upper }}</span>{% endfor %}"
    )
    campaign = content(body, subject="Hello {{ subscriber.first_name }}")
    recipient = Recipient(
        subscriber_id="9", email="zoe@example.com", first_name="Zoë", attributes={"slug": "a b", "tags": ["x", "<y>"]}
    )
    preview = render_preview(campaign, recipient, URL)
    prepared = PreparedCampaign.prepare(campaign)
    assert prepared.render(recipient, URL) == preview
    message = email.message_from_bytes(prepared.build("c1", recipient, URL, DATE), policy=policy.default)
    assert message["Subject"] == preview.subject
    text, html_part = (part.get_content() for part in message.iter_parts())
    assert (text, html_part) == (_crlf(preview.text), _crlf(preview.html))
    # On the wire: the two parts are exactly the preview's text and HTML, transfer-encoded.
    raw = prepared.build("c1", recipient, URL, DATE)
    boundary = prepared.skeleton.boundary.encode()
    assert encoded_part(preview.text, boundary)[1] in raw and encoded_part(preview.html, boundary)[1] in raw
    assert "<span>&lt;Y&gt;</span>" in preview.html


def _crlf(text: str) -> str:
    return "\r\n".join(text.splitlines()) + "\r\n"


def test_validate_campaign_accepts_an_ordinary_campaign():
    validate_campaign(
        content(
            '<table><tr><td><a href="{{ unsubscribe_url }}">u</a> {{ subscriber.first_name | default("x") }}</td></tr></table>',
            subject="Hi {{ subscriber.first_name }}",
            body_text="Hi {{ subscriber.last_name }}\n{{ unsubscribe_url }}",
        )
    )
