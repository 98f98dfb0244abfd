"""The executable families in another precision: finite float32 chunks close to the fp32 ones.

bfloat16 and float16 both run on the CPU in torch, so these run everywhere; a GPU run differs
only in where the tensors live (the inputs are moved in ``prepare``, the chunk comes back on the
CPU in ``_finish``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rapid_env.agents.torch_device import check_device, place, resolve_dtype
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.split import SplitRunner, deserialise, serialise
from rapid_env.compose import build_policy
from rapid_env.config import EnvConfig
from rapid_env.policy import PolicyInput
from tests.agents.vla.test_models import CASES, inputs, tiny

TOLERANCE = {"bfloat16": 0.05, "float16": 0.01}
"""Largest |action - fp32 action| allowed (actions live in [-1, 1]; bf16 keeps 8 bits)."""


def _observation(policy: VLAPolicy) -> PolicyInput:
    rng = np.random.default_rng(3)
    size = policy.model.cfg.image_size
    frame = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    others = {cam: rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
              for cam in policy.cameras}
    return PolicyInput(image=frame, images=others, instruction="reach the goal",
                       proprio=np.array([0.0, 0.6, 0.2, 0.5], dtype=np.float32))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_chunk_regress_in_half_precision_is_close_to_fp32(dtype):
    ref = build_policy(EnvConfig(policy="chunk-regress"))
    half = build_policy(EnvConfig(policy="chunk-regress", dtype=dtype))
    assert isinstance(ref, VLAPolicy) and isinstance(half, VLAPolicy)
    assert next(half.model.parameters()).dtype == resolve_dtype(dtype)
    inp = _observation(ref)
    for p in (ref, half):
        p.reset(np.random.default_rng(0))
    a, b = ref.act(inp), half.act(inp)
    assert b.dtype == np.float32 and b.shape == a.shape and np.isfinite(b).all()
    assert not np.array_equal(a, b)  # it really ran in another precision
    assert np.abs(a - b).max() < TOLERANCE[dtype]
    chunk, nbytes = half.act_split(inp, 0.5)  # the split runtime ships the half-size state
    assert np.array_equal(chunk, b)
    assert 0 < nbytes < ref.act_split(inp, 0.5)[1]


@pytest.mark.parametrize(("family", "extra"), CASES)
def test_every_family_splits_in_bfloat16_as_it_runs_whole(family, extra):
    model = place(tiny(family, **extra), "cpu", "bfloat16")
    state = inputs(model)
    assert all(t.dtype == torch.bfloat16 for t in state.values() if t.is_floating_point())
    with torch.inference_mode():
        whole = model(state)
    assert whole.dtype == torch.bfloat16 and torch.isfinite(whole.float()).all()
    for k in range(model.n_blocks + 1):
        split = SplitRunner(model, k)(inputs(model)).actions
        assert torch.equal(split, whole), f"{family} k={k}"


def test_a_bfloat16_boundary_round_trips_through_its_bytes():
    state = {"h": torch.randn(2, 3, dtype=torch.bfloat16), "ids": torch.arange(4)}
    back = deserialise(serialise(state))
    assert back["h"].dtype == torch.bfloat16 and torch.equal(back["h"], state["h"])
    assert torch.equal(back["ids"], state["ids"])
    half = deserialise(serialise(state, "fp16"))  # compressed: decoded in float32, then cast
    assert torch.allclose(half["h"], state["h"].float(), atol=1e-2)


def test_the_defaults_leave_the_model_in_fp32_on_the_cpu():
    model = tiny("chunk-regress")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    placed = place(model)
    assert placed is model
    assert all(torch.equal(before[k], v) for k, v in placed.state_dict().items())
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in placed.parameters())


def test_an_absent_device_is_refused_in_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match=r"^device='cuda:0' is not available on this machine; "
                                         r"available: cpu"):
        check_device("cuda:0")
    with pytest.raises(ValueError, match="device='cuda'"):
        build_policy(EnvConfig(policy="chunk-regress", device="cuda"))
