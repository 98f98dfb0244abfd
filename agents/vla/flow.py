"""``flow``: the pi0 / SmolVLA recipe in miniature.

A vision-language prefix (SigLIP-style ViT -> projector -> Llama-style layers attending
bidirectionally over image, proprio and instruction tokens, as pi0's prefix does) conditions a
small *action expert*: BERT-style layers over ``K`` action tokens that cross-attend to the prefix
(SmolVLA's interleaving, reduced to cross-attention only). The expert predicts the velocity of a
flow from Gaussian noise (t = 1) to the action chunk (t = 0); inference integrates it with
``flow_steps`` Euler steps (pi0: 10), reusing the prefix features at every step.

Training is conditional flow matching (Lipman et al. 2023; pi0's convention): ``x_t = t * noise +
(1 - t) * actions``, target velocity ``noise - actions``, ``t ~ Beta(1.5, 1)`` as in pi0 (more
weight on noisy times).

Blocks: ``vision.embed``, ``vision.layer{i}``, ``projector``, ``vlm.layer{i}``, ``expert.flow``.
The initial noise is drawn when inputs are prepared, so it travels with the state and a split run
integrates exactly the same flow.
"""

from __future__ import annotations

import torch
from torch import nn

from rapid_env.agents.vla.base import Block
from rapid_env.agents.vla.components import (
    State,
    bert,
    bert_layer,
    llama,
    llama_layer,
    sinusoidal,
)
from rapid_env.agents.vla.config import VLAConfig
from rapid_env.agents.vla.prefix import VisionPrefixVLA


class FlowVLA(VisionPrefixVLA):
    """pi0/SmolVLA-style flow-matching VLA."""

    needs_noise = True

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__(cfg)
        w, ew = cfg.width, cfg.expert_width
        self.vlm = llama(w, cfg.trunk_layers, cfg.heads, vocab=1, causal=False)
        self.expert = bert(ew, cfg.expert_layers, cfg.heads, cross=True)
        self.cond_proj = nn.Linear(w, ew)
        self.act_in = nn.Linear(cfg.action_dim, ew)
        self.time_mlp = nn.Sequential(nn.Linear(ew, ew), nn.SiLU(), nn.Linear(ew, ew))
        self.slot_pos = nn.Parameter(torch.randn(cfg.chunk_size, ew) * 0.02)
        self.act_out = nn.Linear(ew, cfg.action_dim)

    def blocks(self) -> list[Block]:
        """See the module docstring."""
        out = self.prefix_blocks()
        out += [(f"vlm.layer{i}", self._vlm_layer(i)) for i in range(self.cfg.trunk_layers)]
        out.append(("expert.flow", self._flow))
        return out

    def _vlm_layer(self, i: int):  # noqa: ANN202
        def run(s: State) -> State:
            return {**s, "h": llama_layer(self.vlm, i, s["h"])}

        return run

    def velocity(self, x: torch.Tensor, t: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """The action expert: velocity of the flow at actions ``x`` (B, K, 4) and times ``t``."""
        e = (
            self.act_in(x)
            + self.slot_pos
            + self.time_mlp(sinusoidal(t, self.cfg.expert_width).to(x.dtype))[:, None]
        )
        for i in range(self.cfg.expert_layers):
            e = bert_layer(self.expert, i, e, memory)
        out: torch.Tensor = self.act_out(e)
        return out

    def memory(self, h: torch.Tensor) -> torch.Tensor:
        """Prefix features in the expert's width (computed once per chunk)."""
        out: torch.Tensor = self.cond_proj(self.vlm.norm(h))
        return out

    def _flow(self, s: State) -> State:
        mem = self.memory(s["h"])
        x = s["noise"]
        n = self.cfg.flow_steps
        for step in range(n):
            t = torch.full((x.shape[0],), 1.0 - step / n, device=x.device)
            x = x - self.velocity(x, t, mem) / n
        return {"actions": x}

    def loss(self, state: State, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Conditional flow matching loss."""
        h = self.run(state, 0, len(self.blocks()) - 1)["h"]
        b = target.shape[0]
        u = torch.rand(b, generator=gen)
        t = 0.001 + 0.999 * (1.0 - u ** (1.0 / 1.5))  # Beta(1, 1.5) on 1 - t: pi0's time sampling
        noise = torch.randn(target.shape, generator=gen)
        xt = t[:, None, None] * noise + (1 - t[:, None, None]) * target
        pred = self.velocity(xt, t, self.memory(h))
        return ((pred - (noise - target)) ** 2).mean()
