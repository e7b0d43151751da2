"""Content rules: sanitising keeps email HTML and merge fields, template syntax errors are located,
an empty body is recognised."""

from __future__ import annotations

import pytest

from mailstify_rendering import TemplateRejected, body_is_empty, check_template, sanitize_html


def test_sanitising_keeps_ordinary_email_html() -> None:
    html = (
        '<table width="600" cellpadding="0" cellspacing="0" style="border:0">'
        '<tbody><tr><td align="center" valign="top" style="color:#333;font-size:16px">'
        '<a href="https://example.com/offer" target="_blank">Offer</a>'
        '<img src="https://example.com/logo.png" alt="Logo" width="120">'
        "</td></tr></tbody></table>"
    )
    assert sanitize_html(html) == html


def test_sanitising_strips_scripts_handlers_and_javascript_links() -> None:
    cleaned = sanitize_html(
        '<p onclick="steal()">Hi</p><script>alert(1)</script><a href="javascript:alert(1)">x</a>'
        "<style>p{}</style><iframe src=https://evil.example></iframe>"
    )
    assert cleaned == "<p>Hi</p><a>x</a>"


def test_merge_fields_survive_sanitising_byte_for_byte() -> None:
    html = (
        '<p>Hi {{ subscriber.first_name | default("friend") }},</p>'
        '<a href="{{ unsubscribe_url }}" title=\'{{ subscriber.attributes.plan | default("free") }}\'>unsubscribe</a>'
        "{% if subscriber.last_name %}<b>{{ subscriber.last_name }}</b>{% endif %}"
    )
    cleaned = sanitize_html(html)
    for field in (
        '{{ subscriber.first_name | default("friend") }}',
        'href="{{ unsubscribe_url }}"',
        '{{ subscriber.attributes.plan | default("free") }}',
        "{% if subscriber.last_name %}",
        "{{ subscriber.last_name }}",
        "{% endif %}",
    ):
        assert field in cleaned


def test_a_merge_field_inside_a_script_goes_with_the_script() -> None:
    assert sanitize_html("<p>a</p><script>{{ subscriber.email }}</script>") == "<p>a</p>"


def test_template_syntax_error_names_the_field_and_line() -> None:
    with pytest.raises(TemplateRejected) as error:
        check_template("body_html", "<p>Hello</p>\n<p>{{ subscriber.first_name }</p>", html=True)
    assert (error.value.field, error.value.line) == ("body_html", 2)
    assert str(error.value).startswith("body_html: line 2: ")


def test_valid_templates_and_absent_fields_pass() -> None:
    check_template("subject", 'Hi {{ subscriber.first_name | default("there") }}')
    check_template("body_text", None)


@pytest.mark.parametrize("body", ["", "   ", "<p> </p>", "<p>&nbsp;</p><br>\n<div>\t</div>", "<script>x</script>"])
def test_bodies_that_show_nothing_are_empty(body: str) -> None:
    assert body_is_empty(body)


@pytest.mark.parametrize(
    "body", ["hi", "<p>x</p>", "<p>{{ subscriber.first_name }}</p>", '<img src="https://e.x/a.png">']
)
def test_bodies_with_text_or_an_image_are_not_empty(body: str) -> None:
    assert not body_is_empty(body)
