"""The checkpoints that ship with the package load and really solve an easy task."""

from __future__ import annotations

import pytest

from rapid_env.agents.vla.checkpoint import shipped_checkpoint
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.train import evaluate

FAMILIES = ("ar-token", "flow", "chunk-regress")


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_checkpoint_is_small_and_documented(family: str) -> None:
    path = shipped_checkpoint(family)
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size <= 20e6, f"{family} checkpoint is {size / 1e6:.1f} MB"
    pol = VLAPolicy.shipped(family)
    card = (path / "card.json").read_text()
    assert '"evaluation"' in card and pol.model.cfg.family == family


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_checkpoint_solves_an_easy_task(family: str) -> None:
    result = evaluate(VLAPolicy.shipped(family), ["drawer-close"], seeds=3, verbose=False)
    assert result["mean"] > 0.0, f"{family} solved none of 3 drawer-close episodes"
