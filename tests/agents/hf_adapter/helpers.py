"""Shared inputs, predict glues and tiny LeRobot-like modules for the checkpoint adapter tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from rapid_env.agents.hf_adapter import ADAPTER_FILE, LEROBOT_FACTORIES, register_lerobot_factory
from rapid_env.policy import PolicyInput

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


TINY_PREDICT_REF = "tests.agents.hf_adapter.helpers:tiny_predict"
"""Dotted path to :func:`tiny_predict`, as a checkpoint's adapter file would name it."""


def nan_predict(model: Any, processor: Any, image: Any, proprio: Any, instruction: str) -> Any:
    return np.full((2, 4), np.nan)


def cube_predict(model: Any, processor: Any, image: Any, proprio: Any, instruction: str) -> Any:
    return np.zeros((1, 2, 3, 4))


def copy_ckpt(src: Path, dst: Path, adapter: dict[str, Any] | None = None) -> Path:
    shutil.copytree(src, dst)
    if adapter is not None:
        (dst / ADAPTER_FILE).write_text(json.dumps(adapter))
    return dst


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
