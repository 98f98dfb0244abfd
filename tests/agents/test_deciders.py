"""Deciders other than RAPID (RAPID's own tests are in test_rapid.py)."""

from __future__ import annotations

from rapid_env.agents.fixed_split import FixedSplitDecider
from tests.agents.test_rapid import obs, window


def test_fixed_split_deciders():
    o = obs(window(), remaining=0)
    assert FixedSplitDecider("edge").decide(o).split == 4
    assert FixedSplitDecider("cloud").decide(o).split == 0
    assert FixedSplitDecider("edge").decide(obs(window(), remaining=0, in_flight=1)).kind == "keep"
