"""The checkpoint adapter on tiny checkpoints written here: transformers and LeRobot layouts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from rapid_env.agents.hf_adapter import (
    ADAPTER_FILE,
    LEROBOT_FACTORIES,
    ActionMap,
    HFPolicyAdapter,
    detect_layout,
    fit_chunk,
    hf_policy_factory,
    predict_action_default,
    register_lerobot_factory,
)
from rapid_env.agents.policy import Policy, PolicyInput

H = W = 8
WORDS = ["[UNK]", "[PAD]", "pick", "place", "the", "cube", "push", "puck", "open", "drawer"]


def make_input(instruction: str = "pick the cube", shift: float = 0.0) -> PolicyInput:
    image = (np.arange(H * W * 3).reshape(H, W, 3) % 251).astype(np.uint8)
    proprio = np.array([0.1 + shift, -0.2, 0.3, 0.5], dtype=np.float32)
    return PolicyInput(image=image, proprio=proprio, instruction=instruction)


def tiny_predict(
    model: Any,
    processor: Any,
    image: np.ndarray,
    proprio: np.ndarray,
    instruction: str,
    n_actions: int = 3,
    width: int = 4,
) -> np.ndarray:
    """Glue for the tiny Llama: its last-token logits, shifted by proprio and image, per step."""
    ids = processor(instruction, return_tensors="pt")["input_ids"]
    logits = model(input_ids=ids).logits[0, -1, :width].float().numpy()
    steps = 0.1 * np.arange(n_actions)[:, None]
    return np.tanh(logits[None, :] + steps + proprio.sum() + image.mean() / 255.0)


def nan_predict(model: Any, processor: Any, image: Any, proprio: Any, instruction: str) -> Any:
    return np.full((2, 4), np.nan)


def cube_predict(model: Any, processor: Any, image: Any, proprio: Any, instruction: str) -> Any:
    return np.zeros((1, 2, 3, 4))


@pytest.fixture(scope="module")
def hf_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real transformers checkpoint (tiny Llama + WordLevel tokenizer), saved as safetensors."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]"
    ).save_pretrained(path)
    assert (path / "model.safetensors").is_file()
    return path


def copy_ckpt(src: Path, dst: Path, adapter: dict[str, Any] | None = None) -> Path:
    shutil.copytree(src, dst)
    if adapter is not None:
        (dst / ADAPTER_FILE).write_text(json.dumps(adapter))
    return dst


# --- transformers layout ----------------------------------------------------------------------


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


def test_adapter_file_names_predict_kwargs_and_action_map(hf_ckpt: Path, tmp_path: Path) -> None:
    amap = {"xyz_scale": 0.5, "gripper_open": 1.0, "gripper_closed": 0.0}
    path = copy_ckpt(
        hf_ckpt,
        tmp_path / "ckpt",
        {
            "predict": "tests.agents.test_hf_adapter:tiny_predict",
            "predict_kwargs": {"n_actions": 12, "width": 7},
            "action_map": amap,
        },
    )
    policy = HFPolicyAdapter(path, chunk_size=5)
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
    override = HFPolicyAdapter(path, chunk_size=5, predict_kwargs={"n_actions": 1, "width": 4})
    out = override.act(inp)
    assert np.all(out == out[0])


def test_factory_matches_registry_signature(hf_ckpt: Path) -> None:
    make = hf_policy_factory(hf_ckpt, predict=tiny_predict, name="tiny")
    policy = make("reach", chunk_size=4)
    assert policy.name == "tiny" and policy.chunk_size == 4
    assert policy.act(make_input()).shape == (4, 4)


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


# --- LeRobot layout -----------------------------------------------------------------------------


class TinyChunkPolicy(torch.nn.Module):
    """LeRobot-like: reads state and one camera, returns (1, K, D) from predict_action_chunk."""

    def __init__(self, chunk: int, action_dim: int) -> None:
        super().__init__()
        self.chunk, self.action_dim = chunk, action_dim
        self.head = torch.nn.Linear(5, chunk * action_dim)
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def predict_action_chunk(self, batch: dict[str, Any]) -> torch.Tensor:
        img = batch["observation.images.top"].mean(dim=(1, 2, 3))[:, None]
        x = torch.cat([batch["observation.state"], img], dim=1)
        return torch.tanh(self.head(x)).view(-1, self.chunk, self.action_dim)


class TinySelectPolicy(torch.nn.Module):
    """LeRobot-like policy offering only select_action: one (1, D) action per call."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(4, 4)

    def select_action(self, batch: dict[str, Any]) -> torch.Tensor:
        assert batch["task"] == ["open the drawer"]
        return torch.tanh(self.head(batch["observation.state"]))


if "tiny_chunk" not in LEROBOT_FACTORIES:
    register_lerobot_factory("tiny_chunk", lambda c: TinyChunkPolicy(c["chunk"], c["action_dim"]))
    register_lerobot_factory("tiny_select", lambda c: TinySelectPolicy())


def write_lerobot(path: Path, module: torch.nn.Module, config: dict[str, Any]) -> Path:
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    save_file(module.state_dict(), str(path / "model.safetensors"))
    return path


CHUNK_CONFIG = {
    "type": "tiny_chunk",
    "chunk": 6,
    "action_dim": 7,
    "input_features": {
        "observation.state": {"type": "STATE", "shape": [4]},
        "observation.images.top": {"type": "VISUAL", "shape": [3, H, W]},
    },
}


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


# --- layout, directory and mapping errors --------------------------------------------------------


def test_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"{tmp_path / 'absent'} does not exist"):
        HFPolicyAdapter(tmp_path / "absent")
    with pytest.raises(ValueError, match=f"{tmp_path} has no config.json"):
        HFPolicyAdapter(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"hidden": 3}))
    with pytest.raises(ValueError, match=r"unknown checkpoint layout .*found keys \['hidden'\]"):
        HFPolicyAdapter(tmp_path)
    with pytest.raises(ValueError, match="chunk_size must be >= 1, got 0"):
        HFPolicyAdapter(tmp_path, chunk_size=0)


def test_detect_layout() -> None:
    assert detect_layout(Path("x"), {"model_type": "llama"}) == "transformers"
    assert detect_layout(Path("x"), {"architectures": ["OpenVLAForActionPrediction"]}) == (
        "transformers"
    )
    assert detect_layout(Path("x"), {"type": "act"}) == "lerobot"


def test_action_map_defaults_and_conventions() -> None:
    four = np.array([[0.5, -0.5, 2.0, 0.3]])
    np.testing.assert_allclose(ActionMap()(four), [[0.5, -0.5, 1.0, 0.3]], atol=1e-7)

    # OpenVLA: metres per step, gripper 1 = open, 0 = closed; Meta-World: +1 closes
    openvla = ActionMap(xyz_scale=25.0, gripper_open=1.0, gripper_closed=0.0)
    seven = np.array([[0.004, -0.002, 0.02, 0.1, 0.2, 0.3, 1.0], [0, 0, 0, 0, 0, 0, 0.0]])
    np.testing.assert_allclose(openvla(seven), [[0.1, -0.05, 0.5, -1.0], [0, 0, 0, 1.0]], atol=1e-6)

    binary = ActionMap(binarize_gripper=True, indices=(3, 2, 1, 0))
    np.testing.assert_allclose(binary(np.array([[0.1, 0.2, 0.3, 0.4]]))[0], [0.4, 0.3, 0.2, 1])

    unnorm = ActionMap(native_low=(0, 0, 0, -2), native_high=(2, 2, 2, 2), xyz_scale=(1, 0.5, 0))
    np.testing.assert_allclose(unnorm(np.array([[-1.0, 0.0, 1.0, 0.25]])), [[0, 0.5, 0, 0.5]])

    with pytest.raises(ValueError, match="clip is False"):
        ActionMap(clip=False)(np.array([[1.5, 0, 0, 0]]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"indices": (0, 1, 2)}, "4 non-negative ints"),
        ({"gripper_open": 1.0, "gripper_closed": 1.0}, "must differ"),
        ({"native_low": (0, 0, 0, 0)}, "given together"),
        ({"native_low": (0, 0), "native_high": (1, -1)}, "below native_high"),
        ({"xyz_scale": (1.0, 2.0)}, "xyz_scale"),
    ],
)
def test_action_map_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ActionMap(**kwargs)


def test_action_map_round_trips_and_rejects_unknown_fields() -> None:
    amap = ActionMap(
        indices=(0, 1, 2, 6), xyz_scale=(1.0, 2.0, 3.0), gripper_open=1.0, gripper_closed=0.0
    )
    assert ActionMap.from_dict(json.loads(json.dumps(amap.to_dict()))) == amap
    with pytest.raises(ValueError, match=r"unknown ActionMap fields \['scale'\]"):
        ActionMap.from_dict({"scale": 2.0})


def test_fit_chunk_repeats_last_and_truncates() -> None:
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(fit_chunk(a, 4), np.stack([a[0], a[1], a[1], a[1]]))
    np.testing.assert_array_equal(fit_chunk(a, 1), a[:1])
