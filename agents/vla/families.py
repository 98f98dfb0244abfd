"""Family name -> model class, and each family's default sizes."""

from __future__ import annotations

from typing import Any

from rapid_env.agents.vla.ar_token import ARTokenVLA
from rapid_env.agents.vla.base import ExecutableVLA
from rapid_env.agents.vla.chunk_regress import ChunkRegressVLA
from rapid_env.agents.vla.config import FAMILIES, VLAConfig
from rapid_env.agents.vla.flow import FlowVLA

MODEL_CLASSES: dict[str, type[ExecutableVLA]] = {
    "ar-token": ARTokenVLA,
    "flow": FlowVLA,
    "chunk-regress": ChunkRegressVLA,
}

# Sizes chosen so each forward stays within ~20 ms on this 2-core CPU at 64 px
# (benchmarks/bench_vla.py).
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "ar-token": {"width": 128, "vision_layers": 3, "trunk_layers": 2, "patch_size": 8},
    "flow": {
        "width": 128,
        "vision_layers": 3,
        "trunk_layers": 2,
        "expert_width": 96,
        "expert_layers": 2,
        "flow_steps": 10,
        "patch_size": 8,
    },
    "chunk-regress": {"width": 128, "vision_layers": 2, "trunk_layers": 2, "expert_layers": 2},
}


def default_config(family: str, **overrides: Any) -> VLAConfig:
    """The family's default :class:`VLAConfig`, with ``overrides`` applied."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; allowed: {', '.join(FAMILIES)}")
    return VLAConfig(family=family, **{**FAMILY_DEFAULTS[family], **overrides})


def build_model(cfg: VLAConfig) -> ExecutableVLA:
    """Instantiate the family's model (random weights)."""
    return MODEL_CLASSES[cfg.family](cfg)
