"""The one Jinja2 environment every campaign template is compiled and rendered with, and its bounds.

Templates are written by account users and rendered on the mailer's event loop, so nothing a template
can express may run for long or build something huge:

* at compile time: block statements nest at most `max_nesting` deep; only allow-listed filters and
  globals exist (an unknown filter is a compile error, wherever it is); `{% autoescape %}`,
  recursive loops, `{% include %}`/`{% extends %}`/`{% import %}`/`{% block %}` are refused;
* at render time, per render (one budget in a ContextVar): every `{% for %}` iteration and every macro
  call counts against `max_iterations`; a time limit (`max_seconds` of the rendering thread's CPU) is
  checked at each of those, at every expression output and between output chunks; the output (and
  everything produced on the way, captured blocks included) is at most `max_output` characters; `range()` is capped, and the
  operators and filters that can amplify a value (`*`, `**`, `+`, `~`, `join`, `replace`, `center`,
  `indent`, `batch`, ...) are bounded.

Exceeding any bound raises RenderError naming the bound; nothing hangs.

Markup (HTML the template itself contains, captured by `{% set %}`/macros/call blocks) loses its
"safe" status as soon as it is manipulated (sliced, filtered, method-called): manipulated HTML is
escaped on output, so a template cannot assemble live markup out of pieces the sanitiser saw as inert.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.exceptions import TemplateAssertionError, TemplateError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Cycler, Joiner, Namespace
from markupsafe import Markup

from .sanitize import safe_url_value

TEMPLATE_FILENAME = "<template>"


class RenderError(Exception):
    """The campaign's templates cannot be compiled or rendered: no message can be built from them.

    `reason` is the bare cause; `field` (subject / body_html / body_text) and `line` (1-based, in that
    template) are set when known; `str()` is a complete sentence for logs and `last_error`.
    """

    def __init__(self, message: str, *, reason: str | None = None, field: str | None = None,
                 line: int | None = None):
        super().__init__(message)
        self.reason = reason if reason is not None else message
        self.field = field
        self.line = line


class LimitExceeded(SecurityError):
    """A render bound was hit (a TemplateError, so Jinja reports it like any other template error)."""


@dataclass(frozen=True)
class RenderLimits:
    max_iterations: int = 10_000  # loop iterations + macro calls, across one render
    max_seconds: float = 0.25  # CPU time of the rendering thread per render
    max_output: int = 2_000_000  # characters of output per render (and of everything produced on the way)
    max_nesting: int = 10  # nesting depth of block statements, checked at compile time
    max_range: int = 10_000  # items one range() may produce
    max_width: int = 1_000  # width/length/count arguments of center, indent, wordwrap, truncate, batch, slice
    max_value_length: int = 1_000_000  # one string/list built by +, ~, join, replace, indent, ...
    max_repeated_length: int = 100_000  # result of `"x" * n` / `[x] * n`
    max_exponent: int = 100  # right operand of **
    max_int_bits: int = 4_096  # integers built by * and **


DEFAULT_LIMITS = RenderLimits()


# --- the per-render budget -------------------------------------------------------------------------


class Budget:
    __slots__ = ("limits", "steps", "produced", "deadline", "cpu_started")

    def __init__(self, limits: RenderLimits):
        self.limits = limits
        self.steps = 0
        self.produced = 0
        self.deadline = time.monotonic() + limits.max_seconds
        self.cpu_started = time.thread_time()

    def step(self, literal: int, what: str) -> None:
        self.steps += 1
        if self.steps > self.limits.max_iterations:
            raise LimitExceeded(f"{what} may run at most {self.limits.max_iterations} iterations in one email")
        if literal:
            self.produce(literal)
        self.check_time()

    def produce(self, size: int) -> None:
        self.produced += size
        if self.produced > self.limits.max_output:
            raise LimitExceeded(f"the email would be longer than {self.limits.max_output} characters")

    def check_time(self) -> None:
        # The limit is on the work a template makes, so it counts the thread's CPU time: by the wall
        # clock, a process descheduled on a busy machine (or paused by a profiler) mid-render failed
        # a recipient's email for good. The wall clock, ~10 times cheaper to read, rules out the
        # renders that cannot have used their time yet (nearly all of them).
        if time.monotonic() > self.deadline and time.thread_time() - self.cpu_started > self.limits.max_seconds:
            raise LimitExceeded(f"rendering one email may take at most {self.limits.max_seconds:g} s")


_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("mailstify_render_budget", default=None)


def _budget() -> Budget:
    budget = _BUDGET.get()
    if budget is None:
        raise LimitExceeded("campaign templates must be rendered through mailstify_rendering (no budget set)")
    return budget


@contextlib.contextmanager
def render_budget(limits: RenderLimits) -> Iterator[Budget]:
    """One budget for everything rendered inside (one email: subject, text and HTML)."""
    token = _BUDGET.set(Budget(limits))
    try:
        yield _budget()
    finally:
        _BUDGET.reset(token)


def render_template(template: Any, context: dict[str, Any], field: str) -> str:
    """Render one template under the current budget (see render_budget), streaming its output so the
    size and deadline are checked between chunks. Raises RenderError (with field and line)."""
    budget = _budget()
    limits = budget.limits
    try:
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > limits.max_output:
                raise LimitExceeded(f"the email would be longer than {limits.max_output} characters")
            chunks.append(chunk)
            # Expression output and loop steps check the clock themselves; between chunks every 16th
            # is enough (a run of literal chunks is cheap).
            if not len(chunks) & 15:
                budget.check_time()
        return "".join(chunks)
    except RecursionError as exc:
        raise _render_error("templates may not recurse this deep", field, exc) from None
    except Exception as exc:  # a template can raise nearly anything (TypeError, ZeroDivisionError, ...)
        reason = exc.message if isinstance(exc, TemplateError) and exc.message else str(exc) or type(exc).__name__
        raise _render_error(reason, field, exc) from exc


def _render_error(reason: str, field: str, exc: BaseException) -> RenderError:
    line = template_line(exc)
    where = f"{field}: line {line}: " if line else f"{field}: "
    return RenderError(f"cannot render the campaign for this recipient: {where}{reason}", reason=reason,
                       field=field, line=line)


def template_line(exc: BaseException) -> int | None:
    """The template line an exception was raised at (Jinja rewrites tracebacks to template lines)."""
    line = getattr(exc, "lineno", None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == TEMPLATE_FILENAME:
            line = frame.lineno
    return line


# --- Markup demotion -------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """Markup that is manipulated stops being Markup (so it is escaped on output)."""
    return str.__str__(value) if isinstance(value, Markup) else value


def attribute_value(value: Any) -> Any:
    """A merge value inside a (double-quoted) HTML attribute: plain values are escaped as usual;
    Markup (the template's own HTML, e.g. a captured block) cannot close the quote."""
    if isinstance(value, Markup):
        return Markup(str.__str__(value).replace('"', "&#34;"))
    return value


def url_value(value: Any) -> Markup:
    """The whole rendered value of a URL attribute (href, src, ...) that contains template code."""
    return Markup(safe_url_value(str(value)))


# --- filters ---------------------------------------------------------------------------------------


def _check_length(value: Any, limits: RenderLimits) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > limits.max_value_length:
        raise LimitExceeded(f"a value may be at most {limits.max_value_length} characters or items long")
    return value


def _check_width(name: str, width: Any, limits: RenderLimits) -> None:
    if isinstance(width, str):
        width = len(width)
    if isinstance(width, (int, float)) and abs(width) > limits.max_width:
        raise LimitExceeded(f"{name}() width/length/count may be at most {limits.max_width}")


def _wrap_filter(name: str, func: Callable[..., Any], limits: RenderLimits, *, demote: bool = True,
                 precheck: Callable[..., None] | None = None) -> Callable[..., Any]:
    """The stock filter, with Markup arguments demoted to plain strings, an optional bound checked on
    the arguments before the work is done, and the result's length checked after."""
    pass_arg = getattr(func, "jinja_pass_arg", None)

    def call(extra: tuple[Any, ...], value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if demote:
            value = plain(value)
            args = tuple(plain(a) for a in args)
            kwargs = {k: plain(v) for k, v in kwargs.items()}
        if precheck is not None:
            precheck(value, *args, **kwargs)
        return _check_length(func(*extra, value, *args, **kwargs), limits)

    if pass_arg is None:

        def wrapper(value: Any, *args: Any, **kwargs: Any) -> Any:
            return call((), value, args, kwargs)

    else:

        def wrapper(first: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
            return call((first,), value, args, kwargs)

        wrapper.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    functools.update_wrapper(wrapper, func)
    if pass_arg is not None:
        wrapper.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return wrapper


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _filters(limits: RenderLimits) -> dict[str, Callable[..., Any]]:
    def width_check(name: str, index: int, keyword: str, default: Any) -> Callable[..., None]:
        def check(value: Any, *args: Any, **kwargs: Any) -> None:
            _check_width(name, _arg(args, kwargs, index, keyword, default), limits)

        return check

    def indent_check(value: Any, *args: Any, **kwargs: Any) -> None:
        width = _arg(args, kwargs, 0, "width", 4)
        _check_width("indent", width, limits)
        size = len(width) if isinstance(width, str) else int(width)
        if len(str(value)) + (str(value).count("\n") + 1) * max(size, 0) > limits.max_value_length:
            raise LimitExceeded(f"a value may be at most {limits.max_value_length} characters or items long")

    def wordwrap_check(value: Any, *args: Any, **kwargs: Any) -> None:
        _check_width("wordwrap", _arg(args, kwargs, 0, "width", 79), limits)
        wrapstring = _arg(args, kwargs, 2, "wrapstring", None)
        if wrapstring is not None and len(str(wrapstring)) > limits.max_width:
            raise LimitExceeded(f"wordwrap() wrapstring may be at most {limits.max_width} characters")

    def replace_check(value: Any, old: Any = "", new: Any = "", count: Any = None) -> None:
        text, old, new = str(value), str(old), str(new)
        hits = text.count(old) if count is None else min(text.count(old), max(int(count), 0))
        if len(text) + hits * (len(new) - len(old)) > limits.max_value_length:
            raise LimitExceeded(f"a value may be at most {limits.max_value_length} characters or items long")

    def join_check(value: Any, d: Any = "", attribute: Any = None) -> None:
        if isinstance(value, (list, tuple, str, range)):
            items = len(value)
            if items * len(str(d)) > limits.max_value_length:
                raise LimitExceeded(f"a value may be at most {limits.max_value_length} characters or items long")

    def sum_check(value: Any, attribute: Any = None, start: Any = 0) -> None:
        if not isinstance(start, (int, float)) or isinstance(start, bool):
            raise LimitExceeded("sum() adds numbers only")

    wrap = functools.partial(_wrap_filter, limits=limits)
    stock = DEFAULT_FILTERS
    filters: dict[str, Callable[..., Any]] = {}
    # Harmless, linear in their input: Markup input is demoted (so a manipulated block is escaped).
    for name in (
        "upper lower title capitalize trim urlencode striptags wordcount length count first last int float "
        "round abs list sort reverse unique min max filesizeformat dictsort items map select reject "
        "selectattr rejectattr groupby"
    ).split():
        filters[name] = wrap(name, stock[name])
    # These keep Markup as it is: they do not cut it up.
    for name in ("default", "d", "escape", "e", "string"):
        filters[name] = wrap(name, stock[name], demote=False)
    filters["join"] = wrap("join", stock["join"], demote=False, precheck=join_check)
    filters["replace"] = wrap("replace", stock["replace"], precheck=replace_check)
    filters["sum"] = wrap("sum", stock["sum"], precheck=sum_check)
    filters["center"] = wrap("center", stock["center"], precheck=width_check("center", 0, "width", 80))
    filters["truncate"] = wrap("truncate", stock["truncate"], precheck=width_check("truncate", 0, "length", 255))
    filters["batch"] = wrap("batch", stock["batch"], precheck=width_check("batch", 0, "linecount", 1))
    filters["slice"] = wrap("slice", stock["slice"], precheck=width_check("slice", 0, "slices", 1))
    filters["indent"] = wrap("indent", stock["indent"], precheck=indent_check)
    filters["wordwrap"] = wrap("wordwrap", stock["wordwrap"], precheck=wordwrap_check)
    # Internal: added by the HTML body's attribute rewrite (sanitize.prepare_html_template).
    filters["mailstify_attr"] = attribute_value
    filters["mailstify_url"] = url_value
    return filters


# Filters that would put unchecked markup into an email, or cannot be bounded or made deterministic.
REFUSED_FILTERS = frozenset({"safe", "urlize", "xmlattr", "tojson", "format", "pprint", "random", "forceescape",
                             "attr", "mark_safe"})

_SAFE_METHODS: dict[type, frozenset[str]] = {
    str: frozenset(
        "upper lower title capitalize casefold swapcase strip lstrip rstrip startswith endswith split rsplit "
        "splitlines partition rpartition removeprefix removesuffix count find rfind index rindex isalnum "
        "isalpha isdigit isdecimal isnumeric isspace islower isupper istitle".split()
    ),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    dict: frozenset({"get", "items", "keys", "values"}),
}
_BUILTIN_TYPES = (str, bytes, int, float, complex, bool, list, tuple, dict, set, frozenset, range)


# --- compile-time checks and rewrite --------------------------------------------------------------

_NESTING_NODES = (
    nodes.For, nodes.If, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.With, nodes.AssignBlock,
)
_REFUSED_NODES: dict[type, str] = {
    nodes.Extends: "{% extends %} is not allowed",
    nodes.Include: "{% include %} is not allowed",
    nodes.Import: "{% import %} is not allowed",
    nodes.FromImport: "{% from ... import %} is not allowed",
    nodes.Block: "{% block %} is not allowed",
    nodes.EvalContextModifier: "{% autoescape %} is not allowed",
}


def _reject(message: str, node: nodes.Node) -> None:
    raise TemplateAssertionError(message, getattr(node, "lineno", None) or 1, None, TEMPLATE_FILENAME)


def _literal_length(body: list[nodes.Node]) -> int:
    """Characters of template text a loop/macro body outputs per pass (nested loops charge themselves)."""
    total = 0
    stack: list[nodes.Node] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif isinstance(node, (nodes.For, nodes.Macro, nodes.CallBlock)):
            continue
        else:
            stack.extend(node.iter_child_nodes())
    return total


def _step_output(literal: int, what: str, lineno: int) -> nodes.Output:
    call = nodes.Call(
        nodes.EnvironmentAttribute("mailstify_step", lineno=lineno),
        [nodes.Const(literal, lineno=lineno), nodes.Const(what, lineno=lineno)], [], None, None, lineno=lineno,
    )
    return nodes.Output([call], lineno=lineno)


def _check_and_rewrite(template: nodes.Template, env: BoundedEnvironment) -> None:
    limits = env.limits

    def walk(node: nodes.Node, depth: int) -> None:
        for refused, message in _REFUSED_NODES.items():
            if isinstance(node, refused):
                _reject(message, node)
        if isinstance(node, (nodes.Filter, nodes.FilterBlock)):
            name = node.filter.name if isinstance(node, nodes.FilterBlock) else node.name
            if name not in env.filters:
                if name in REFUSED_FILTERS:
                    _reject(f"the {name!r} filter is not allowed", node)
                _reject(f"no filter named {name!r}", node)
        if isinstance(node, nodes.Test) and node.name not in env.tests:
            _reject(f"no test named {node.name!r}", node)
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in REFUSED_GLOBALS:
            _reject(f"{node.name!r} is not allowed", node)
        nested = depth
        if isinstance(node, _NESTING_NODES) and not _is_internal_filter_block(node):
            nested = depth + 1
            if nested > limits.max_nesting:
                _reject(f"blocks may be nested at most {limits.max_nesting} deep", node)
        if isinstance(node, nodes.For):
            if node.recursive:
                _reject("recursive loops are not allowed", node)
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("mailstify_loop", lineno=node.lineno),
                [node.iter, nodes.Const(_literal_length(node.body), lineno=node.lineno)],
                [], None, None, lineno=node.lineno,
            )
        elif isinstance(node, nodes.Macro):
            node.body.insert(0, _step_output(_literal_length(node.body), "macro calls", node.lineno))
        elif isinstance(node, nodes.CallBlock):
            node.body.insert(0, _step_output(_literal_length(node.body), "call blocks", node.lineno))
        for child in node.iter_child_nodes():
            walk(child, nested)

    walk(template, 0)


def _is_internal_filter_block(node: nodes.Node) -> bool:
    return isinstance(node, nodes.FilterBlock) and node.filter.name == "mailstify_url"


REFUSED_GLOBALS = frozenset({"lipsum", "self"})


class _BoundedCodeGenerator(CodeGenerator):
    """`a ~ b` goes through a length check before the strings are joined; a sliced Markup is no
    longer Markup (Jinja compiles slices to plain Python subscripts, bypassing environment.getitem)."""

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if isinstance(node.arg, nodes.Slice):
            self.write("environment.mailstify_plain(")
            self.visit(node.node, frame)
            self.write(")[")
            self.visit(node.arg, frame)
            self.write("]")
        else:
            super().visit_Getitem(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"environment.mailstify_concat({func_name}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


@pass_eval_context  # needs runtime context, so Jinja never calls it at compile time (constant folding)
def _finalize(eval_ctx: Any, value: Any) -> Any:
    if value is None:
        return ""
    budget = _budget()
    if not isinstance(value, str):
        value = str(value)
    budget.produce(len(value))
    budget.check_time()
    return value


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


_MISSING = object()


# --- the environment -------------------------------------------------------------------------------


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The stock immutable sandbox, refusing unsafe attribute access outright (the stock one renders an
    empty value and raises only when the value is used), with the bounds described above."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, autoescape: bool, limits: RenderLimits = DEFAULT_LIMITS):
        super().__init__(
            autoescape=autoescape,
            # `subscriber.attributes.missing.deeper | default("x")` renders "x" instead of raising.
            undefined=ChainableUndefined,
            finalize=_finalize,
            keep_trailing_newline=True,
            # No constant folding: it would run filters at compile time, outside any budget.
            optimized=False,
            auto_reload=False,
            cache_size=0,
        )
        self.limits = limits
        self.filters = _filters(limits)
        self.tests = dict(DEFAULT_TESTS)
        self.globals = {
            "range": self._range,
            "dict": dict,
            "cycler": Cycler,
            "joiner": Joiner,
            "namespace": Namespace,
        }

    # Called from compiled templates as environment.<name>.
    mailstify_plain = staticmethod(plain)

    def mailstify_loop(self, iterable: Iterable[Any], literal: int) -> Iterator[Any]:
        budget = _budget()
        for item in iterable:
            budget.step(literal, "loops")
            yield item

    def mailstify_step(self, literal: int, what: str) -> str:
        _budget().step(literal, what)
        return ""

    def mailstify_concat(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        size = sum(len(part) if isinstance(part, str) else len(str(part)) for part in parts)
        if size > self.limits.max_value_length:
            raise LimitExceeded(f"a value may be at most {self.limits.max_value_length} characters or items long")
        return join(parts)

    def _range(self, *args: int) -> range:
        values = range(*args)
        if len(values) > self.limits.max_range:
            raise LimitExceeded(f"range() may produce at most {self.limits.max_range} items")
        return values

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        _check_and_rewrite(source, self)
        return super()._generate(source, name, filename, defer_init=defer_init)

    # Sandbox hooks.
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if callable(value) and isinstance(obj, _BUILTIN_TYPES):
            allowed = next((names for kind, names in _SAFE_METHODS.items() if isinstance(obj, kind)), frozenset())
            return attr in allowed
        if isinstance(obj, LoopContext) and callable(value):
            return attr in ("cycle", "changed")
        return True

    def wrap_str_format(self, value: Any) -> Any:
        # str.format / format_map: a width like "{:>999999999}" cannot be bounded; refused outright.
        if getattr(value, "__name__", None) in ("format", "format_map") and isinstance(
            getattr(value, "__self__", None), str
        ):
            raise LimitExceeded("str.format() is not allowed in templates")
        return None

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__} is not allowed")

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is MergeFields and not attribute.startswith("_"):
            # A merge value by its key: the bag holds plain data (str, numbers, lists, bags) and has
            # no public attribute of its own, so the sandbox's checks, a third of rendering an email,
            # would find nothing to refuse. Names with an underscore still go through them.
            value = obj._values.get(attribute, _MISSING)
            return self.undefined(obj=obj, name=attribute) if value is _MISSING else value
        return super().getattr(plain(obj), attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return super().getitem(plain(obj), argument)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limits = self.limits
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > limits.max_exponent:
                raise LimitExceeded(f"exponent {right} is too large (at most {limits.max_exponent})")
            if isinstance(left, int) and isinstance(right, int) and right > 0:
                if abs(left).bit_length() * right > limits.max_int_bits:
                    raise LimitExceeded("the number would be too large")
            return left**right
        if operator == "%":
            if isinstance(left, str):
                raise LimitExceeded("string formatting with % is not allowed (too easy to blow up)")
            return left % right
        if operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                if len(left) + len(right) > limits.max_value_length:
                    raise LimitExceeded(
                        f"a value may be at most {limits.max_value_length} characters or items long (too long)"
                    )
            return left + right
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
                if len(sequence) * count > limits.max_repeated_length:
                    raise LimitExceeded("repeated value would be too long")
        if isinstance(left, int) and isinstance(right, int):
            if abs(left).bit_length() + abs(right).bit_length() > limits.max_int_bits:
                raise LimitExceeded("the number would be too large")
        return left * right


@functools.lru_cache(maxsize=16)
def environment(autoescape: bool, limits: RenderLimits = DEFAULT_LIMITS) -> BoundedEnvironment:
    """THE environment: the same object validates (campaign service), previews and sends (mailer)."""
    return BoundedEnvironment(autoescape=autoescape, limits=limits)
