"""What HTML a campaign may carry, and how merge fields inside it are kept from re-introducing what
the sanitiser removed.

`sanitize_html` cleans a body with nh3 while merge fields are parked byte for byte (the campaign
service stores its result). `prepare_html_template` is what the send/preview/validation compile:
the same clean, then every attribute that holds template code is rewritten so that

* an expression in an attribute value is escaped for that attribute even when it yields Markup
  (`{{ (expr)|mailstify_attr }}`);
* the whole value of a URL attribute (href, src, ...) holding template code is checked once rendered
  (`{% filter mailstify_url %}...{% endfilter %}`): unless it is http(s), mailto, tel, cid, a fragment
  or a relative URL it becomes `#`;
* a statement (`{% if %}`, `{% for %}`, ...) inside a tag or attribute is refused: it could stitch
  attribute text into markup the sanitiser never saw.

Pure functions (nh3 does no I/O).
"""

from __future__ import annotations

import html
import re
import secrets

import nh3

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
# Every attribute a browser or mail client may treat as a URL (a superset of what ALLOWED_ATTRIBUTES
# lets through, so that widening the allow-list cannot silently skip the check).
URL_ATTRIBUTES = frozenset(
    "href src cite action formaction background longdesc poster srcset data codebase lowsrc dynsrc ping "
    "manifest usemap icon profile classid archive xlink:href".split()
)

# Jinja2 tags: expressions, statements and comments. Non-greedy, across lines.
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_EXPRESSION = re.compile(r"\{\{([-+]?)(.*?)([-+]?)\}\}", re.DOTALL)
# nh3 (html5ever) serialises every attribute as name="value" with `"` escaped, and `<` in text as
# &lt;: a tag in its output is exactly this.
_TAG = re.compile(r"<[A-Za-z][^\s/>]*(?:\s+[^\s\"'=/>]+(?:=\"[^\"]*\")?)*\s*/?>")
_ATTRIBUTE = re.compile(r"([^\s\"'=/>]+)=\"([^\"]*)\"")
_URL_NOISE = re.compile(r"[\s\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]+")
_SCHEME = re.compile(r"([^/?#]*):")


class UnsafeTemplate(ValueError):
    """The HTML body uses template code where it cannot be made safe."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message = message
        self.line = line


def _clean(html_text: str) -> str:
    return nh3.clean(
        html_text,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )


class _Parked:
    """Template tags swapped for inert placeholders (and back)."""

    def __init__(self, source: str):
        self.nonce = secrets.token_hex(6)
        self.fields: list[str] = []
        self.lines: list[int] = []
        self.source = source
        self.text = _TEMPLATE_TAG.sub(self._park, source)
        self.token = re.compile(rf"mstfy{self.nonce}f(\d+)x")

    def _park(self, match: re.Match[str]) -> str:
        self.fields.append(match.group(0))
        self.lines.append(self.source.count("\n", 0, match.start()) + 1)
        return f"mstfy{self.nonce}f{len(self.fields) - 1}x"

    def restore(self, text: str, replace: dict[int, str] | None = None) -> str:
        replace = replace or {}
        return self.token.sub(lambda m: replace.get(int(m.group(1)), self.fields[int(m.group(1))]), text)


def sanitize_html(body_html: str) -> str:
    """Strip anything unsafe while keeping merge fields byte for byte.

    Merge fields are swapped for inert placeholders while the HTML is cleaned: otherwise a field in an
    attribute (`href="{{ unsubscribe_url }}"`, or one with a quoted default) would come back
    entity-escaped and no longer parse as a template."""
    parked = _Parked(body_html)
    return parked.restore(_clean(parked.text))


def prepare_html_template(body_html: str) -> str:
    """The HTML body as it is compiled for sending: sanitised, and its attributes that hold template
    code rewritten (see the module docstring). Raises UnsafeTemplate."""
    parked = _Parked(body_html)
    cleaned = _clean(parked.text)

    def rewrite_tag(tag: re.Match[str]) -> str:
        text = tag.group(0)
        if not parked.token.search(text):
            return text
        return _ATTRIBUTE.sub(rewrite_attribute, text)

    def rewrite_attribute(attribute: re.Match[str]) -> str:
        name, value = attribute.group(1), attribute.group(2)
        indexes = [int(m.group(1)) for m in parked.token.finditer(value)]
        if not indexes:
            return attribute.group(0)
        replace: dict[int, str] = {}
        for index in indexes:
            field = parked.fields[index]
            if field.startswith("{%"):
                raise UnsafeTemplate(
                    f"template statements ({field[:40]}) are not allowed inside the HTML attribute {name!r}; "
                    "use an expression such as {{ 'a' if condition else 'b' }}",
                    parked.lines[index],
                )
            if field.startswith("{{"):
                replace[index] = _attribute_expression(field)
        value = parked.restore(value, replace)
        if name.lower() in URL_ATTRIBUTES:
            value = "{% filter mailstify_url %}" + value + "{% endfilter %}"
        return f'{name}="{value}"'

    return parked.restore(_TAG.sub(rewrite_tag, cleaned))


def _attribute_expression(field: str) -> str:
    match = _EXPRESSION.fullmatch(field)
    if match is None or not match.group(2).strip():
        return field
    lead, inner, trail = match.groups()
    return "{{" + lead + " (" + inner + ")|mailstify_attr " + trail + "}}"


def safe_url_value(rendered: str) -> str:
    """A rendered URL attribute value (HTML-escaped) if it is harmless, else "#".

    Judged as a browser would read it: entities decoded, whitespace and control characters dropped,
    case-folded. Anything with a scheme other than http, https, mailto, tel or cid (javascript:,
    data:, vbscript:, ...) is refused; fragments and relative URLs pass."""
    url = _URL_NOISE.sub("", html.unescape(rendered)).casefold()
    scheme = _SCHEME.match(url)
    if scheme is not None and scheme.group(1) not in URL_SCHEMES:
        return "#"
    return rendered


def body_is_empty(body_html: str) -> bool:
    """True when the body shows nothing: no text once tags are stripped, and no image."""
    if re.search(r"<img\b", body_html, re.IGNORECASE):
        return False
    text = html.unescape(nh3.clean(body_html, tags=set()))
    return not text.strip()
