"""Pinned checkpoint versions (``chunk-regress@v1``): they load the v1 folder's weights for good.

The plain names will move to newer checkpoints; these tests compare against the v1 folder itself
(its card and weights), never against the plain name, so they keep holding after an upgrade.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rapid_env.agents.registry import POLICIES
from rapid_env.agents.vla.checkpoint import shipped_checkpoint
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.shipped import VERSIONED, VERSIONS, checkpoint_folder
from rapid_env.cli.eval import main
from rapid_env.policy import PolicyInput
from rapid_env.registry import UnknownNameError


def _input(seed: int) -> PolicyInput:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    wrist = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # v2 reads it, v1 ignores it
    proprio = np.array([0.0, 0.6, 0.15, 0.5]) + rng.normal(0, 0.05, 4)
    return PolicyInput(image=image, proprio=proprio, instruction="push the puck to the goal",
                       images={"gripperPOV": wrist})


@pytest.mark.parametrize("name", VERSIONED)
def test_a_version_is_its_folder_bit_for_bit(name: str) -> None:
    """``family@v1`` from the registry acts exactly like the v1 folder loaded as ``ckpt:``."""
    folder = shipped_checkpoint(name)
    pinned = POLICIES.create(name, "push")
    by_path = POLICIES.create(f"ckpt:{folder}", "push")
    assert isinstance(pinned, VLAPolicy) and isinstance(by_path, VLAPolicy)
    assert pinned.name == name  # records and logs say which version ran
    assert pinned.model.cfg.family == name.partition("@")[0]
    for seed in (0, 1):
        pinned.reset(np.random.default_rng(seed))  # flow: the same noise stream in both
        by_path.reset(np.random.default_rng(seed))
        np.testing.assert_array_equal(pinned.act(_input(seed)), by_path.act(_input(seed)))


def test_v1_card_is_the_documented_one() -> None:
    """chunk-regress@v1 is the 64 px corner4 one-camera checkpoint whose mean success is 0.65."""
    card = json.loads((shipped_checkpoint("chunk-regress@v1") / "card.json").read_text())
    assert card["family"] == "chunk-regress"
    assert card["evaluation"]["mean"] == pytest.approx(0.65)
    cfg = VLAPolicy.shipped("chunk-regress@v1").model.cfg
    assert (cfg.image_size, cfg.cameras) == (64, ("main",))  # one camera: the task's own
    assert "64 px corner4" in card["data"]  # Meta-World's main camera


@pytest.mark.parametrize("bad", ["chunk-regress@v9", "flow@", "chunk-regress@v1@v1"])
def test_an_unknown_version_is_refused_naming_the_allowed_ones(bad: str) -> None:
    base = bad.partition("@")[0]
    allowed = ", ".join(f"{base}@{v}" for v in VERSIONS[base])
    with pytest.raises(ValueError, match=f"no shipped version .*allowed: {allowed}"):
        VLAPolicy.shipped(bad)
    with pytest.raises(UnknownNameError, match=r"allowed: .*chunk-regress@v1"):
        POLICIES.create(bad, "push")


def test_an_unknown_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no shipped checkpoint 'nope'; allowed: .*flow@v1"):
        checkpoint_folder("nope")
    with pytest.raises(ValueError, match="no shipped checkpoint 'mystery@v1'"):
        shipped_checkpoint("mystery@v1")


def test_rapid_eval_runs_a_pinned_version(tmp_path) -> None:
    """One short episode through the CLI: the name passes validation and lands in the record."""
    out = tmp_path / "r"
    args = ["--tasks", "drawer-close", "--agents", "cloud-only", "--links", "ideal",
            "--episodes", "1", "--max-episode-s", "0.5", "--policy", "chunk-regress@v1",
            "--wandb", "disabled", "--quiet", "--no-report", "--out", str(out)]
    assert main(args) == 0
    (record,) = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert record["policy"] == "chunk-regress@v1" and record["inferences"] > 0
