"""Personalisation: campaign templates compiled once, rendered per recipient in the bounded sandbox.

Merge fields (API.md): `{{ subscriber.first_name }}`, `{{ subscriber.last_name }}`,
`{{ subscriber.email }}`, `{{ subscriber.attributes.<key> }}`, `| default("...")`, `{{ unsubscribe_url }}`.
A missing field renders empty (or its default), however deep the lookup; the HTML body escapes merge
values, the subject and text body do not; anything reaching for Python internals is refused.

The HTML body is compiled from `prepare_html_template(body_html)`: sanitised, with its URL attributes
checked once rendered (see sanitize.py). Send, preview and validation all go through
`compile_campaign` + `CampaignTemplates.render`, so they agree byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template, TemplateError, meta

from mailstify_contracts import CampaignContent, Recipient

from .environment import (
    DEFAULT_LIMITS,
    BoundedEnvironment,
    MergeFields,
    RenderError,
    RenderLimits,
    environment,
    render_budget,
    render_template,
    template_line,
)
from .sanitize import UnsafeTemplate, prepare_html_template
from .text import html_to_text

UNSUBSCRIBE_VARIABLE = "unsubscribe_url"
HTML_FOOTER = '<p style="font-size:12px;color:#666666"><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
TEXT_FOOTER = "\n\n--\nUnsubscribe: {{ unsubscribe_url }}\n"


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
    limits: RenderLimits = DEFAULT_LIMITS
    # The field the text template came from: body_text, or body_html when it was derived from it.
    text_field: str = field(default="body_text")

    def render(self, recipient: Recipient, unsubscribe_url: str) -> RenderedContent:
        """Raises RenderError (with .field and .line) when a template fails or exceeds a bound."""
        context = merge_context(recipient, unsubscribe_url)
        with render_budget(self.limits):
            return RenderedContent(
                subject=header_text(render_template(self.subject, context, "subject")),
                text=render_template(self.text, context, self.text_field),
                html=render_template(self.html, context, "body_html"),
            )


def compile_campaign(content: CampaignContent, limits: RenderLimits = DEFAULT_LIMITS) -> CampaignTemplates:
    """Compile the subject and both bodies once per campaign. Adds the unsubscribe footer to a body
    that lacks `{{ unsubscribe_url }}`; derives the text body from the HTML when there is none.
    Raises RenderError (with .field and .line)."""
    html_env, plain_env = environment(True, limits), environment(False, limits)
    # The body as written is compiled first, so that its errors carry the author's line numbers.
    compile_template(html_env, content.body_html, "body_html")
    try:
        html_source = prepare_html_template(content.body_html)
    except UnsafeTemplate as exc:
        raise _compile_error("body_html", exc.line, exc.message) from exc
    html_source = _with_footer(html_env, html_source, HTML_FOOTER, _insert_html_footer, "body_html")
    if content.body_text:
        text_field, text_source = "body_text", content.body_text
    else:
        text_field, text_source = "body_html", html_to_text(content.body_html)
    text_source = _with_footer(
        plain_env, text_source, TEXT_FOOTER, lambda body, footer: body.rstrip("\n") + footer, text_field
    )
    return CampaignTemplates(
        subject=compile_template(plain_env, content.subject, "subject"),
        text=compile_template(plain_env, text_source, text_field),
        html=compile_template(html_env, html_source, "body_html"),
        limits=limits,
        text_field=text_field,
    )


def compile_template(env: BoundedEnvironment, source: str, field_name: str) -> Template:
    """One template, compiled (and checked: syntax, allowed filters, nesting, ...) by `env`."""
    try:
        return env.from_string(source)
    except TemplateError as exc:
        raise _compile_error(field_name, template_line(exc), exc.message or str(exc)) from exc
    except RecursionError:
        raise _compile_error(field_name, None, "the template is nested too deeply") from None


def _compile_error(field_name: str, line: int | None, reason: str) -> RenderError:
    where = f"{field_name}: line {line}: " if line else f"{field_name}: "
    return RenderError(f"invalid campaign template: {where}{reason}", reason=reason, field=field_name, line=line)


def header_text(value: str) -> str:
    """A rendered value made safe for a header: no line breaks (header injection), trimmed."""
    return " ".join(value.split()) if ("\n" in value or "\r" in value) else value.strip()


def _with_footer(
    env: BoundedEnvironment, source: str, footer: str, insert: Callable[[str, str], str], field_name: str
) -> str:
    try:
        variables = meta.find_undeclared_variables(env.parse(source))
    except TemplateError as exc:
        raise _compile_error(field_name, template_line(exc), exc.message or str(exc)) from exc
    if UNSUBSCRIBE_VARIABLE in variables:
        return source
    return insert(source, footer)


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def _insert_html_footer(html: str, footer: str) -> str:
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return html + footer
    at = ends[-1].start()
    return html[:at] + footer + html[at:]
