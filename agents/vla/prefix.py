"""The vision-language prefix that ``ar-token`` and ``flow`` share.

SigLIP-style ViT -> MLP projector -> [image tokens, proprio token, instruction tokens]: the
PaliGemma / Prismatic layout in miniature. With several cameras the one ViT encodes each (they
ride in the batch dimension up to the projector) and their tokens are concatenated in the
config's camera order, each camera's with its learned embedding (pi0's multi-view layout).
Blocks ``vision.embed``, ``vision.layer{i}`` and ``projector``; state keys other than the image
(the flow family's noise, say) pass through.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rapid_env.agents.vla.base import Block, ExecutableVLA
from rapid_env.agents.vla.components import State, pixels_from_uint8, siglip_vision
from rapid_env.agents.vla.config import VLAConfig


class VisionPrefixVLA(ExecutableVLA):
    """Base of the families whose trunk reads a SigLIP-style image prefix."""

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__(cfg)
        w = cfg.width
        self.vision = siglip_vision(cfg)
        self.projector = nn.Sequential(nn.Linear(w, w), nn.GELU(), nn.Linear(w, w))

    def prefix_blocks(self) -> list[Block]:
        """``vision.embed``, ``vision.layer{i}`` and ``projector``."""
        out: list[Block] = [("vision.embed", self._embed)]
        out += [(f"vision.layer{i}", self._vision_layer(i)) for i in range(self.cfg.vision_layers)]
        out.append(("projector", self._project))
        return out

    def _embed(self, s: State) -> State:
        rest = {k: v for k, v in s.items() if k != "image"}
        pixels = pixels_from_uint8(s["image"], self.p_mean.dtype)  # the model's precision
        return {**rest, "h": self.vision.embeddings(pixels)}

    def _vision_layer(self, i: int) -> Callable[[State], State]:
        def run(s: State) -> State:
            return {**s, "h": self.vision.encoder.layers[i](s["h"], None)}

        return run

    def _project(self, s: State) -> State:
        img = self.camera_tokens(self.projector(self.vision.post_layernorm(s["h"])))
        rest = {k: v for k, v in s.items() if k not in ("h", "proprio", "text_ids")}
        return {**rest, "h": self.extend_prefix(torch.cat([img, self.context_tokens(s)], dim=1))}

    def extend_prefix(self, prefix: torch.Tensor) -> torch.Tensor:
        """Hook for tokens appended after the prefix (OFT's empty action slots)."""
        return prefix
