"""Specs: the ``name(key=value,...)`` grammar, conversion by field type, and one-line errors."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import pytest

from rapid_env.specs import (
    SpecError,
    build_config,
    describe_fields,
    parse_spec,
    split_specs,
)

Where = int | Literal["edge", "cloud"] | None


@dataclass(frozen=True)
class Cfg:
    """Every field kind a spec can set."""

    n: int = 1
    x: float = 0.5
    flag: bool = True
    label: str = "a"
    mode: Literal["fast", "slow"] = "fast"
    where: Where = None
    limit: float | None = None
    tag: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.x <= 1:
            raise ValueError(f"x must be in [0, 1], got {self.x!r}")
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")


@dataclass(frozen=True)
class Empty:
    """No options."""


ALLOWED = ("n: int, x: float, flag: bool, label: str, mode: fast|slow, "
           "where: int|edge|cloud|none, limit: float|none, tag: str|none")


# ------------------------------------------------------------------------------------ grammar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rapid", ("rapid", {})),
        ("rapid()", ("rapid", {})),
        ("  rapid ( ) ", ("rapid", {})),
        ("rapid(high_threshold=6,cooldown_s=0.1)",
         ("rapid", {"high_threshold": "6", "cooldown_s": "0.1"})),
        (" rapid ( high_threshold = 6 , cooldown_s=0.1 ) ",
         ("rapid", {"high_threshold": "6", "cooldown_s": "0.1"})),
        ("chunk-threshold(threshold=0.25)", ("chunk-threshold", {"threshold": "0.25"})),
        ("vision-entropy(signal=image+policy)", ("vision-entropy", {"signal": "image+policy"})),
        ("t(v=-1e-3,w=inf)", ("t", {"v": "-1e-3", "w": "inf"})),
        ("t(s='a, (b)=c')", ("t", {"s": "'a, (b)=c'"})),
        ('t(s="none")', ("t", {"s": '"none"'})),
        ("sb3:runs/x", ("sb3:runs/x", {})),
    ],
)
def test_parse_spec(text, expected):
    assert parse_spec(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("(a=1)", "missing name"),
        ("rapid(high_threshold=6", "missing ')'"),
        ("rapid(high_threshold=6,", "missing ')'"),
        ("rapid)", "')' without '('"),
        ("rapid(high_threshold)", "missing '=' after 'high_threshold'"),
        ("rapid(high_threshold 6)", "missing '=' after 'high_threshold'"),
        ("rapid(=6)", "empty key"),
        ("rapid(a=1,,b=2)", "empty key"),
        ("rapid(a=1,)", "empty key"),
        ("rapid(a=)", "empty value for 'a'"),
        ("rapid(a=(1))", "unexpected '(' in the value of 'a'"),
        ("rapid(a=1,a=2)", "duplicate key 'a'"),
        ("rapid(a=1)x", "unexpected text 'x' after ')'"),
        ("rapid(a=1)(b=2)", "unexpected text '(b=2)'"),
        ("rapid(a=1 2)", "unexpected '2' after a=1"),
        ("rapid(a='x)", "unterminated quote"),
        ("rapid(1a=2)", "invalid key '1a' (keys are identifiers: letters, digits, _)"),
        ("rapid(hígh_threshold=1)", "invalid key 'hígh_threshold' (keys are identifiers"),
        ("rapid(high-threshold=1)", "invalid key 'high-threshold'"),
        ("rapid(a=1,é=2)", "invalid key 'é'"),
        ("rapid(+=1)", "invalid key '+'"),
        ("ra pid", "unexpected ' ' in name"),
        ("a=b", "unexpected '=' in name"),
    ],
)
def test_malformed_specs_name_the_text(text, why):
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    msg = str(info.value)
    assert why in msg and repr(text) in msg and "\n" not in msg


def test_split_specs_splits_at_top_level_commas_only():
    text = "rapid,rapid(high_threshold=6,cooldown_s=0.1),chunk-threshold(threshold=0.25)"
    assert split_specs(text) == (
        "rapid", "rapid(high_threshold=6,cooldown_s=0.1)", "chunk-threshold(threshold=0.25)"
    )
    assert split_specs(" a , b( x=1 , y=2 ) ,, c ,") == ("a", "b( x=1 , y=2 )", "c")
    assert split_specs("t(s='a,b'),u") == ("t(s='a,b')", "u")
    assert split_specs("") == ()
    for bad, why in (("a(x=1,b", "missing ')'"), ("a),b", "')' without '('"),
                     ("t(s='a,b", "unterminated quote")):
        with pytest.raises(SpecError, match=re.escape(why)):
            split_specs(bad)


# --------------------------------------------------------------------------------- conversion


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        ({"n": "3"}, "n", 3),
        ({"n": "-0"}, "n", 0),
        ({"x": "0.25"}, "x", 0.25),
        ({"x": "1"}, "x", 1.0),
        ({"x": "1e-1"}, "x", 0.1),
        *[({"flag": w}, "flag", True) for w in ("true", "True", "YES", "1")],
        *[({"flag": w}, "flag", False) for w in ("false", "No", "0")],
        ({"label": "hello"}, "label", "hello"),
        ({"label": "'a, b'"}, "label", "a, b"),
        ({"label": "none"}, "label", "none"),  # a plain str field has no None
        ({"mode": "slow"}, "mode", "slow"),
        ({"where": "edge"}, "where", "edge"),
        ({"where": "3"}, "where", 3),
        ({"where": "none"}, "where", None),
        ({"where": "NULL"}, "where", None),
        ({"limit": "0.2"}, "limit", 0.2),
        ({"limit": "inf"}, "limit", math.inf),
        ({"limit": "None"}, "limit", None),
        ({"tag": "none"}, "tag", None),  # none means None wherever None is allowed...
        ({"tag": "'none'"}, "tag", "none"),  # ...quote it for the string
        ({"tag": '"x"'}, "tag", "x"),
    ],
)
def test_values_convert_by_field_type(overrides, field, value):
    cfg = build_config(Cfg, overrides)
    assert getattr(cfg, field) == value and type(getattr(cfg, field)) is type(value)


def test_build_config_overrides_a_base_and_keeps_the_rest():
    base = Cfg(n=5, mode="slow")
    cfg = build_config(Cfg, {"x": "0.75"}, base)
    assert cfg == Cfg(n=5, x=0.75, mode="slow")
    assert build_config(Cfg, {}, base) is base
    assert build_config(Cfg, {}) == Cfg()
    assert build_config(Empty, {}) == Empty()
    with pytest.raises(TypeError):
        build_config(Cfg, {}, Empty())  # type: ignore[arg-type]


def test_nan_and_inf_are_floats_that_post_init_judges():
    assert math.isnan(build_config(Cfg, {"limit": "nan"}).limit)
    for raw in ("nan", "inf", "-inf"):
        with pytest.raises(SpecError, match=r"^c\(x=.*\): x must be in \[0, 1\]"):
            build_config(Cfg, {"x": raw}, spec=f"c(x={raw})")


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"n": "1.5"}, "n='1.5' is not an int"),
        ({"n": "true"}, "n='true' is not an int"),
        ({"n": "'3'"}, "n=\"'3'\" is not an int"),  # quoted values are strings only
        ({"x": "abc"}, "x='abc' is not a float"),
        ({"flag": "maybe"}, "flag='maybe' is not a bool"),
        ({"mode": "medium"}, "mode='medium' is not one of fast|slow"),
        ({"mode": "FAST"}, "mode='FAST' is not one of fast|slow"),
        ({"where": "middle"}, "where='middle' is not one of int|edge|cloud|none"),
        ({"where": "1.5"}, "where='1.5' is not one of int|edge|cloud|none"),
        ({"limit": "soon"}, "limit='soon' is not a float or none"),
    ],
)
def test_bad_values_name_the_field_and_list_the_allowed_ones(overrides, needle):
    spec = "c(" + ",".join(f"{k}={v}" for k, v in overrides.items()) + ")"
    with pytest.raises(SpecError) as info:
        build_config(Cfg, overrides, spec=spec)
    msg = str(info.value)
    assert msg == f"{spec}: {needle}; allowed: {ALLOWED}"


def test_unknown_fields_are_listed_with_the_allowed_ones():
    with pytest.raises(SpecError) as info:
        build_config(Cfg, {"nope": "1"}, spec="c(nope=1)")
    assert str(info.value) == f"c(nope=1): unknown field 'nope'; allowed: {ALLOWED}"
    with pytest.raises(SpecError) as info:
        build_config(Cfg, {"a": "1", "n": "2", "b": "3"})
    assert str(info.value).startswith("Cfg: unknown fields 'a', 'b'; allowed: n: int")
    with pytest.raises(SpecError) as info:
        build_config(Empty, {"x": "1"}, spec="e(x=1)")
    assert str(info.value) == "e(x=1): unknown field 'x'; allowed: (none)"


def test_post_init_errors_come_back_behind_the_spec():
    with pytest.raises(SpecError) as info:
        build_config(Cfg, {"n": "-2"}, spec="c(n=-2)")
    assert str(info.value) == "c(n=-2): n must be >= 0, got -2"


def test_describe_fields():
    assert describe_fields(Cfg) == ALLOWED
    assert describe_fields(Empty) == "(none)"


def test_unsupported_field_types_are_refused_by_name():
    @dataclass(frozen=True)
    class Odd:
        pair: tuple[int, int] = (1, 2)

    with pytest.raises(SpecError, match="field 'pair' has type tuple, which a spec cannot set"):
        build_config(Odd, {"pair": "1"})
