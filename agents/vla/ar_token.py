"""``ar-token``: the OpenVLA recipe in miniature.

SigLIP-style ViT -> MLP projector -> Llama-style causal decoder over [image tokens, proprio
token, instruction tokens], then the action chunk as discrete tokens: each of the ``K x 4`` action
values is one of ``n_bins`` uniform bins over [-1, 1] (OpenVLA: 256 bins per dimension), decoded
greedily token by token with a KV cache. ``decode="parallel"`` is the OpenVLA-OFT option: ``K x 4``
learned empty slots go through the decoder in the same pass and an L1-trained linear head reads a
continuous value from each, so one forward yields the whole chunk.

Blocks: ``vision.embed``, ``vision.layer{i}``, ``projector``, ``llm.layer{i}`` (prefill; the layer's
keys and values join the state so a cloud part can continue decoding), ``llm.decode``.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from transformers.cache_utils import DynamicCache

from rapid_env.agents.vla.base import Block
from rapid_env.agents.vla.components import State, kv_of, llama, llama_layer, rotary
from rapid_env.agents.vla.config import VLAConfig
from rapid_env.agents.vla.prefix import VisionPrefixVLA


class ARTokenVLA(VisionPrefixVLA):
    """OpenVLA-style autoregressive action-token VLA (or OFT-style parallel decoding)."""

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__(cfg)
        w = cfg.width
        self.trunk = llama(w, cfg.trunk_layers, cfg.heads, vocab=cfg.n_bins)
        self.n_slots = cfg.chunk_size * cfg.action_dim
        if cfg.decode == "parallel":
            self.slots = nn.Parameter(torch.randn(self.n_slots, w) * 0.02)
            self.value_head = nn.Linear(w, 1)
        else:
            self.bin_head = nn.Linear(w, cfg.n_bins)
        self.register_buffer("centers", torch.linspace(-1.0, 1.0, cfg.n_bins))

    # ------------------------------------------------------------------ bins
    def to_tokens(self, actions: torch.Tensor) -> torch.Tensor:
        """Continuous actions in [-1, 1] -> bin indices (nearest centre)."""
        n = self.cfg.n_bins
        return ((actions.clamp(-1, 1) + 1) * 0.5 * (n - 1)).round().long()

    # ------------------------------------------------------------------ blocks
    def blocks(self) -> list[Block]:
        """See the module docstring."""
        out = self.prefix_blocks()
        out += [(f"llm.layer{i}", self._llm_layer(i)) for i in range(self.cfg.trunk_layers)]
        out.append(("llm.decode", self._decode))
        return out

    def extend_prefix(self, prefix: torch.Tensor) -> torch.Tensor:
        """In parallel mode the empty action slots follow the prefix."""
        if self.cfg.decode != "parallel":
            return prefix
        slots = self.slots.unsqueeze(0).expand(prefix.shape[0], -1, -1)
        return torch.cat([prefix, slots], dim=1)

    def _llm_layer(self, i: int):  # noqa: ANN202
        def run(s: State) -> State:
            if self.cfg.decode == "parallel":
                return {**s, "h": llama_layer(self.trunk, i, s["h"])}
            cache = DynamicCache(config=self.trunk.config)
            h = llama_layer(self.trunk, i, s["h"], cache=cache)
            k, v = kv_of(cache, i)
            return {**s, "h": h, f"k{i}": k, f"v{i}": v}

        return run

    def _decode(self, s: State) -> State:
        h = self.trunk.norm(s["h"])
        b = h.shape[0]
        if self.cfg.decode == "parallel":
            values = self.value_head(h[:, -self.n_slots :]).squeeze(-1)
            return {"actions": values.reshape(b, self.cfg.chunk_size, self.cfg.action_dim)}
        n_layers = self.cfg.trunk_layers
        cache = DynamicCache(config=self.trunk.config)
        for i in range(n_layers):
            cache.update(s[f"k{i}"], s[f"v{i}"], i)
        pos = h.shape[1]
        tok = self.bin_head(h[:, -1]).argmax(-1)
        tokens = [tok]
        for _ in range(self.n_slots - 1):
            x = self.trunk.embed_tokens(tok).unsqueeze(1)
            cos_sin = rotary(self.trunk, x, pos)
            for i in range(n_layers):
                x = llama_layer(self.trunk, i, x, start=pos, cache=cache, cos_sin=cos_sin)
            pos += 1
            tok = self.bin_head(self.trunk.norm(x[:, -1])).argmax(-1)
            tokens.append(tok)
        centers = cast(torch.Tensor, self.centers)  # a registered buffer (typed Tensor | Module)
        values = centers[torch.stack(tokens, dim=1)]
        return {"actions": values.reshape(b, self.cfg.chunk_size, self.cfg.action_dim)}

    # ------------------------------------------------------------------ training
    def loss(self, state: State, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Cross-entropy on the action tokens (teacher forcing), or L1 in parallel mode."""
        n_pre = 2 + self.cfg.vision_layers  # embed, vision layers, projector
        h = self.run(state, 0, n_pre)["h"]
        b = h.shape[0]
        if self.cfg.decode == "parallel":
            for i in range(self.cfg.trunk_layers):
                h = llama_layer(self.trunk, i, h)
            values = self.value_head(self.trunk.norm(h[:, -self.n_slots :])).squeeze(-1)
            return (values - target.reshape(b, -1)).abs().mean()
        tokens = self.to_tokens(target.reshape(b, -1))
        p = h.shape[1]
        x = torch.cat([h, self.trunk.embed_tokens(tokens[:, :-1])], dim=1)
        for i in range(self.cfg.trunk_layers):
            x = llama_layer(self.trunk, i, x)
        logits = self.bin_head(self.trunk.norm(x[:, p - 1 :]))
        return nn.functional.cross_entropy(logits.reshape(-1, self.cfg.n_bins), tokens.reshape(-1))
