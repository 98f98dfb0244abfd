"""The configuration of one executable VLA: architecture sizes, decoding and data statistics.

Saved as ``config.json`` next to ``model.safetensors`` so a checkpoint is self-describing; loading
never unpickles.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

FAMILIES = ("ar-token", "flow", "chunk-regress")
DECODE_MODES = ("autoregressive", "parallel")


@dataclass
class VLAConfig:
    """Sizes and options of an executable VLA family.

    Attributes:
        family: ``ar-token`` (OpenVLA-style), ``flow`` (pi0/SmolVLA-style) or ``chunk-regress``
            (ACT/Octo-style).
        image_size: square input side in pixels (the env's ``image_size``).
        chunk_size: actions per chunk (one per control tick).
        action_dim: 4 (Meta-World xyz delta + gripper).
        proprio_dim: 4 (end-effector xyz + gripper opening).
        width: hidden size of the vision encoder and the trunk.
        vision_layers: ViT layers (ar-token, flow) or ResNet stages (chunk-regress).
        patch_size: ViT patch side; ``(image_size / patch_size)^2`` image tokens.
        trunk_layers: layers of the language trunk (Llama-style) or of the ACT encoder.
        heads: attention heads everywhere.
        max_text_tokens: instructions are padded/truncated to this many tokens.
        n_bins: ar-token: uniform bins per action dimension over [-1, 1] (OpenVLA: 256).
        decode: ar-token: ``autoregressive`` (token by token with a KV cache) or ``parallel``
            (OpenVLA-OFT: all chunk slots in one pass, continuous L1 head).
        flow_steps: flow: Euler steps integrating the learned flow (pi0: 10).
        expert_width / expert_layers: flow: the action expert's size; chunk-regress: the decoder's.
        proprio_mean / proprio_std: normalisation statistics measured on the training demos.
        vocab_size: the tokenizer's vocabulary size (set when the tokenizer is built).
    """

    family: str = "chunk-regress"
    image_size: int = 64
    chunk_size: int = 8
    action_dim: int = 4
    proprio_dim: int = 4
    width: int = 128
    vision_layers: int = 3
    patch_size: int = 8
    trunk_layers: int = 2
    heads: int = 4
    max_text_tokens: int = 12
    n_bins: int = 256
    decode: str = "autoregressive"
    flow_steps: int = 10
    expert_width: int = 128
    expert_layers: int = 2
    proprio_mean: list[float] = field(default_factory=lambda: [0.0, 0.6, 0.15, 0.5])
    proprio_std: list[float] = field(default_factory=lambda: [0.1, 0.1, 0.1, 0.5])
    vocab_size: int = 64

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; allowed: {', '.join(FAMILIES)}")
        if self.decode not in DECODE_MODES:
            raise ValueError(f"unknown decode {self.decode!r}; allowed: {', '.join(DECODE_MODES)}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} not divisible by {self.patch_size}")
        for name in ("chunk_size", "width", "vision_layers", "trunk_layers", "heads", "flow_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VLAConfig:
        """Build from JSON, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | Path) -> None:
        """Write ``config.json``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> VLAConfig:
        """Read ``config.json``."""
        return cls.from_dict(json.loads(Path(path).read_text()))
