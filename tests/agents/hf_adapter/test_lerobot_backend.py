"""The LeRobot backend, on tiny LeRobot-like modules saved as safetensors here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rapid_env.agents.hf_adapter import (
    ActionMap,
    HFPolicyAdapter,
    LeRobotBackend,
    LoadOptions,
    PolicyBackend,
    fit_chunk,
    register_lerobot_factory,
)
from rapid_env.agents.hf_adapter.lerobot_backend import LEROBOT_FACTORIES
from rapid_env.policy import Policy, PolicyInput
from tests.agents.hf_adapter.helpers import (
    CHUNK_CONFIG,
    TinyChunkPolicy,
    TinySelectPolicy,
    make_input,
    tiny_predict,
    write_lerobot,
)


def test_lerobot_checkpoint_acts_as_policy(tmp_path: Path) -> None:
    torch.manual_seed(3)
    saved = TinyChunkPolicy(6, 7)
    path = write_lerobot(tmp_path / "act", saved, CHUNK_CONFIG)
    amap = ActionMap(gripper_open=1.0, gripper_closed=-1.0)
    policy = HFPolicyAdapter(path, chunk_size=8, action_map=amap)
    assert policy.layout == "lerobot" and isinstance(policy, Policy)

    policy.reset(np.random.default_rng(0))
    assert policy.model.resets == 1
    inp = make_input()
    chunk = policy.act(inp)
    assert chunk.shape == (8, 4) and chunk.dtype == np.float32
    np.testing.assert_array_equal(chunk, policy.act(inp))
    # the saved weights were loaded: compare with the module that wrote them
    with torch.no_grad():
        batch = {
            "observation.state": torch.as_tensor(inp.proprio)[None],
            "observation.images.top": torch.as_tensor(inp.image).permute(2, 0, 1).float()[None]
            / 255.0,
        }
        native = saved.predict_action_chunk(batch)[0].numpy()
    expected = fit_chunk(amap(native), 8)
    np.testing.assert_allclose(chunk, expected, atol=1e-6)
    np.testing.assert_array_equal(chunk[0, 3], -np.clip(native[0, 6], -1, 1).astype(np.float32))


def test_backend_builds_the_batch_and_returns_the_raw_chunk(tmp_path: Path) -> None:
    torch.manual_seed(4)
    saved = TinyChunkPolicy(6, 7)
    path = write_lerobot(tmp_path / "act", saved, CHUNK_CONFIG)
    backend = LeRobotBackend.load(path, dict(CHUNK_CONFIG), LoadOptions())
    assert isinstance(backend, PolicyBackend)
    assert backend.layout == "lerobot" and backend.needs_image and backend.processor is None
    assert backend.image_keys == ["observation.images.top"]
    assert backend.source == f"LeRobot module from {path}"
    backend.reset()
    assert backend.model.resets == 1
    with torch.inference_mode():
        raw = backend.forward(make_input())
    assert tuple(raw.shape) == (1, 6, 7)  # unmapped, batch dim kept: the action map squeezes it


def test_lerobot_select_action_is_held_for_the_chunk(tmp_path: Path) -> None:
    config = {"type": "tiny_select", "input_features": {"observation.state": {"type": "STATE"}}}
    path = write_lerobot(tmp_path / "sel", TinySelectPolicy(), config)
    policy = HFPolicyAdapter(path, chunk_size=3)
    assert not policy.needs_image  # no VISUAL feature in the config
    inp = make_input("open the drawer")
    chunk = policy.act(PolicyInput(None, inp.proprio, inp.instruction))
    assert chunk.shape == (3, 4)
    assert np.all(chunk == chunk[0])


def test_lerobot_errors_name_the_path(tmp_path: Path) -> None:
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text(json.dumps(CHUNK_CONFIG))
    with pytest.raises(ValueError, match=f"no safetensors weights in {no_weights}"):
        HFPolicyAdapter(no_weights)

    unknown = write_lerobot(tmp_path / "unknown", TinySelectPolicy(), {"type": "pi9"})
    with pytest.raises(ValueError, match="no factory for LeRobot type 'pi9'"):
        HFPolicyAdapter(unknown)

    wrong = write_lerobot(tmp_path / "wrong", TinySelectPolicy(), CHUNK_CONFIG)
    with pytest.raises(ValueError, match="do not fit the 'tiny_chunk' module"):
        HFPolicyAdapter(wrong)

    sel = write_lerobot(tmp_path / "sel", TinySelectPolicy(), {"type": "tiny_select"})
    with pytest.raises(ValueError, match="predict= applies to the transformers layout only"):
        HFPolicyAdapter(sel, predict=tiny_predict)

    with pytest.raises(ValueError, match="already registered"):
        register_lerobot_factory("tiny_select", lambda c: TinySelectPolicy())


class TwoCameraPolicy(torch.nn.Module):
    """LeRobot-like: returns the mean of each camera, so the test sees which frame fed which."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(1, 1)  # something to load

    def predict_action_chunk(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        top = batch["observation.images.top"].mean()
        wrist = batch["observation.images.wrist"].mean()
        return torch.stack([top, wrist, top, wrist]).view(1, 1, 4)


if "two_camera" not in LEROBOT_FACTORIES:
    register_lerobot_factory("two_camera", lambda c: TwoCameraPolicy())

TWO_CAMERAS = {"type": "two_camera", "input_features": {
    "observation.state": {"type": "STATE", "shape": [4]},
    "observation.images.top": {"type": "VISUAL", "shape": [3, 8, 8]},
    "observation.images.wrist": {"type": "VISUAL", "shape": [3, 8, 8]}}}


def test_a_wrist_key_is_fed_the_tasks_wrist_camera(tmp_path: Path) -> None:
    path = write_lerobot(tmp_path / "two", TwoCameraPolicy(), TWO_CAMERAS)
    policy = HFPolicyAdapter(path, chunk_size=1, wrist_camera="gripperPOV")
    assert policy.cameras == ("gripperPOV",)  # the loop renders it into PolicyInput.images
    main = np.full((8, 8, 3), 51, np.uint8)
    wrist = np.full((8, 8, 3), 204, np.uint8)
    inp = PolicyInput(main, np.zeros(4, np.float32), "reach", images={"gripperPOV": wrist})
    with torch.inference_mode():
        raw = policy._backend.forward(inp)
    np.testing.assert_allclose(raw[0, 0].numpy(), [0.2, 0.8, 0.2, 0.8], atol=1e-6)
    with pytest.raises(ValueError, match=r"reads camera 'gripperPOV'.*the input has \[\]"):
        policy._backend.forward(PolicyInput(main, np.zeros(4, np.float32), "reach"))


def test_cameras_the_task_cannot_feed_are_refused(tmp_path: Path) -> None:
    path = write_lerobot(tmp_path / "two", TwoCameraPolicy(), TWO_CAMERAS)
    with pytest.raises(ValueError, match="wrist camera and the task's is not known"):
        HFPolicyAdapter(path, chunk_size=1)
    three = json.loads(json.dumps(TWO_CAMERAS))
    three["input_features"]["observation.images.side"] = {"type": "VISUAL", "shape": [3, 8, 8]}
    path3 = write_lerobot(tmp_path / "three", TwoCameraPolicy(), three)
    with pytest.raises(ValueError, match="one main and one wrist camera"):
        HFPolicyAdapter(path3, chunk_size=1, wrist_camera="gripperPOV")


def test_hf_policies_get_their_suites_wrist_camera(tmp_path: Path) -> None:
    from rapid_env.compose import build_policy
    from rapid_env.config import EnvConfig

    path = write_lerobot(tmp_path / "two", TwoCameraPolicy(), TWO_CAMERAS)
    policy = build_policy(EnvConfig(task="reach", policy=f"hf:{path}"))
    assert policy.cameras == ("gripperPOV",)
