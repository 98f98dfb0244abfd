"""Building blocks shared by the executable families, all from ``transformers`` small configs.

The helpers here call individual transformer layers instead of a model's ``forward`` so that every
layer can be a split-runtime block (see :mod:`rapid_env.agents.vla.blocks`): the unsplit forward
*is* the block sequence, which is why a split fp32 run is bit-identical to it.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaModel,
    ResNetConfig,
    ResNetModel,
    SiglipVisionConfig,
    SiglipVisionModel,
)
from transformers.cache_utils import DynamicCache

from rapid_env.agents.vla.config import VLAConfig

State = dict[str, torch.Tensor]
# transformers' config classes take this through **kwargs; sdpa is the fast CPU attention.
_SDPA: dict[str, Any] = {"attn_implementation": "sdpa"}


def pixels_from_uint8(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) ``dtype`` in [-1, 1] (SigLIP's normalisation).

    ``dtype`` is the model's precision (bfloat16 weights take bfloat16 pixels).
    """
    return images.permute(0, 3, 1, 2).to(dtype).div(127.5).sub(1.0)


def random_shift(images: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """DrQ-style augmentation: replicate-pad by ``pad`` pixels and crop back at a random offset.

    Takes and returns (B, H, W, 3) uint8 (pixels are copied, never interpolated); one offset per
    sample, drawn from ``gen``.
    """
    b, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2).float()
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (oy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(b, 3, h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = (ox[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(b, 3, h, w)
    return out.gather(3, cols).permute(0, 2, 3, 1).to(torch.uint8)


def siglip_vision(cfg: VLAConfig) -> SiglipVisionModel:
    """A SigLIP-style ViT (conv patch embedding, learned positions, pre-norm layers), no head."""
    return SiglipVisionModel(
        SiglipVisionConfig(
            image_size=cfg.image_size,
            patch_size=cfg.patch_size,
            hidden_size=cfg.width,
            intermediate_size=2 * cfg.width,
            num_hidden_layers=cfg.vision_layers,
            num_attention_heads=cfg.heads,
            vision_use_head=False,
            **_SDPA,
        )
    )


def llama(width: int, layers: int, heads: int, vocab: int, causal: bool = True) -> LlamaModel:
    """A Llama-style decoder stack (RMSNorm, rotary positions, SwiGLU)."""
    model = LlamaModel(
        LlamaConfig(
            vocab_size=vocab,
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=512,
            **_SDPA,
        )
    )
    if not causal:  # pi0's prefix attends bidirectionally
        for layer in model.layers:
            cast(Any, layer.self_attn).is_causal = False
    return model


def llama_layer(
    model: LlamaModel,
    i: int,
    h: torch.Tensor,
    start: int = 0,
    cache: DynamicCache | None = None,
    cos_sin: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run layer ``i`` of ``model`` on ``h`` whose first token sits at position ``start``.

    Without a mask, sdpa attention is causal when ``h`` has more than one token (and the layer is
    causal) and full when it has one token, which is what cached decoding needs. ``cos_sin``
    (from :func:`rotary`) lets a decode step compute the rotary table once for all layers.
    """
    pos = torch.arange(start, start + h.shape[1], device=h.device).unsqueeze(0)
    if cos_sin is None:
        cos_sin = model.rotary_emb(h, pos)
    layer = model.layers[i]
    out: torch.Tensor = layer(h, position_embeddings=cos_sin, cache=cache, position_ids=pos)
    return out


def rotary(model: LlamaModel, h: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotary (cos, sin) table for ``h``'s positions ``start ..``."""
    pos = torch.arange(start, start + h.shape[1], device=h.device).unsqueeze(0)
    cos, sin = model.rotary_emb(h, pos)
    return cos, sin


def kv_of(cache: DynamicCache, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys and values a cache holds for layer ``i``."""
    layer = cast(Any, cache.layers[i])
    assert layer.keys is not None and layer.values is not None
    return layer.keys, layer.values


def bert(width: int, layers: int, heads: int, cross: bool) -> BertModel:
    """A BERT stack; with ``cross`` its layers cross-attend to a memory (ACT/DETR decoder).

    BERT only allows cross-attention in decoder mode, which makes self-attention causal; chunk
    queries and flow action tokens should see each other, so causality is switched off again.
    """
    model = BertModel(
        BertConfig(
            vocab_size=4,
            hidden_size=width,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=2 * width,
            is_decoder=cross,
            add_cross_attention=cross,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            **_SDPA,
        ),
        add_pooling_layer=False,
    )
    for layer in model.encoder.layer:
        cast(Any, layer).attention.self.is_causal = False
    return model


def bert_layer(
    model: BertModel, i: int, h: torch.Tensor, memory: torch.Tensor | None = None
) -> torch.Tensor:
    """Run BERT layer ``i`` (cross-attending to ``memory`` when given)."""
    out = model.encoder.layer[i](h, encoder_hidden_states=memory)
    return out[0] if isinstance(out, tuple) else out


def resnet(cfg: VLAConfig) -> ResNetModel:
    """A small ResNet (basic blocks), ACT's image backbone in miniature."""
    sizes = [32, 64, 128, 256][: cfg.vision_layers]
    return ResNetModel(
        ResNetConfig(
            num_channels=3,
            embedding_size=32,
            hidden_sizes=sizes,
            depths=[1] * len(sizes),
            layer_type="basic",
            downsample_in_first_stage=False,
        )
    )


def sinusoidal(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of scalar times ``t`` (B,) -> (B, dim), as in pi0's time input.

    Computed in float32 on ``t``'s device whatever the model's precision (the caller casts).
    """
    half = dim // 2
    freqs = torch.exp(
        -torch.arange(half, dtype=torch.float32, device=t.device)
        * (torch.log(torch.tensor(1e4)) / half)
    )
    ang = t[:, None].float() * 1000.0 * freqs[None, :]
    return torch.cat([ang.sin(), ang.cos()], dim=-1)
