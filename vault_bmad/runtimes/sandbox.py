"""The Jinja2 environment templates render in: the immutable sandbox, with bounded work.

Jinja2's sandbox stops attribute escapes; `GuardedSandbox` also refuses, before it
allocates, any operation that would build a string longer than `max_chars` (the output
cap), a list longer than MAX_ITEMS, or an integer over MAX_INTEGER_BITS: `*`, `+`, `%`,
`~`, `str.format`, the str methods that take a width or repeat (`center`, `ljust`, `join`,
`replace`...), the filters that do (`center`, `indent`, `join`, `format`, `wordwrap`...),
and what a block or macro collects. Time and the memory nothing here bounds are the
worker process's limits (`template_worker.py`).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Mapping
from string import Formatter
from typing import Any

from jinja2 import StrictUndefined, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import (
    do_batch,
    do_center,
    do_format,
    do_indent,
    do_replace,
    do_slice,
    do_wordwrap,
    make_attrgetter,
    sync_do_join,
)
from jinja2.nodes import Concat, EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)

MAX_ITEMS = 1_000_000  # longest list or tuple `*`, `+`, `batch` or `slice` may build
MAX_INTEGER_BITS = 100_000  # largest integer `*` or `**` may build (about 30,000 digits)

_PERCENT_SPEC = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)
_NUMBER = re.compile(r"\d+")
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


class GuardedCodeGenerator(CodeGenerator):
    """Jinja2's code generator, with `~` sent through `environment.join_checked`."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.join_checked((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class GuardedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with bounded strings, lists and integers; see the module."""

    code_generator_class = GuardedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, max_chars: int) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=self._printable,
        )
        self.max_chars = max_chars
        self.globals.pop("lipsum", None)  # generates text of any size; no use in a prompt
        self.filters.update(_guarded_filters(self))

    # What a template prints and collects.

    def _printable(self, value: Any) -> Any:
        if not isinstance(value, str):
            self.check_chars("printing a value", text_size(value, self.max_chars))
        return value

    def concat(self, pieces: Iterable[str]) -> str:
        """What a block, macro or `{% set %}` block collects, joined: at most max_chars."""
        collected, total = [], 0
        for piece in pieces:
            total += len(piece)
            self.check_chars("a block's text", total)
            collected.append(piece)
        return "".join(collected)

    def join_checked(self, values: tuple[Any, ...]) -> str:
        """`a ~ b ~ c`."""
        self.check_chars("`~`", sum(text_size(value, self.max_chars) for value in values))
        return "".join(str(value) for value in values)

    # Operators and calls.

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator in ("*", "**") and _is_int(left) and _is_int(right):
            bits = abs(left).bit_length()
            bits = bits + abs(right).bit_length() if operator == "*" else bits * abs(right)
            if bits > MAX_INTEGER_BITS:
                raise SecurityError(f"integers above {MAX_INTEGER_BITS} bits are not allowed")
        elif operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if _is_int(count) and isinstance(sequence, str | bytes | list | tuple):
                    self.check_length(f"`*` on a {type(sequence).__name__}", sequence, count)
        elif operator == "+" and isinstance(left, str | bytes | list | tuple):
            if isinstance(right, str | bytes | list | tuple):
                self.check_length("`+`", left, 1, len(right))
        elif operator == "%" and isinstance(left, str | bytes):
            self.check_chars("`%`", percent_size(left, right, self.max_chars))
        return super().call_binop(context, operator, left, right)

    def call(
        __self,  # Jinja2's own signature, so that calls may pass `self=`
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(owner, str | bytes):
            args = __self._check_text_method(owner, __obj.__name__, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def _check_text_method(
        self, text: str | bytes, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[Any, ...]:
        """Refuse a str or bytes method call that would build too long a result; returns the
        arguments to call it with (an iterable to `join`, read into a list)."""
        given = [*args, *kwargs.values()]
        if name in _WIDTH_METHODS and given and _is_int(given[0]):
            self.check_chars(f"str.{name}", given[0])
        elif name == "expandtabs":
            tab = given[0] if given and _is_int(given[0]) else 8
            tabs = text.count("\t") if isinstance(text, str) else text.count(b"\t")
            self.check_chars("str.expandtabs", len(text) + tabs * max(tab, 0))
        elif name == "replace" and len(given) >= 2:
            self.check_chars("str.replace", replaced_size(text, *given[:3]))
        elif name == "join" and len(args) == 1 and not kwargs:
            items = list(args[0])
            size = sum(text_size(i, self.max_chars) for i in items) + len(text) * len(items)
            self.check_chars("str.join", size)
            return (items,)
        elif name == "translate" and given and isinstance(given[0], Mapping):
            longest = max((text_size(v, self.max_chars) for v in given[0].values()), default=1)
            self.check_chars("str.translate", len(text) * max(longest, 1))
        return args

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` and `str.format_map`, through a formatter that counts what it builds."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        text = value.__self__
        if not isinstance(text, str):
            return None
        formatter: Formatter = (
            BoundedEscapeFormatter(self, escape=text.escape)  # type: ignore[attr-defined]
            if hasattr(text, "__html__")  # markupsafe's Markup, from the `safe` filter
            else BoundedFormatter(self)
        )
        is_map = value.__name__ == "format_map"

        def formatted(*args: Any, **kwargs: Any) -> str:
            if not is_map:
                return type(text)(formatter.vformat(text, args, kwargs))
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one mapping")
            return type(text)(formatter.vformat(text, (), args[0]))

        return formatted

    # The limits.

    def check_chars(self, what: str, size: int) -> None:
        if size > self.max_chars:
            raise SecurityError(
                f"{what} would build {size:,} characters, over the output cap of "
                f"{self.max_chars:,} (the max_output_bytes setting)"
            )

    def check_length(self, what: str, sequence: Any, count: int, extra: int = 0) -> None:
        size = len(sequence) * count + extra
        if isinstance(sequence, str | bytes):
            self.check_chars(what, size)
        elif size > MAX_ITEMS:
            raise SecurityError(f"{what} would build {size:,} items, over {MAX_ITEMS:,}")


class _CountingFormatter(Formatter):
    """Counts the characters `format` has built, field by field, against the cap."""

    def __init__(self, env: GuardedSandbox, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)  # type: ignore[call-arg]  # the sandbox's formatter's
        self._guard, self._built = env, 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in _NUMBER.findall(format_spec):
            self._guard.check_chars("a format width", int(number))
        field = super().format_field(value, format_spec)
        self._built += len(field)
        self._guard.check_chars("str.format", self._built)
        return field


class BoundedFormatter(_CountingFormatter, SandboxedFormatter):
    pass


class BoundedEscapeFormatter(_CountingFormatter, SandboxedEscapeFormatter):
    pass


def _guarded_filters(env: GuardedSandbox) -> dict[str, Callable[..., Any]]:
    """Jinja2's filters that can build large results, each checked before it runs."""

    def center(value: str, width: int = 80) -> str:
        env.check_chars("the center filter", width if _is_int(width) else 0)
        return do_center(value, width)

    def indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        margin = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        env.check_chars("the indent filter", len(str(s)) + (str(s).count("\n") + 1) * margin)
        return do_indent(s, width, first, blank)

    @pass_eval_context
    def join(
        eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None
    ) -> str:
        items = list(value)
        if attribute is not None:
            items = [make_attrgetter(env, attribute)(item) for item in items]
        size = sum(text_size(i, env.max_chars) for i in items) + len(str(d)) * len(items)
        env.check_chars("the join filter", size)
        return sync_do_join(eval_ctx, items, d)

    @pass_eval_context
    def replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
        env.check_chars("the replace filter", replaced_size(str(s), str(old), str(new), count))
        return do_replace(eval_ctx, s, old, new, count)

    def format_filter(value: str, *args: Any, **kwargs: Any) -> str:
        env.check_chars(
            "the format filter", percent_size(str(value), kwargs or args, env.max_chars)
        )
        return do_format(value, *args, **kwargs)

    def wordwrap(s: str, width: int = 79, *args: Any, **kwargs: Any) -> str:
        wrap = kwargs.get("wrapstring", args[1] if len(args) > 1 else None) or "\n"
        lines = 2 * len(str(s)) // max(int(width), 1) + str(s).count("\n") + 1
        env.check_chars("the wordwrap filter", len(str(s)) + lines * len(str(wrap)))
        return do_wordwrap(env, s, width, *args, **kwargs)

    def batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
        env.check_length("the batch filter", (), 0, linecount if _is_int(linecount) else 0)
        return do_batch(value, linecount, fill_with)

    def slice_filter(value: Iterable[Any], slices: int, fill_with: Any = None) -> Any:
        env.check_length("the slice filter", (), 0, slices if _is_int(slices) else 0)
        return do_slice(value, slices, fill_with)

    return {
        "center": center,
        "indent": indent,
        "join": join,
        "replace": replace,
        "format": format_filter,
        "wordwrap": wordwrap,
        "batch": batch,
        "slice": slice_filter,
    }


def text_size(value: Any, limit: int) -> int:
    """About len(str(value)), counting no further than just past `limit`."""
    if isinstance(value, str | bytes):
        return len(value)
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 4  # quotes and a separator, as a list shows it
        elif isinstance(item, Mapping):
            total += 2 + 2 * len(item)
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + len(item)
            stack += list(item)
        else:
            total += len(str(item))
    return total


def replaced_size(text: str | bytes, old: Any, new: Any, count: Any = None) -> int:
    """The length of `text.replace(old, new, count)`, without building it."""
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(text)
    found = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if _is_int(count) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def percent_size(template: str | bytes, values: Any, limit: int) -> int:
    """At most how long `template % values` would be, without building it."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    specs = list(_PERCENT_SPEC.finditer(text))
    total = len(text)
    args = values if isinstance(values, tuple) else (values,)
    stars = any("*" in (m.group(2) or "") + (m.group(3) or "") for m in specs)
    for spec in specs:
        total += sum(int(n) for n in (spec.group(2), spec.group(3)) if n and n.isdigit())
        if spec.group(1) is not None and isinstance(values, Mapping):
            total += text_size(values.get(spec.group(1)), limit)
    if not isinstance(values, Mapping):
        total += sum(text_size(arg, limit) for arg in args)
        if stars:
            total += sum(abs(arg) for arg in args if _is_int(arg))
    return total


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
