"""``name(key=value,...)`` specs: configure a registered thing from one line of text.

A spec names a registered thing and overrides fields of its frozen config dataclass, so a sweep
can try ``rapid(high_threshold=6,cooldown_s=0.1)`` from the command line instead of from Python,
and every record and log line carries the exact spec it ran. The grammar is small on purpose::

    spec  := name [ "(" [ arg { "," arg } ] ")" ]
    arg   := key "=" value
    key   := a Python identifier (a field of the config dataclass)
    value := a run of characters other than whitespace and , ( ) = ' "
           | a '...' or "..." quoted string (no escapes; quoted values are strings only)

Whitespace around tokens is allowed; ``name()`` equals ``name``. Values stay strings until
:func:`build_config` converts them by the dataclass field's type annotation and runs the
dataclass's own ``__post_init__`` validation, so a spec is checked exactly as Python code that
built the same config would be.

:class:`rapid_env.registry.ConfigRegistry` uses this grammar: its entries may carry a config class
and a preset, so ``create("rapid-acc-only(high_threshold=5)")`` builds that variant's preset with
one field overridden. This module imports nothing else of the package.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, TypeVar

T = TypeVar("T")
C = TypeVar("C")

TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
NONE_WORDS = ("none", "null")

_NAME = re.compile(r"[^\s(),='\"]+")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE = re.compile(r"[^\s(),='\"]+")
_WORD = _VALUE  # what a user meant as a key: the run of text up to '=', ',', '(', ...
_QUOTES = "'\""


class SpecError(ValueError):
    """A malformed spec, an unknown field or a value its field does not accept.

    The message is one line and starts with the offending spec text, so a command-line front end
    can print it as is.
    """


class InvalidKeyError(SpecError):
    """A key that is not an identifier (``hígh_threshold``, ``high-threshold``).

    Attributes:
        spec: the spec text.
        key: the key as written; a registry adds the "did you mean" of its config's fields.
    """

    def __init__(self, spec: str, key: str, hint: str = "") -> None:
        self.spec = spec
        self.key = key
        super().__init__(
            f"bad spec {spec!r}: invalid key {key!r} (keys are identifiers: letters, digits, _)"
            + hint
        )


# ------------------------------------------------------------------------------------ grammar


def _bad(text: str, why: str) -> SpecError:
    return SpecError(f"bad spec {text!r}: {why}")


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def parse_spec(text: str) -> tuple[str, dict[str, str]]:
    """Split ``name(key=value,...)`` into the name and its raw, unconverted values.

    Quoted values keep their quotes, so :func:`build_config` can tell ``"none"`` (a string) from
    ``none`` (None).

    Example:
        >>> parse_spec("rapid( high_threshold = 6, cooldown_s=0.1 )")
        ('rapid', {'high_threshold': '6', 'cooldown_s': '0.1'})
        >>> parse_spec("rapid()")
        ('rapid', {})

    Raises:
        SpecError: empty text, a bad name, unbalanced parentheses, a missing ``=``, an empty key
            or value, a duplicate key, an unterminated quote, or text after the closing ``)``.
    """
    s = text.strip()
    if not s:
        raise _bad(text, "empty")
    open_at = s.find("(")
    name = (s if open_at < 0 else s[:open_at]).strip()
    if not name:
        raise _bad(text, "missing name before '('")
    match = _NAME.fullmatch(name)
    if match is None:
        bad = next(ch for ch in name if _NAME.fullmatch(ch) is None)
        if bad == ")":
            raise _bad(text, "unbalanced parentheses: ')' without '('")
        raise _bad(text, f"unexpected {bad!r} in name {name!r}")
    if open_at < 0:
        return name, {}
    args: dict[str, str] = {}
    i = _skip_ws(s, open_at + 1)
    if i < len(s) and s[i] == ")":
        i += 1
    else:
        while True:
            i = _skip_ws(s, i)
            if i >= len(s):
                raise _bad(text, "unbalanced parentheses: missing ')'")
            key_match = _KEY.match(s, i)
            if key_match is None:
                if s[i] in "=,)":
                    raise _bad(text, "empty key")
                word = _WORD.match(s, i)
                if word is not None:
                    raise InvalidKeyError(text, word.group())
                raise _bad(text, f"unexpected {s[i]!r} where a key should start")
            key = key_match.group()
            word = _WORD.match(s, i)
            if word is not None and word.end() > key_match.end():
                raise InvalidKeyError(text, word.group())
            i = _skip_ws(s, key_match.end())
            if i >= len(s) or s[i] != "=":
                raise _bad(text, f"missing '=' after {key!r}")
            i = _skip_ws(s, i + 1)
            if i < len(s) and s[i] in _QUOTES:
                end = s.find(s[i], i + 1)
                if end < 0:
                    raise _bad(text, f"unterminated quote in the value of {key!r}")
                value, i = s[i : end + 1], end + 1
            else:
                value_match = _VALUE.match(s, i)
                if value_match is None:
                    if i < len(s) and s[i] == "(":
                        raise _bad(text, f"unexpected '(' in the value of {key!r}")
                    raise _bad(text, f"empty value for {key!r}")
                value, i = value_match.group(), value_match.end()
            if key in args:
                raise _bad(text, f"duplicate key {key!r}")
            args[key] = value
            i = _skip_ws(s, i)
            if i >= len(s):
                raise _bad(text, "unbalanced parentheses: missing ')'")
            if s[i] == ",":
                i += 1
                continue
            if s[i] == ")":
                i += 1
                break
            raise _bad(text, f"unexpected {s[i]!r} after {key}={value}")
    rest = s[i:].strip()
    if rest:
        raise _bad(text, f"unexpected text {rest!r} after ')'")
    return name, args


def split_specs(text: str) -> tuple[str, ...]:
    """Split a comma-separated list of specs at top-level commas only.

    Commas inside parentheses or quotes belong to a spec; items are stripped and empty items
    dropped, as for any other comma-separated flag.

    Example:
        >>> split_specs("rapid, rapid(high_threshold=6,cooldown_s=0.1),chunk-threshold")
        ('rapid', 'rapid(high_threshold=6,cooldown_s=0.1)', 'chunk-threshold')

    Raises:
        SpecError: unbalanced parentheses or an unterminated quote.
    """
    items: list[str] = []
    depth = 0
    quote = ""
    start = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in _QUOTES:
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SpecError(f"bad spec list {text!r}: ')' without '('")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if quote:
        raise SpecError(f"bad spec list {text!r}: unterminated quote")
    if depth:
        raise SpecError(f"bad spec list {text!r}: unbalanced parentheses: missing ')'")
    items.append(text[start:])
    return tuple(item.strip() for item in items if item.strip())


# --------------------------------------------------------------------------------- conversion


class _Mismatch(Exception):
    """The raw text is not a value of the type tried (internal)."""


class _Unsupported(Exception):
    """A field type that a spec cannot express (internal)."""


def _is_union(tp: object) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def type_label(tp: object) -> str:
    """How a field's type reads in error messages and docs: ``float``, ``int|edge|cloud|none``.

    Literal choices and ``none`` are written the way a spec spells them, and members are joined
    with ``|`` (no commas), so a comma-separated list of fields stays readable on one line.
    """
    if tp is type(None):
        return "none"
    if typing.get_origin(tp) is Literal:
        return "|".join(str(choice) for choice in typing.get_args(tp))
    if _is_union(tp):
        return "|".join(type_label(member) for member in typing.get_args(tp))
    return str(getattr(tp, "__name__", tp))


def _expected(tp: object) -> str:
    if tp is int:
        return "an int"
    if tp in (float, bool, str):
        return f"a {type_label(tp)}"
    if tp is type(None):
        return "none"
    members = typing.get_args(tp) if _is_union(tp) else ()
    if len(members) == 2 and type(None) in members:  # Optional[X]: "a float or none"
        (other,) = (m for m in members if m is not type(None))
        return f"{_expected(other)} or none"
    return f"one of {type_label(tp)}"


def _convert(tp: object, raw: str) -> object:
    """Convert raw spec text to a value of ``tp``; raise :class:`_Mismatch` if it is not one."""
    quoted = len(raw) >= 2 and raw[0] in _QUOTES and raw[-1] == raw[0]
    text = raw[1:-1] if quoted else raw
    if typing.get_origin(tp) is Literal:
        for choice in typing.get_args(tp):
            if isinstance(choice, str):
                if text == choice:
                    return choice
            elif not quoted:
                try:
                    value = _convert(type(choice), raw)
                except _Mismatch:
                    continue
                if value == choice:
                    return choice
        raise _Mismatch
    if _is_union(tp):
        members = typing.get_args(tp)
        # ``none`` means None wherever None is allowed, even for ``str | None`` (quote it for
        # the string); the other members are tried in order.
        if type(None) in members and not quoted and text.lower() in NONE_WORDS:
            return None
        for member in members:
            if member is type(None):
                continue
            try:
                return _convert(member, raw)
            except _Mismatch:
                continue
        raise _Mismatch
    if tp is type(None):
        if not quoted and text.lower() in NONE_WORDS:
            return None
        raise _Mismatch
    if tp is str:
        return text
    if tp not in (bool, int, float):
        raise _Unsupported
    if quoted:
        raise _Mismatch
    if tp is bool:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise _Mismatch
    try:
        return int(text) if tp is int else float(text)
    except ValueError:
        raise _Mismatch from None


def format_value(value: object) -> str:
    """A config value spelled the way a spec writes it: ``none``, ``true``, ``0.2``, ``edge``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _settable_fields(cls: type) -> Iterator[tuple[dataclasses.Field[Any], object]]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.init:
            yield f, hints[f.name]


def field_types(cls: type) -> dict[str, object]:
    """The fields a spec may set on config dataclass ``cls``, with their resolved types."""
    return {f.name: tp for f, tp in _settable_fields(cls)}


def describe_fields(cls: type) -> str:
    """``high_threshold: float, ..., refill_split: int|edge|cloud|none``; ``(none)`` if empty."""
    fields = field_types(cls)
    if not fields:
        return "(none)"
    return ", ".join(f"{name}: {type_label(tp)}" for name, tp in fields.items())


def build_config(
    cls: type[C], overrides: dict[str, str], base: C | None = None, *, spec: str | None = None
) -> C:
    """Apply raw spec values to a frozen config dataclass, converting each by its field's type.

    Each value is converted by the field's annotation (int, float incl. ``inf``/``nan``, bool as
    ``true/false/yes/no/1/0``, str, ``none``/``null`` for Optional fields, ``Literal`` choices,
    unions tried member by member), then ``dataclasses.replace(base or cls(), ...)`` runs the
    dataclass's ``__post_init__`` so a spec is validated exactly like Python code would be.

    Args:
        cls: the config dataclass.
        overrides: field name -> raw value text, as :func:`parse_spec` returns them.
        base: the config to override (a registered preset); default ``cls()``.
        spec: the spec text to put in front of error messages; default the class name.

    Raises:
        SpecError: one line naming the unknown field(s) or the bad value, and listing the
            allowed fields with their types; or ``__post_init__``'s ValueError, behind the spec.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    where = spec if spec is not None else cls.__name__
    start = cls() if base is None else base
    if not isinstance(start, cls):
        raise TypeError(f"base {start!r} is not a {cls.__name__}")
    if not overrides:
        return start
    fields = field_types(cls)
    unknown = [key for key in overrides if key not in fields]
    if unknown:
        what = "field" if len(unknown) == 1 else "fields"
        raise SpecError(
            f"{where}: unknown {what} {', '.join(repr(k) for k in unknown)}; "
            f"allowed: {describe_fields(cls)}"
        )
    converted: dict[str, object] = {}
    for key, raw in overrides.items():
        tp = fields[key]
        try:
            converted[key] = _convert(tp, raw)
        except _Mismatch:
            raise SpecError(
                f"{where}: {key}={raw!r} is not {_expected(tp)}; allowed: {describe_fields(cls)}"
            ) from None
        except _Unsupported:
            raise SpecError(
                f"{where}: field {key!r} has type {type_label(tp)}, which a spec cannot set"
            ) from None
    try:
        return typing.cast(C, dataclasses.replace(start, **converted))  # type: ignore[type-var]
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from None


def is_spec_name(name: str) -> bool:
    """Whether ``name`` can stand as a spec's name (no whitespace, parentheses, ``,``, ``=``...)."""
    return _NAME.fullmatch(name) is not None


__all__ = [
    "InvalidKeyError",
    "SpecError",
    "build_config",
    "describe_fields",
    "field_types",
    "format_value",
    "is_spec_name",
    "parse_spec",
    "split_specs",
    "type_label",
]
