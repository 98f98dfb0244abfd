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


# ------------------------------------------------------------------------------ normalisation


def _things() -> ConfigRegistry[object]:
    r: ConfigRegistry[object] = ConfigRegistry("thing")
    r.register_config("t", Cfg, lambda cfg, name: (name, cfg))
    r.register_config("t-half", Cfg, lambda cfg, name: (name, cfg), preset=Cfg(x=0.25))
    r.register("plain", lambda: "plain")
    r.register_prefix("num:", lambda arg: arg, identity=float)
    r.register_prefix("raw:", lambda arg: arg)
    return r


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("t", "t()"),
        ("t", " t ( ) "),
        ("t(n=6)", "t(n=6)"),
        ("t(x=0.5)", "t"),  # the preset's own value
        ("t(x=0.25)", "t(x=.25)"),
        ("t(flag=true)", "t(flag=yes)"),
        ("t(n=1,x=0.5)", "t(x=0.5,n=1)"),
        ("t(limit=none)", "t"),
        ("num:20", "num:20.0"),
        ("plain", "plain"),
    ],
)
def test_two_spellings_of_one_thing_have_one_identity(a: str, b: str) -> None:
    r = _things()
    assert r.identity(a) == r.identity(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("t", "t(n=2)"),
        ("t", "t-half"),  # another name is another thing, even where the configs agree
        ("t-half", "t(x=0.25)"),
        ("t(label=a)", "t(label=b)"),
        ("num:20", "num:21"),
        ("raw:20", "raw:20.0"),  # no identity hook: the argument's text
    ],
)
def test_different_things_have_different_identities(a: str, b: str) -> None:
    r = _things()
    assert r.identity(a) != r.identity(b)


def test_identity_refuses_what_does_not_build() -> None:
    r = _things()
    with pytest.raises(UnknownNameError):
        r.identity("nope")
    with pytest.raises(SpecError, match="invalid key 'ñ'"):
        r.identity("t(ñ=1)")


def test_first_alias_names_both_spellings_and_compares_unknown_names_by_text() -> None:
    from rapid_env.registry import first_alias

    r = _things()
    assert first_alias(["t", "t(n=2)", "t()"], r.identity) == ("t", "t()")
    assert first_alias(["t", "t(n=2)", "plain"], r.identity) is None
    assert first_alias(["nope", "nope()"], r.identity) is None  # reported when it is built


def test_an_invalid_key_gets_the_did_you_mean_of_the_config_fields() -> None:
    r = _things()
    with pytest.raises(SpecError, match=r"invalid key 'lábel'.*did you mean 'label'\?"):
        r.check("t(lábel=x)")


def test_the_shipped_registries_normalise_links_noises_and_deciders() -> None:
    from rapid_env.agents.registry import DECIDERS
    from rapid_env.eval.jobs import check_distinct
    from rapid_env.link import LINKS
    from rapid_env.noise.spec import noise_identity

    assert LINKS.identity("constant:20:40") == LINKS.identity("constant:20.0:40.0")
    assert LINKS.identity("constant:20:40") != LINKS.identity("constant:20:41")
    assert LINKS.identity("trace:a.tsv") == LINKS.identity("trace:./a.tsv:1:40")
    assert LINKS.identity("wifi") != LINKS.identity("ideal")
    assert noise_identity("fog:3") == noise_identity("fog(severity=3)") == (("fog", 3),)
    assert noise_identity("fog:3") != noise_identity("fog:4")
    assert noise_identity("clean") == ()
    preset = DECIDERS.config("rapid")
    assert DECIDERS.identity("rapid") == DECIDERS.identity(
        f"rapid(high_threshold={preset.high_threshold!r})")  # type: ignore[union-attr]
    assert DECIDERS.identity("rapid") != DECIDERS.identity("rapid-acc-only")
    assert DECIDERS.identity("rapid(high_threshold=6)") == DECIDERS.identity(
        "rapid(high_threshold=6.0)")
    assert DECIDERS.identity("sb3:a") == ("sb3:", "a")
    with pytest.raises(ValueError, match=r"^--agents: 'rapid' and 'rapid\(\)' are the same "
                                         r"decider; give it once$"):
        check_distinct("agents", ("rapid", "edge-only", "rapid()"), "--agents")
    with pytest.raises(ValueError, match="links: 'constant:20:40' and 'constant:20.0:40'"):
        check_distinct("links", ("constant:20:40", "constant:20.0:40"))
    check_distinct("agents", ("rapid", "rapid(high_threshold=7)", "rapid-acc-only"))
