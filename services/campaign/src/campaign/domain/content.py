"""Campaign content rules: what HTML a campaign may carry, whether its merge fields parse, and
whether its body says anything at all.

Pure functions (nh3 and Jinja2 do no I/O), so they are tested without a database.
"""

from __future__ import annotations

import html
import re
import secrets

import nh3
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from mailstify_servicekit.errors import InvalidInput

# Ordinary email HTML: layout tables, inline styles, links and images. <style> blocks and scripts go
# (their content too); event-handler attributes are never allowed.
ALLOWED_TAGS = nh3.ALLOWED_TAGS | {"tfoot", "font"}
_LAYOUT_ATTRIBUTES = {"style", "class", "id", "title", "align", "valign", "width", "height", "bgcolor", "dir", "lang"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": _LAYOUT_ATTRIBUTES,
    "a": {"href", "hreflang", "target", "name"},
    "img": {"src", "alt", "width", "height", "align", "border"},
    "table": nh3.ALLOWED_ATTRIBUTES["table"] | {"border", "cellpadding", "cellspacing", "role"},
    "td": nh3.ALLOWED_ATTRIBUTES["td"] | {"nowrap"},
    "th": nh3.ALLOWED_ATTRIBUTES["th"] | {"nowrap"},
    "font": {"color", "face", "size"},
}
URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}

# Jinja2 tags: expressions, statements and comments. Non-greedy, across lines.
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)

_environment = SandboxedEnvironment()


def sanitize_html(body_html: str) -> str:
    """Strip anything unsafe while keeping merge fields byte for byte.

    Merge fields are swapped for inert placeholders while the HTML is cleaned: otherwise a field in an
    attribute (`href="{{ unsubscribe_url }}"`, or one with a quoted default) would come back
    entity-escaped and no longer parse as a template."""
    nonce = secrets.token_hex(6)
    fields: list[str] = []

    def park(match: re.Match[str]) -> str:
        fields.append(match.group(0))
        return f"mstfy{nonce}f{len(fields) - 1}x"

    cleaned = nh3.clean(
        _TEMPLATE_TAG.sub(park, body_html),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )
    return re.sub(rf"mstfy{nonce}f(\d+)x", lambda m: fields[int(m.group(1))], cleaned)


def check_template(field: str, source: str | None) -> None:
    """Raise InvalidInput naming the field and line when the merge-field syntax does not parse."""
    if not source:
        return
    try:
        _environment.parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"{field}: merge-field syntax error on line {exc.lineno}: {exc.message}") from exc


def body_is_empty(body_html: str) -> bool:
    """True when the body shows nothing: no text once tags are stripped, and no image."""
    if re.search(r"<img\b", body_html, re.IGNORECASE):
        return False
    text = html.unescape(nh3.clean(body_html, tags=set()))
    return not text.strip()
