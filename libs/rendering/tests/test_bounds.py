"""Defect B2: template work is bounded (iterations, time, output, nesting, range, widths, filters);
exceeding a bound is a RenderError / TemplateRejected naming it, never a hang."""

from __future__ import annotations

import time

import pytest

from mailstify_contracts import Recipient
from mailstify_rendering import (
    RenderError,
    RenderLimits,
    TemplateRejected,
    check_template,
    compile_campaign,
    validate_campaign,
)

from mailstify_rendering.environment import LimitExceeded, render_budget

from .conftest import URL, content

JANE = Recipient(subscriber_id="1", email="jane@example.com", first_name="Jane")
NESTED_RANGES = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


def render_text(template: str, limits: RenderLimits = RenderLimits(), recipient: Recipient = JANE) -> str:
    return compile_campaign(content(body_text=template), limits).render(recipient, URL).text


def refused(template: str, limits: RenderLimits = RenderLimits()) -> RenderError:
    with pytest.raises(RenderError) as error:
        render_text(template, limits)
    return error.value


def test_the_nested_range_template_fails_in_well_under_a_second():
    started = time.monotonic()
    with pytest.raises(TemplateRejected):
        validate_campaign(content(body_html=NESTED_RANGES))
    with pytest.raises(RenderError):
        compile_campaign(content(body_html=NESTED_RANGES)).render(JANE, URL)
    assert time.monotonic() - started < 0.5


def test_nested_loops_within_the_range_cap_hit_the_iteration_budget_fast():
    template = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    error = refused(template)
    assert time.monotonic() - started < 0.5
    assert error.reason == "loops may run at most 10000 iterations in one email"
    assert (error.field, error.line) == ("body_text", 1)


def test_the_iteration_budget_spans_all_loops_of_one_email():
    assert render_text("{% for i in range(6000) %}{% endfor %}done").startswith("done")
    error = refused("{% for i in range(6000) %}{% endfor %}{% for i in range(6000) %}{% endfor %}")
    assert "at most 10000 iterations" in error.reason
    # ... and the subject, text and HTML of one email share it.
    with pytest.raises(RenderError, match="10000 iterations"):
        compile_campaign(
            content(
                subject="{% for i in range(6000) %}{% endfor %}Hi",
                body_html="<p>{% for i in range(6000) %}{% endfor %}</p>",
            )
        ).render(JANE, URL)


def test_a_fresh_budget_for_every_email():
    templates = compile_campaign(content(body_text="{% for i in range(9000) %}.{% endfor %}"))
    for _ in range(3):
        assert templates.render(JANE, URL).text.startswith("." * 9000)


def test_rejection_names_field_and_line():
    body = "<p>Hello</p>\n<p>there</p>\n{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateRejected) as error:
        validate_campaign(content(body_html=body))
    assert isinstance(error.value, ValueError)
    assert (error.value.field, error.value.line) == ("body_html", 3)
    assert str(error.value) == "body_html: line 3: loops may run at most 10000 iterations in one email"


def test_macro_recursion_is_budgeted():
    template = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    started = time.monotonic()
    error = refused(template)
    assert time.monotonic() - started < 1
    assert "at most" in error.reason
    assert "templates may not recurse" in refused("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").reason


def test_the_deadline_is_checked_inside_loops():
    limits = RenderLimits(max_iterations=10**9, max_seconds=0.05, max_range=10**9)
    started = time.monotonic()
    error = refused("{% for a in range(10**6) %}{% for b in range(10**6) %}{% endfor %}{% endfor %}", limits)
    assert time.monotonic() - started < 0.5
    assert error.reason == "rendering one email may take at most 0.05 s"


def test_the_time_limit_counts_the_renders_work_not_a_pause_of_its_process():
    # A mailer descheduled on a busy machine, or paused by a profiler, mid-render: its recipient's
    # email is rendered all the same (it used to fail for good).
    limits = RenderLimits(max_seconds=0.05)
    with render_budget(limits) as budget:
        time.sleep(0.1)
        budget.check_time()
        busy_until = time.thread_time() + 0.06
        while time.thread_time() < busy_until:
            pass
        with pytest.raises(LimitExceeded, match="at most 0.05 s"):
            budget.check_time()


def test_output_size_is_bounded():
    error = refused("{% for i in range(5000) %}{{ 'x' * 1000 }}{% endfor %}")
    assert error.reason == "the email would be longer than 2000000 characters"
    # Captured output counts too, and so does a loop's literal text.
    assert "longer than" in refused("{% set x %}{% for i in range(5000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}").reason
    assert "longer than" in refused("{% for i in range(9000) %}" + "y" * 300 + "{% endfor %}").reason
    assert "longer than 100" in refused("x" * 200, RenderLimits(max_output=100)).reason


def test_eleven_levels_of_nesting_are_refused_at_compile_time():
    def nested(levels: int) -> str:
        kinds = ["{% if true %}", "{% for i in [1] %}", "{% with a = 1 %}", "{% filter upper %}"]
        ends = ["{% endif %}", "{% endfor %}", "{% endwith %}", "{% endfilter %}"]
        return "".join(kinds[i % 4] for i in range(levels)) + "x" + "".join(ends[i % 4] for i in reversed(range(levels)))

    check_template("body_text", nested(10))
    assert render_text(nested(10)).startswith("X")
    with pytest.raises(TemplateRejected) as error:
        check_template("body_text", nested(11))
    assert error.value.message == "blocks may be nested at most 10 deep"
    with pytest.raises(RenderError, match="nested at most 10 deep"):
        compile_campaign(content(body_html="<p>" + nested(11) + "</p>"))


def test_range_is_capped():
    assert render_text("{{ range(10000) | length }}").startswith("10000")
    assert refused("{{ range(10001) | length }}").reason == "range() may produce at most 10000 items"


@pytest.mark.parametrize(
    "template",
    [
        '{{ "x" | center(10**9) }}',
        '{{ "x" | center(1000000000) }}',
        '{{ "x" | indent(100000) }}',
        '{{ "a b" | wordwrap(100000) }}',
        "{{ range(10) | batch(10**6, 0) | list }}",
        "{{ range(10) | slice(10**6) | list }}",
    ],
)
def test_width_arguments_are_capped(template):
    assert "may be at most 1000" in refused(template).reason


@pytest.mark.parametrize(
    "template",
    [
        "{% set a = 'x' * 100000 %}{% set b = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}{{ b | length }}",
        "{% set a = 'x' * 100000 %}{{ (a + a + a + a + a + a + a + a + a + a + a) | length }}",
        "{{ range(10000) | join('x' * 100000) }}",
        "{{ ('a' * 100000) | replace('a', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb') }}",
        "{{ ('a' * 100000) | replace('', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb') }}",
    ],
)
def test_values_cannot_be_amplified(template):
    assert "at most 1000000 characters" in refused(template).reason


@pytest.mark.parametrize(
    "template",
    [
        "{{ '{:>999999999}'.format(1) }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ 'x'.center(999999999) }}",
        "{{ 'x'.ljust(999999999) }}",
        "{{ 'x'.zfill(999999999) }}",
        "{{ ((10 ** 100) ** 100) ** 100 }}",
        "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}",
    ],
)
def test_unbounded_string_and_number_operations_are_refused(template):
    started = time.monotonic()
    refused(template)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 'x' | nosuchfilter }}", "no filter named 'nosuchfilter'"),
        # Jinja would defer a filter inside {% if %} to render time; we do not.
        ("{% if false %}{{ 'x' | nosuchfilter }}{% endif %}", "no filter named 'nosuchfilter'"),
        ("{{ 'x' | random }}", "'random' filter is not allowed"),
        ("{{ '%s' | format(1) }}", "'format' filter is not allowed"),
        ("{{ {'a': 1} | tojson }}", "'tojson' filter is not allowed"),
        ("{{ lipsum() }}", "'lipsum' is not allowed"),
        ("{% for x in [[1]] recursive %}{{ loop(x) }}{% endfor %}", "recursive loops are not allowed"),
        ("{% include 'x' %}", "{% include %} is not allowed"),
        ("{% extends 'x' %}", "{% extends %} is not allowed"),
        ("{% import 'x' as y %}", "{% import %} is not allowed"),
        ("{% block b %}{% endblock %}", "{% block %} is not allowed"),
    ],
)
def test_only_allow_listed_features_compile(template, message):
    with pytest.raises(TemplateRejected) as error:
        check_template("body_text", template)
    assert message in error.value.message
    with pytest.raises(TemplateRejected, match="body_text: line 1: "):
        validate_campaign(content(body_text=template))


def test_ordinary_templates_still_render():
    recipient = Recipient(
        subscriber_id="7",
        email="jane@example.com",
        first_name="jane",
        attributes={"items": [{"name": "Book", "price": 12.5}, {"name": "Pen", "price": 1.25}], "tags": ["a", "b"]},
    )
    template = (
        "{{ subscriber.first_name | title }} / {{ subscriber.first_name | upper | center(9) }} / "
        "{% for item in subscriber.attributes['items'] | sort(attribute='name') %}"
        "{{ loop.index }}. {{ item.name }}: {{ '%.2f' | replace('%.2f', item.price | round(2) | string) }}"
        "{{ ', ' if not loop.last }}{% endfor %} / "
        "{{ subscriber.attributes.tags | join('+') }} / {{ subscriber.attributes.tags | length }} / "
        "{{ subscriber.attributes.missing | default('n/a') }} / {{ 'long text here' | truncate(9, True, '…', 0) }} / "
        "{% set ns = namespace(total=0) %}{% for i in range(5) %}{% set ns.total = ns.total + i %}{% endfor %}"
        "{{ ns.total }} / {{ range(3) | sum }} / {{ 'a b c' | wordcount }} / {{ 'x,y'.split(',') | last }} / "
        "{% macro tag(t) %}#{{ t }}{% endmacro %}{{ tag('hi') }} / {{ [3, 1, 2] | max }} / "
        "{{ 'Hi ' ~ subscriber.first_name }} / {{ '{% raw %}' }}"
    )
    text = render_text(template, recipient=recipient)
    assert text.startswith(
        "Jane /    JANE   / 1. Book: 12.5, 2. Pen: 1.25 / a+b / 2 / n/a / long tex… / 10 / 3 / 3 / y / #hi / 3 / "
        "Hi jane / {% raw %}"
    )
    validate_campaign(content(body_text=template, body_html="<p>" + template + "</p>"))
