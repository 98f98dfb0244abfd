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
_MW_MEAN = (0.0, 0.6, 0.15, 0.5)  # Meta-World's workspace, the defaults of 4-D proprio
_MW_STD = (0.1, 0.1, 0.1, 0.5)


@dataclass
class VLAConfig:
    """Sizes and options of an executable VLA family.

    Attributes:
        family: ``ar-token`` (OpenVLA-style), ``flow`` (pi0/SmolVLA-style) or ``chunk-regress``
            (ACT/Octo-style).
        image_size: square input side in pixels (the env's ``image_size``).
        chunk_size: actions per chunk (one per control tick).
        action_dim: width of one action: 4 for Meta-World (xyz delta + gripper), 7 for LIBERO
            (OSC-pose delta: xyz, axis-angle, gripper).
        proprio_dim: width of the proprio vector: 4 for Meta-World (end-effector xyz + gripper
            opening), 8 for LIBERO (LeRobot's state: eef xyz, axis-angle, two gripper joints).
        cameras: the cameras the model reads, in token order. The first is the task's main
            camera (``PolicyInput.image``, whatever the task calls it); the others are read by
            name from ``PolicyInput.images`` (LIBERO: ``("agentview", "eye_in_hand")``). Every
            camera goes through the same vision tower (shared weights); with more than one, a
            learned per-camera embedding tells their tokens apart, as in Octo and pi0.
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
        proprio_mean / proprio_std: normalisation statistics measured on the training demos;
            left empty, Meta-World's rough workspace statistics (4-D) or 0 / 1 (other widths).
        vocab_size: the tokenizer's vocabulary size (set when the tokenizer is built).
        aux_dim: chunk-regress: width of the training-only head that regresses privileged object
            and goal positions from the encoder (0: none; Meta-World's targets are 9-D).
    """

    family: str = "chunk-regress"
    image_size: int = 64
    chunk_size: int = 8
    action_dim: int = 4
    proprio_dim: int = 4
    cameras: tuple[str, ...] = ("main",)
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
    proprio_mean: list[float] = field(default_factory=list)
    proprio_std: list[float] = field(default_factory=list)
    vocab_size: int = 64
    aux_dim: int = 0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; allowed: {', '.join(FAMILIES)}")
        if self.decode not in DECODE_MODES:
            raise ValueError(f"unknown decode {self.decode!r}; allowed: {', '.join(DECODE_MODES)}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} not divisible by {self.patch_size}")
        mw = self.proprio_dim == 4
        if not self.proprio_mean:
            self.proprio_mean = list(_MW_MEAN) if mw else [0.0] * self.proprio_dim
        if not self.proprio_std:
            self.proprio_std = list(_MW_STD) if mw else [1.0] * self.proprio_dim
        self.cameras = tuple(str(c) for c in self.cameras)  # JSON gives a list back
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras must be distinct names, at least one; got {self.cameras}")
        for name, stats in (("proprio_mean", self.proprio_mean), ("proprio_std", self.proprio_std)):
            if len(stats) != self.proprio_dim:
                raise ValueError(
                    f"{name} has {len(stats)} values; allowed: proprio_dim={self.proprio_dim}"
                )
        sizes = ("chunk_size", "action_dim", "proprio_dim", "width", "vision_layers")
        for name in (*sizes, "trunk_layers", "heads", "flow_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def n_cameras(self) -> int:
        """How many camera images one observation holds."""
        return len(self.cameras)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out = asdict(self)
        out["cameras"] = list(self.cameras)
        return out

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
