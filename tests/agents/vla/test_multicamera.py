"""Several cameras, 8-D proprio and 7-D actions (LIBERO's shapes) in every family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rapid_env.agents.vla.checkpoint import load_checkpoint, save_checkpoint
from rapid_env.agents.vla.config import VLAConfig
from rapid_env.agents.vla.families import build_model, default_config
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.split import SplitRunner
from rapid_env.agents.vla.tokenizer import build_tokenizer
from rapid_env.policy import Policy, PolicyInput
from tests.agents.vla.test_models import CASES, TINY

LIBERO = {"cameras": ("agentview", "eye_in_hand"), "proprio_dim": 8, "action_dim": 7}


def libero_policy(family: str, **extra: object) -> VLAPolicy:
    tok = build_tokenizer()
    torch.manual_seed(0)
    cfg = default_config(family, **{**TINY, **LIBERO, "vocab_size": len(tok), **extra})
    return VLAPolicy(build_model(cfg).eval(), tok)


def libero_obs(seed: int = 0, size: int = 32) -> PolicyInput:
    rng = np.random.default_rng(seed)
    agent = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    wrist = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    prop = rng.normal(size=8).astype(np.float32)
    return PolicyInput(agent, prop, "pick up the ketchup", images={"eye_in_hand": wrist})


@pytest.mark.parametrize(("family", "extra"), CASES)
def test_two_camera_model_acts_7d_and_split_equals_unsplit(
    family: str, extra: dict[str, object]
) -> None:
    pol = libero_policy(family, **extra)
    assert isinstance(pol, Policy) and pol.cameras == ("eye_in_hand",)
    pol.reset(np.random.default_rng(1))
    chunk = pol.act(libero_obs())
    assert chunk.shape == (3, 7) and chunk.dtype == np.float32 and np.all(np.abs(chunk) <= 1)
    n = pol.model.n_blocks
    for k in range(n):
        pol.reset(np.random.default_rng(1))
        split_chunk, nbytes = pol.act_split(libero_obs(), k / n)
        assert np.array_equal(split_chunk, chunk), f"{family} split at {k} differs"
        assert nbytes > 0


@pytest.mark.parametrize("family", ["chunk-regress", "ar-token"])
def test_each_camera_reaches_the_actions(family: str) -> None:
    pol = libero_policy(family)
    base = libero_obs()
    ref = pol.act(base)
    other = np.zeros_like(base.images["eye_in_hand"])
    changed = PolicyInput(base.image, base.proprio, base.instruction, images={"eye_in_hand": other})
    assert not np.array_equal(pol.act(changed), ref)


def test_extra_camera_costs_boundary_bytes() -> None:
    torch.manual_seed(0)
    one = build_model(default_config("chunk-regress", **{**TINY, "proprio_dim": 8})).eval()
    two = build_model(default_config("chunk-regress", **{**TINY, **LIBERO})).eval()
    names = one.block_names()
    assert names == two.block_names()
    for k in range(names.index("tokens") + 2):  # image, features and tokens: twice the cameras
        b1 = len(SplitRunner(one, k).edge(one.zero_inputs(1)))
        b2 = len(SplitRunner(two, k).edge(two.zero_inputs(1)))
        assert b2 > b1, f"split {k} ({names[k - 1] if k else 'input'}): {b2} <= {b1}"


def test_missing_camera_and_wrong_proprio_are_refused() -> None:
    pol = libero_policy("chunk-regress")
    base = libero_obs()
    with pytest.raises(ValueError, match="needs the camera image 'eye_in_hand'"):
        pol.act(PolicyInput(base.image, base.proprio, base.instruction))
    with pytest.raises(ValueError, match="reads 8-D proprio, got 4-D"):
        pol.act(PolicyInput(base.image, base.proprio[:4], base.instruction, images=base.images))


def test_config_round_trip_and_validation(tmp_path: Path) -> None:
    pol = libero_policy("chunk-regress")
    save_checkpoint(tmp_path, pol.model, pol.tokenizer, {})
    model, _, _ = load_checkpoint(tmp_path)
    assert model.cfg.cameras == ("agentview", "eye_in_hand") and model.cfg.proprio_dim == 8
    back = VLAPolicy(model, pol.tokenizer)
    assert np.array_equal(back.act(libero_obs()), pol.act(libero_obs()))
    assert VLAConfig().cameras == ("main",) and len(VLAConfig().proprio_mean) == 4
    assert VLAConfig(proprio_dim=8).proprio_std == [1.0] * 8
    with pytest.raises(ValueError, match="distinct"):
        VLAConfig(cameras=("a", "a"))
    with pytest.raises(ValueError, match="allowed: proprio_dim=8"):
        VLAConfig(proprio_dim=8, proprio_mean=[0.0] * 4)
