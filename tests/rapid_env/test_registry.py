"""Registries: exact names and parametrised ``prefix:`` names fail and succeed alike."""

from __future__ import annotations

import pytest

from rapid_env.registry import ConfigRegistry, Registry, UnknownNameError
from rapid_env.specs import SpecError
from tests.rapid_env.test_specs import Cfg, Empty


def test_prefix_names_pass_their_argument() -> None:
    r: Registry[str] = Registry("thing")
    r.register("plain", lambda x="": f"plain{x}")
    r.register_prefix("file:", lambda arg, x="": f"{arg}{x}")
    assert r.create("plain") == "plain"
    assert r.create("file:/a/b", x="!") == "/a/b!"
    assert "file:/a" in r and "file:" not in r and "other" not in r
    assert r.names() == ["plain", "file:<...>"]


def test_unknown_and_empty_prefix_names_list_the_allowed_forms() -> None:
    r: Registry[str] = Registry("thing")
    r.register_prefix("file:", lambda arg: arg)
    for bad in ("file:", "nope"):
        with pytest.raises(UnknownNameError, match=r"allowed: file:<\.\.\.>"):
            r.check(bad)
    with pytest.raises(ValueError, match="must end with"):
        r.register_prefix("x", lambda arg: arg)
    with pytest.raises(ValueError, match="already registered"):
        r.register_prefix("file:", lambda arg: arg)


# --------------------------------------------------------------- config registry (name(k=v) specs)


def _registry() -> ConfigRegistry[tuple[str, Cfg | None]]:
    r: ConfigRegistry[tuple[str, Cfg | None]] = ConfigRegistry("thing")
    r.register_config("t", Cfg, lambda cfg, name: (name, cfg))
    r.register_config("t-slow", Cfg, lambda cfg, name: (name, cfg), preset=Cfg(mode="slow"))
    r.register("plain", lambda: ("plain", None))
    r.register_prefix("file:", lambda arg: (arg, None))
    return r


def test_registry_builds_plain_names_presets_and_specs():
    r = _registry()
    assert r.names() == ["t", "t-slow", "plain", "file:<...>"]
    assert r.create("t") == ("t", Cfg())
    assert r.create("t-slow") == ("t-slow", Cfg(mode="slow"))
    assert r.create("t-slow(n=4)") == ("t-slow(n=4)", Cfg(n=4, mode="slow"))
    assert r.create(" t( n = 4 ) ") == (" t( n = 4 ) ", Cfg(n=4))  # the name is the text as given
    assert r.create("t()") == ("t()", Cfg())
    assert r.create("plain") == r.create("plain()") == ("plain", None)
    assert r.create("file:a(b)=c") == ("a(b)=c", None)  # a prefix argument is never parsed
    assert r.config("t-slow(x=0)") == Cfg(x=0.0, mode="slow")
    assert r.config("t-slow") == Cfg(mode="slow") and r.config("plain") is None
    assert r.config_class("t") is Cfg and r.config_class("plain") is None
    assert r.check("t(n=2)") == "t(n=2)"
    assert "t(n=2)" in r and "t(n=x)" not in r and "u(n=2)" not in r and 3 not in r


def test_registry_errors():
    r = _registry()
    with pytest.raises(UnknownNameError, match=r"unknown thing 'u'; allowed: t, t-slow, plain"):
        r.check("u(n=1)")
    with pytest.raises(SpecError, match=r"^t\(nope=1\): unknown field 'nope'; allowed: n: int"):
        r.create("t(nope=1)")
    with pytest.raises(SpecError, match=r"^plain\(x=1\): thing 'plain' takes no options"):
        r.check("plain(x=1)")
    with pytest.raises(SpecError, match="bad spec 't\\(n=1'"):
        r.check("t(n=1")
    with pytest.raises(ValueError, match="already registered"):
        r.register_config("t", Cfg, lambda cfg, name: (name, cfg))
    with pytest.raises(TypeError, match="not a dataclass"):
        r.register_config("u", int, lambda cfg, name: (name, cfg))
    with pytest.raises(TypeError, match="preset"):
        r.register_config("u", Cfg, lambda cfg, name: (name, cfg), preset=Empty())
    with pytest.raises(ValueError, match="cannot be written in a spec"):
        r.register_config("u v", Cfg, lambda cfg, name: (name, cfg))


# --------------------------------------------------------------- one style for every registry


def test_extras_forms_order_and_the_decorator() -> None:
    r: Registry[str] = Registry("thing")

    @r.add("deco", colour="red")
    def _deco() -> str:
        return "built"

    r.register_prefix("file:", lambda arg: arg, form="file:<path>", colour="blue")
    r.register("plain", lambda: "p")
    assert r.names() == ["deco", "file:<path>", "plain"]  # registration order, forms as given
    assert r.create("deco") == "built"
    assert r.extra("deco", "colour") == "red" and r.extra("file:/x", "colour") == "blue"
    assert r.extra("plain", "colour", "none") == "none"
    with pytest.raises(UnknownNameError):
        r.extra("other", "colour")
    with pytest.raises(ValueError, match="already registered"):
        r.register("file:", lambda: "x")


def test_unknown_names_say_did_you_mean() -> None:
    r = _registry()
    with pytest.raises(UnknownNameError, match=r"allowed: t, t-slow, plain, file:<\.\.\.>; "
                                               r"did you mean 'plain'\?$") as info:
        r.check("plian")
    assert info.value.suggestions == ["plain"]
    with pytest.raises(UnknownNameError, match=r"did you mean 'file:'\?$"):
        r.check("fille:")
    with pytest.raises(UnknownNameError, match=r"did you mean 't-slow'\?$"):
        r.create("t-slw(n=2)")  # a spec's name is matched too
    with pytest.raises(UnknownNameError, match=r"allowed: t, t-slow, plain, file:<\.\.\.>$"):
        r.check("zzzzzz")  # nothing close: no guess
    assert r.extra("t(n=2)", "missing") is None
