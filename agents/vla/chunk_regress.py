"""``chunk-regress``: the ACT / Octo recipe in miniature.

A small ResNet turns each camera's image into a feature map whose cells become tokens (ACT's
backbone, ResNet-18 there; one backbone for all cameras, a learned embedding per camera); a BERT
encoder mixes them with the proprio and instruction tokens; a decoder of
``K`` learned chunk queries cross-attends to that memory (ACT's DETR-style decoder) and a linear
head regresses the chunk, trained with L1 as in ACT. ACT's CVAE latent is left out: scripted
demonstrations are unimodal, so the latent would carry nothing (ACT's own ablation on scripted
data shows the same).

Blocks: ``resnet.embedder``, ``resnet.stage{i}``, ``tokens``, ``encoder.layer{i}``, ``decoder``.
"""

from __future__ import annotations

import torch
from torch import nn

from rapid_env.agents.vla.base import Block, ExecutableVLA
from rapid_env.agents.vla.components import State, bert, bert_layer, pixels_from_uint8, resnet
from rapid_env.agents.vla.config import VLAConfig


class ChunkRegressVLA(ExecutableVLA):
    """ACT/Octo-style chunk regression with learned chunk queries."""

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__(cfg)
        w = cfg.width
        self.backbone = resnet(cfg)
        sizes = self.backbone.config.hidden_sizes
        assert sizes, "the ResNet backbone's config lists its stage widths"
        channels = sizes[-1]
        side = cfg.image_size // 4 // (2 ** (cfg.vision_layers - 1))
        self.feat_proj = nn.Linear(channels, w)
        self.img_pos = nn.Parameter(torch.randn(side * side, w) * 0.02)
        self.ctx_pos = nn.Parameter(torch.randn(1 + cfg.max_text_tokens, w) * 0.02)
        self.encoder = bert(w, cfg.trunk_layers, cfg.heads, cross=False)
        self.decoder = bert(w, cfg.expert_layers, cfg.heads, cross=True)
        self.queries = nn.Parameter(torch.randn(cfg.chunk_size, w) * 0.02)
        self.head = nn.Linear(w, cfg.action_dim)
        # Training only: regress privileged object/goal positions from the encoder's memory, so
        # the vision tower learns to localise small objects (never part of the forward pass).
        self.aux_head = (
            nn.Sequential(nn.Linear(w, w), nn.GELU(), nn.Linear(w, cfg.aux_dim))
            if cfg.aux_dim else None
        )

    def blocks(self) -> list[Block]:
        """See the module docstring."""
        out: list[Block] = [("resnet.embedder", self._embed)]
        out += [(f"resnet.stage{i}", self._stage(i)) for i in range(self.cfg.vision_layers)]
        out.append(("tokens", self._tokens))
        out += [(f"encoder.layer{i}", self._enc_layer(i)) for i in range(self.cfg.trunk_layers)]
        out.append(("decoder", self._decode))
        return out

    def _embed(self, s: State) -> State:
        return {
            "h": self.backbone.embedder(pixels_from_uint8(s["image"], self.p_mean.dtype)),
            "proprio": s["proprio"],
            "text_ids": s["text_ids"],
        }

    def _stage(self, i: int):  # noqa: ANN202 - a closure over the stage index
        def run(s: State) -> State:
            return {**s, "h": self.backbone.encoder.stages[i](s["h"])}

        return run

    def _tokens(self, s: State) -> State:
        img = self.feat_proj(s["h"].flatten(2).transpose(1, 2)) + self.img_pos
        img = self.camera_tokens(img)
        ctx = self.context_tokens(s) + self.ctx_pos
        return {"h": torch.cat([img, ctx], dim=1)}

    def _enc_layer(self, i: int):  # noqa: ANN202
        def run(s: State) -> State:
            return {"h": bert_layer(self.encoder, i, s["h"])}

        return run

    def _decode(self, s: State) -> State:
        q = self.queries.unsqueeze(0).expand(s["h"].shape[0], -1, -1)
        for i in range(self.cfg.expert_layers):
            q = bert_layer(self.decoder, i, q, s["h"])
        return {"actions": self.head(q)}

    def loss(
        self,
        state: State,
        target: torch.Tensor,
        gen: torch.Generator,
        aux_target: torch.Tensor | None = None,
        aux_weight: float = 0.0,
    ) -> torch.Tensor:
        """L1 between the regressed and the expert chunk (ACT), plus the auxiliary term.

        With ``aux_target`` (B, aux_dim) normalised object/goal positions and an ``aux_head``,
        ``aux_weight`` times the mean squared error of their regression from the mean-pooled
        encoder memory is added.
        """
        last = self.n_blocks - 1
        memory = self.run(state, 0, last)
        loss = (self.run(memory, last)["actions"] - target).abs().mean()
        if aux_target is not None and self.aux_head is not None and aux_weight > 0:
            pred = self.aux_head(memory["h"].mean(dim=1))
            loss = loss + aux_weight * nn.functional.mse_loss(pred, aux_target)
        return loss
