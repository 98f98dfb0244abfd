"""Registries: exact names and parametrised ``prefix:`` names fail and succeed alike."""

from __future__ import annotations

import pytest

from rapid_env.registry import Registry, UnknownNameError


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
