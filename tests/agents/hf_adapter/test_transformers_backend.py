"""The transformers backend, on a tiny Llama checkpoint written by the conftest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rapid_env.agents.hf_adapter import (
    ActionMap,
    HFPolicyAdapter,
    LoadOptions,
    PolicyBackend,
    TransformersBackend,
    predict_action_default,
)
from rapid_env.policy import Policy, PolicyInput
from tests.agents.hf_adapter.helpers import (
    TINY_PREDICT_REF,
    H,
    W,
    copy_ckpt,
    cube_predict,
    make_input,
    nan_predict,
    tiny_predict,
)


def test_transformers_checkpoint_acts_as_policy(hf_ckpt: Path) -> None:
    policy = HFPolicyAdapter(hf_ckpt, chunk_size=8, predict=tiny_predict)
    assert isinstance(policy, Policy)
    assert policy.layout == "transformers"
    assert policy.name == f"hf:{hf_ckpt.name}"
    assert policy.processor is not None and policy.needs_image

    policy.reset(np.random.default_rng(0))
    chunk = policy.act(make_input())
    assert chunk.shape == (8, 4) and chunk.dtype == np.float32
    assert np.all(np.abs(chunk) <= 1.0)
    # predict gave 3 actions: the other 5 hold the last one
    np.testing.assert_array_equal(chunk[3:], np.repeat(chunk[2:3], 5, axis=0))
    assert not np.array_equal(chunk[0], chunk[1])

    np.testing.assert_array_equal(policy.act(make_input()), chunk)  # deterministic
    policy.reset(np.random.default_rng(1))
    np.testing.assert_array_equal(policy.act(make_input()), chunk)
    assert not np.array_equal(policy.act(make_input("push the puck")), chunk)
    assert not np.array_equal(policy.act(make_input(shift=0.05)), chunk)


def test_backend_loads_and_returns_raw_predict_output(hf_ckpt: Path) -> None:
    options = LoadOptions(predict=tiny_predict, predict_kwargs={"n_actions": 2, "width": 7})
    config = json.loads((hf_ckpt / "config.json").read_text())
    backend = TransformersBackend.load(hf_ckpt, config, options)
    assert isinstance(backend, PolicyBackend)
    assert backend.layout == "transformers" and backend.needs_image
    assert backend.source == f"predict for {hf_ckpt}"
    backend.reset()  # nothing to clear, must not fail
    inp = make_input()
    with torch.inference_mode():
        raw = backend.forward(inp)
        expected = tiny_predict(
            backend.model, backend.processor, inp.image, inp.proprio, inp.instruction, 2, 7
        )
    np.testing.assert_array_equal(raw, expected)  # unmapped: (2, 7), the map is the adapter's


def test_adapter_file_names_predict_kwargs_and_action_map(hf_ckpt: Path, tmp_path: Path) -> None:
    amap = {"xyz_scale": 0.5, "gripper_open": 1.0, "gripper_closed": 0.0}
    path = copy_ckpt(
        hf_ckpt,
        tmp_path / "ckpt",
        {
            "predict": TINY_PREDICT_REF,
            "predict_kwargs": {"n_actions": 12, "width": 7},
            "action_map": amap,
        },
    )
    # the file names code to import: only with the user's trust (tests/.../test_trust.py)
    policy = HFPolicyAdapter(path, chunk_size=5, trust_checkpoint_code=True)
    assert policy.action_map == ActionMap(xyz_scale=0.5, gripper_open=1.0, gripper_closed=0.0)
    inp = make_input()
    chunk = policy.act(inp)
    assert chunk.shape == (5, 4)  # 12 predicted, truncated
    with torch.no_grad():
        native = tiny_predict(
            policy.model, policy.processor, inp.image, inp.proprio, inp.instruction, 12, 7
        )
    expected = ActionMap.from_dict(amap)(native)[:5]
    np.testing.assert_allclose(chunk, expected, atol=1e-6)
    # explicit arguments win over the file
    override = HFPolicyAdapter(
        path, chunk_size=5, predict_kwargs={"n_actions": 1, "width": 4}, trust_checkpoint_code=True
    )
    out = override.act(inp)
    assert np.all(out == out[0])


@pytest.mark.parametrize(
    ("predict", "match"),
    [(nan_predict, "non-finite"), (cube_predict, r"shape \(1, 2, 3, 4\)")],
)
def test_bad_predict_output_is_named(hf_ckpt: Path, predict: Any, match: str) -> None:
    policy = HFPolicyAdapter(hf_ckpt, predict=predict)
    with pytest.raises(ValueError, match=match):
        policy.act(make_input())


def test_unmappable_width_asks_for_indices(hf_ckpt: Path) -> None:
    policy = HFPolicyAdapter(hf_ckpt, predict=tiny_predict, predict_kwargs={"width": 5})
    with pytest.raises(ValueError, match="5-D model action.*ActionMap.indices"):
        policy.act(make_input())


def test_missing_image_is_an_error(hf_ckpt: Path) -> None:
    policy = HFPolicyAdapter(hf_ckpt, predict=tiny_predict)
    inp = make_input()
    with pytest.raises(ValueError, match="needs a camera image"):
        policy.act(PolicyInput(None, inp.proprio, inp.instruction))


def test_transformers_errors_name_the_path(hf_ckpt: Path, tmp_path: Path) -> None:
    no_weights = copy_ckpt(hf_ckpt, tmp_path / "no-weights")
    (no_weights / "model.safetensors").rename(no_weights / "pytorch_model.bin")
    with pytest.raises(ValueError, match=f"no safetensors weights in {no_weights}"):
        HFPolicyAdapter(no_weights, predict=tiny_predict)

    with pytest.raises(ValueError, match="cannot import predict callable 'nope.nothing:fn'"):
        HFPolicyAdapter(hf_ckpt, predict="nope.nothing:fn")

    bad_keys = copy_ckpt(hf_ckpt, tmp_path / "bad-keys", {"predikt": "x:y"})
    with pytest.raises(ValueError, match=r"unknown keys \['predikt'\]"):
        HFPolicyAdapter(bad_keys)

    broken = copy_ckpt(hf_ckpt, tmp_path / "broken")
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=f"cannot read {broken / 'config.json'}"):
        HFPolicyAdapter(broken)

    with pytest.raises(ValueError, match="dtype must name a torch dtype"):
        HFPolicyAdapter(hf_ckpt, predict=tiny_predict, dtype="float99")


def test_default_predict_follows_openvla_usage() -> None:
    calls: dict[str, Any] = {}

    class FakeVLA:
        def predict_action(self, **kwargs: Any) -> np.ndarray:
            calls.update(kwargs)
            return np.array([0.01, 0.0, -0.01, 0.0, 0.0, 0.0, 1.0])

    def processor(text: str, image: Any) -> dict[str, Any]:
        return {"prompt": text, "size": image.size}

    inp = make_input("Pick the cube")
    out = predict_action_default(
        FakeVLA(), processor, inp.image, inp.proprio, inp.instruction, unnorm_key="bridge_orig"
    )
    assert out.shape == (7,)
    assert calls == {
        "prompt": "In: What action should the robot take to pick the cube?\nOut:",
        "size": (W, H),
        "unnorm_key": "bridge_orig",
        "do_sample": False,
    }
    with pytest.raises(ValueError, match="predict_action"):
        predict_action_default(object(), processor, inp.image, inp.proprio, inp.instruction)
