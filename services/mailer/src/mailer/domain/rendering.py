"""Personalisation: campaign templates compiled once, rendered per recipient in a Jinja2 sandbox.

Merge fields (API.md): `{{ subscriber.first_name }}`, `{{ subscriber.last_name }}`,
`{{ subscriber.email }}`, `{{ subscriber.attributes.<key> }}`, `| default("...")`, `{{ unsubscribe_url }}`.
A missing field renders empty (or its default), however deep the lookup; the HTML body escapes merge
values, the subject and text body do not; anything reaching for Python internals is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from mailstify_contracts import CampaignContent, Recipient

UNSUBSCRIBE_VARIABLE = "unsubscribe_url"
HTML_FOOTER = '<p style="font-size:12px;color:#666666"><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
TEXT_FOOTER = "\n\n--\nUnsubscribe: {{ unsubscribe_url }}\n"


class RenderError(Exception):
    """The campaign's templates cannot be compiled or rendered: no message can be built from them."""


# Templates are written by account users: one must not be able to make a mailer build a gigabyte
# string (`"x" * 10**9`) or a huge number (`10 ** 10**8`). The sandbox already caps `range`.
MAX_REPEATED_LENGTH = 100_000
MAX_EXPONENT = 100


class _StrictSandbox(ImmutableSandboxedEnvironment):
    """Refuses unsafe attribute access outright (the stock sandbox renders an empty value and raises
    only when the value is used), so a template probing `__class__` & co. fails loudly; and bounds
    the operators that can blow up memory or CPU."""

    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__} is not allowed")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is too large")
            return left**right
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
                if len(sequence) * count > MAX_REPEATED_LENGTH:
                    raise SecurityError("repeated value would be too long")
        return left * right


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _environment(autoescape: bool) -> _StrictSandbox:
    return _StrictSandbox(
        autoescape=autoescape,
        # `subscriber.attributes.missing.deeper | default("x")` renders "x" instead of raising.
        undefined=ChainableUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
    )


_HTML = _environment(autoescape=True)
_PLAIN = _environment(autoescape=False)


class MergeFields:
    """A read-only bag of merge values. Attribute and item access both give the value, so an
    attribute named like a dict method (`items`, `keys`) still means the subscriber's value."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]):
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("merge fields are read-only")

    def __str__(self) -> str:
        return ""


def _merge_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MergeFields({str(k): _merge_value(v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return [_merge_value(v) for v in value]
    return value


def merge_context(recipient: Recipient, unsubscribe_url: str) -> dict[str, Any]:
    # None fields are left out rather than set to None, so that `| default(...)` applies to them.
    fields = {
        "id": recipient.subscriber_id,
        "email": recipient.email,
        "first_name": recipient.first_name,
        "last_name": recipient.last_name,
        "attributes": recipient.attributes,
    }
    return {"subscriber": _merge_value(fields), UNSUBSCRIBE_VARIABLE: unsubscribe_url}


@dataclass(frozen=True)
class RenderedContent:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class CampaignTemplates:
    subject: Template
    text: Template
    html: Template

    def render(self, recipient: Recipient, unsubscribe_url: str) -> RenderedContent:
        context = merge_context(recipient, unsubscribe_url)
        try:
            return RenderedContent(
                subject=header_text(self.subject.render(context)),
                text=self.text.render(context),
                html=self.html.render(context),
            )
        except (TemplateError, ArithmeticError, TypeError, ValueError) as exc:
            raise RenderError(f"cannot render the campaign for this recipient: {exc}") from exc


def compile_campaign(content: CampaignContent) -> CampaignTemplates:
    """Compile the subject and both bodies once per campaign. Adds the unsubscribe footer to a body
    that lacks `{{ unsubscribe_url }}`; derives the text body from the HTML when there is none."""
    try:
        html_source = _with_footer(_HTML, content.body_html, HTML_FOOTER, _insert_html_footer)
        text_source = content.body_text if content.body_text else html_to_text(content.body_html)
        text_source = _with_footer(_PLAIN, text_source, TEXT_FOOTER, lambda body, footer: body.rstrip("\n") + footer)
        return CampaignTemplates(
            subject=_PLAIN.from_string(content.subject),
            text=_PLAIN.from_string(text_source),
            html=_HTML.from_string(html_source),
        )
    except TemplateError as exc:
        raise RenderError(f"invalid campaign template: {exc}") from exc


def header_text(value: str) -> str:
    """A rendered value made safe for a header: no line breaks (header injection), trimmed."""
    return " ".join(value.split()) if ("\n" in value or "\r" in value) else value.strip()


def _with_footer(env: _StrictSandbox, source: str, footer: str, insert: Any) -> str:
    if UNSUBSCRIBE_VARIABLE in meta.find_undeclared_variables(env.parse(source)):
        return source
    return insert(source, footer)


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def _insert_html_footer(html: str, footer: str) -> str:
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return html + footer
    at = ends[-1].start()
    return html[:at] + footer + html[at:]


# --- HTML → text ---------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "address article aside blockquote div dl dt dd fieldset figure footer form h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tbody thead tfoot tr ul".split()
)
_SKIPPED_TAGS = frozenset({"head", "script", "style", "title", "template"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._skip_depth = 0
        self._links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth += 1
        elif tag == "br":
            self._break()
        elif tag in _BLOCK_TAGS:
            self._break()
            if tag == "li":
                self._line.append("- ")
        elif tag == "a":
            self._links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self._break()
            if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote"):
                self.lines.append("")
        elif tag == "a" and self._links:
            href = self._links.pop()
            if href and not href.startswith("#") and href not in "".join(self._line):
                self._line.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._line.append(data)

    def _break(self) -> None:
        line = " ".join("".join(self._line).split())
        if line:
            self.lines.append(line)
        self._line = []

    def text(self) -> str:
        self._break()
        text = "\n".join(self.lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def html_to_text(html: str) -> str:
    """A plain-text rendition of an HTML body (or template): tags dropped, blocks on their own lines,
    link targets kept in parentheses. Simple on purpose: it is the fallback part of the message."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return extractor.text()
