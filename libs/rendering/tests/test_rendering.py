import pytest

from mailstify_contracts import Recipient
from mailstify_rendering import RenderError, compile_campaign, html_to_text

from .conftest import URL, content


def render(recipient: Recipient | None = None, **overrides):
    recipient = recipient or Recipient(subscriber_id="1", email="jane@example.com", first_name="Jane")
    return compile_campaign(content(**overrides)).render(recipient, URL)


def test_merge_fields_in_subject_and_both_bodies():
    rendered = render(
        Recipient(subscriber_id="7", email="jane@example.com", first_name="Jane", last_name="Doe", attributes={"plan": "pro"}),
        subject="{{ subscriber.first_name }} {{ subscriber.last_name }}",
        body_html="<p>{{ subscriber.email }} on {{ subscriber.attributes.plan }}</p>",
        body_text="{{ subscriber.attributes.plan }} for {{ subscriber.email }}",
    )
    assert rendered.subject == "Jane Doe"
    assert "<p>jane@example.com on pro</p>" in rendered.html
    assert rendered.text.startswith("pro for jane@example.com")


def test_default_applies_to_missing_and_null_fields():
    recipient = Recipient(subscriber_id="1", email="x@example.com", first_name=None, attributes={"city": None})
    rendered = render(
        recipient,
        subject='Hi {{ subscriber.first_name | default("there") }}',
        body_text='{{ subscriber.attributes.city | default("somewhere") }} / '
        '{{ subscriber.attributes.missing | default("n/a") }} / {{ subscriber.attributes.a.b.c | default("deep") }}',
    )
    assert rendered.subject == "Hi there"
    assert rendered.text.startswith("somewhere / n/a / deep")


def test_missing_fields_render_empty_without_default():
    recipient = Recipient(subscriber_id="1", email="x@example.com")
    rendered = render(recipient, subject="[{{ subscriber.first_name }}][{{ subscriber.attributes.nope.deeper }}]")
    assert rendered.subject == "[][]"


def test_html_escapes_merge_values_but_text_and_subject_do_not():
    recipient = Recipient(subscriber_id="1", email="x@example.com", first_name="<b>Tom & Jerry</b>")
    rendered = render(recipient, subject="{{ subscriber.first_name }}", body_text="{{ subscriber.first_name }}")
    assert "<p>Hi &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>" in rendered.html
    assert rendered.subject == "<b>Tom & Jerry</b>"
    assert rendered.text.startswith("<b>Tom & Jerry</b>")


def test_attribute_named_like_a_dict_method_gives_the_value():
    recipient = Recipient(subscriber_id="1", email="x@example.com", attributes={"items": "3 books", "keys": "k"})
    rendered = render(recipient, subject="{{ subscriber.attributes.items }} {{ subscriber.attributes['keys'] }}")
    assert rendered.subject == "3 books k"


def test_subject_cannot_inject_headers():
    recipient = Recipient(subscriber_id="1", email="x@example.com", first_name="Jane\r\nBcc: victim@example.com")
    assert render(recipient).subject == "Hello Jane Bcc: victim@example.com"


@pytest.mark.parametrize(
    "template",
    [
        "{{ subscriber.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ subscriber._values }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    ],
)
def test_sandbox_refuses_attribute_access_tricks(template):
    with pytest.raises(RenderError, match="not allowed|unsafe|undefined"):
        render(body_text=template)


@pytest.mark.parametrize("template", ["{{ 'x' * 1000000000 }}", "{{ [1] * 10**7 }}", "{{ 10 ** 100000000 }}"])
def test_sandbox_refuses_resource_exhaustion(template):
    with pytest.raises(RenderError, match="too"):
        render(body_text=template)


def test_sandbox_still_allows_small_arithmetic_and_repetition():
    assert render(subject="{{ '-' * 3 }}{{ 2 ** 3 }}{{ 3 * 4 }}").subject == "---812"


def test_sandbox_refuses_mutating_values():
    recipient = Recipient(subscriber_id="1", email="x@example.com", attributes={"tags": ["a"]})
    with pytest.raises(RenderError):
        render(recipient, body_text="{{ subscriber.attributes.tags.append('b') }}")


def test_template_syntax_error_is_a_render_error_at_compile_time():
    with pytest.raises(RenderError, match="invalid campaign template"):
        compile_campaign(content(body_html="<p>{{ subscriber.first_name </p>"))


def test_unsubscribe_url_is_rendered_and_footer_added_when_missing():
    rendered = render(body_html="<html><body><p>Hi</p></body></html>", body_text="Hi")
    # The body is compiled as the sanitiser leaves it (as the campaign service stores it): no
    # document wrapper, so the footer follows the content.
    assert rendered.html == f'<p>Hi</p><p style="font-size:12px;color:#666666"><a href="{URL}">Unsubscribe</a></p>'
    assert f'<a href="{URL}">Unsubscribe</a>' in rendered.html
    assert rendered.text.rstrip().endswith(f"Unsubscribe: {URL}")


def test_no_footer_when_the_body_has_the_unsubscribe_link():
    rendered = render(body_html='<a href="{{ unsubscribe_url }}">Leave</a>', body_text="Leave: {{ unsubscribe_url }}")
    assert rendered.html.count(URL) == 1
    assert rendered.text.count(URL) == 1


def test_text_is_derived_from_html_when_missing():
    rendered = render(
        body_text=None,
        body_html=(
            "<html><head><style>p{color:red}</style><title>T</title></head><body>"
            "<h1>Hello {{ subscriber.first_name }}</h1><p>Deals &amp; more:<br>today</p>"
            '<ul><li>one</li><li>two</li></ul><p><a href="https://acme.test/x">Shop</a></p></body></html>'
        ),
    )
    assert rendered.text.startswith("Hello Jane\n\nDeals & more:\ntoday\n\n- one\n- two\n\nShop (https://acme.test/x)")
    assert "color" not in rendered.text and "<" not in rendered.text
    assert f"Unsubscribe: {URL}" in rendered.text


def test_html_to_text_keeps_merge_syntax():
    assert html_to_text('<p>Hi {{ subscriber.first_name | default("you") }}</p>') == (
        'Hi {{ subscriber.first_name | default("you") }}\n'
    )


def test_subscriber_id_is_available():
    assert render(subject="#{{ subscriber.id }}").subject == "#1"
