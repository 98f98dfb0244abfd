"""Profile of pi0 (Physical Intelligence, Black et al. 2024): PaliGemma-3B + a flow action expert.

The VLM prefix (SigLIP So400m/14 image tokens + the instruction) runs once through Gemma-2B and
leaves a KV cache; a ~300M Gemma-style action expert then runs 10 times (flow-matching Euler steps
over a chunk of 50 actions), each time attending to that cache. See ``docs/cost_model.md``.
"""

from __future__ import annotations

from typing import Any

from rapid_env.cost.profiles import ArchProfile, BlockCost
from rapid_env.profiler.arch_flow import (
    CAMERA_SIZE,
    FLOW_CHUNK,
    FLOW_STEPS,
    LIBERO_ACTION_DIM,
    LIBERO_CAMERAS,
    PADDED_ACTION_DIM,
    STATE_BYTES,
    FlowCount,
    expert_blocks,
    vlm_layer_blocks,
)
from rapid_env.profiler.counting import (
    BF16_BYTES,
    FLOAT32_BYTES,
    count_expert_loop,
    count_flops,
    count_repeated,
    decoder_prefill,
    image_bytes,
    kv_bytes,
    layer_kv,
    nbytes,
    param_bytes,
    siglip_so400m_config,
    to_eval,
)
from rapid_env.profiler.registry import profile_builder

PI0_IMAGE_SIZE = 224
PI0_IMAGE_SLOTS = 3
"""openpi's pi0 always encodes three image slots (base, left wrist, right wrist); on a one-arm
LIBERO robot the right-wrist slot is a zero image, masked in attention but still encoded."""
PI0_TEXT_TOKENS = 48
"""openpi pads the tokenised prompt to ``max_token_len = 48`` for pi0; padding is computed too."""
VLM_WIDTH = 2048
EXPERT_WIDTH = 1024

PI0_SOURCE = (
    "pi0 (Black et al., 'pi0: A Vision-Language-Action Flow Model for General Robot Control', "
    "arXiv 2410.24164) and openpi's pi0 model (gemma.py 'gemma_2b' / 'gemma_300m', pi0.py): "
    "PaliGemma-3B (Beyer et al., arXiv 2407.07726) = SigLIP So400m/14 at 224 px (hidden 1152, "
    "27 layers, MLP 4304; 256 tokens per image, no pooling head) -> Linear(1152, 2048) -> "
    "Gemma-2B (hidden 2048, 18 layers, 8 heads, 1 KV head, head dim 256, GeGLU MLP 16384, "
    "vocab 257152, tied LM head, unused). Prefix = 3 image slots x 256 (LIBERO: third-person + "
    "wrist + a masked zero image, still encoded) + 48 padded text tokens = 816 tokens, run once "
    "with KV cache. Action expert 'gemma_300m' (hidden 1024, 18 layers, 8 heads, 1 KV head, head "
    "dim 256, MLP 4096) over a suffix of 1 state token (Linear(32, 1024)) + 50 action tokens "
    "(Linear(32, 1024), concatenated with a sinusoidal flow-time embedding, MLP 2048->1024->1024 "
    "with swish); expert layer i attends to [prefix KV of Gemma layer i, own suffix KV]; final "
    "norm + Linear(1024, 32) -> velocity; 10 Euler flow steps (each step re-runs the whole "
    "suffix; the prefix KV is reused). State and actions padded to 32-d; 50 x 7 LIBERO actions "
    "(float32) sent back."
)


def _pi0_vision(dtype: Any) -> tuple[Any, Any]:
    """SigLIP So400m/14 at 224 px without its pooling head, and PaliGemma's projector."""
    import torch
    from torch import nn
    from transformers import SiglipVisionModel

    cfg = siglip_so400m_config(PI0_IMAGE_SIZE, use_head=False)
    with torch.device("meta"):
        siglip = to_eval(SiglipVisionModel(cfg), dtype)
        projector = to_eval(nn.Linear(cfg.hidden_size, VLM_WIDTH), dtype)
    return siglip, projector


def _gemma(width: int, mlp: int, dtype: Any) -> Any:
    """An 18-layer Gemma decoder (8 heads, 1 KV head, head dim 256) on the meta device."""
    import torch
    from transformers import GemmaConfig, GemmaModel

    cfg = GemmaConfig(
        vocab_size=257152,
        hidden_size=width,
        intermediate_size=mlp,
        num_hidden_layers=18,
        num_attention_heads=8,
        num_key_value_heads=1,
        head_dim=256,
    )
    with torch.device("meta"):
        return to_eval(GemmaModel(cfg), dtype)


def _action_projections(dtype: Any) -> Any:
    """pi0's state / action / time projections around the expert (openpi ``Pi0`` module)."""
    import torch
    from torch import nn

    width = EXPERT_WIDTH
    with torch.device("meta"):
        heads = nn.ModuleDict(
            {
                "state_proj": nn.Linear(PADDED_ACTION_DIM, width),
                "action_in_proj": nn.Linear(PADDED_ACTION_DIM, width),
                "action_time_mlp_in": nn.Linear(2 * width, width),
                "action_time_mlp_out": nn.Linear(width, width),
                "action_out_proj": nn.Linear(width, PADDED_ACTION_DIM),
            }
        )
        return to_eval(heads, dtype)


def _embed_suffix(heads: Any, state: Any, noisy: Any, time_emb: Any) -> Any:
    """The ``embed_suffix`` of openpi: [state token, action tokens mixed with the flow time]."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (torch's conventional alias)

    actions = heads["action_in_proj"](noisy)
    mixed = heads["action_time_mlp_in"](torch.cat([actions, time_emb], dim=-1))
    mixed = heads["action_time_mlp_out"](F.silu(mixed))
    return torch.cat([heads["state_proj"](state), mixed], dim=1)


def _velocity(heads: Any, norm: Any, hidden: Any) -> Any:
    """Final expert norm and out-projection on the action tokens (the state token is dropped)."""
    return heads["action_out_proj"](norm(hidden[:, 1:, :]))


@profile_builder("pi0")
def build_pi0() -> ArchProfile:
    """Count pi0: SigLIP, projector, Gemma-2B prefix once; the action expert 10 times.

    Why these blocks: the prefix blocks mirror OpenVLA's cut points; the expert is the loop tail
    (``per_token`` with ``loop="flow"``), so a split inside it pays a round trip per flow step,
    and a split between prefix and expert ships the prefix KV cache (the expert attends to it).
    """
    import torch

    dtype = torch.bfloat16
    siglip, projector = _pi0_vision(dtype)
    vlm = _gemma(VLM_WIDTH, 16384, dtype)
    expert = _gemma(EXPERT_WIDTH, 4096, dtype)
    heads = _action_projections(dtype)
    with torch.device("meta"):
        pixels = torch.empty(PI0_IMAGE_SLOTS, 3, PI0_IMAGE_SIZE, PI0_IMAGE_SIZE, dtype=dtype)
        image_feats, siglip_flops = count_flops(
            lambda: siglip(pixel_values=pixels).last_hidden_state
        )
        image_tokens, projector_flops = count_flops(lambda: projector(image_feats))
        text_ids = torch.zeros(1, PI0_TEXT_TOKENS, dtype=torch.long)
        prefix = torch.cat([image_tokens.reshape(1, -1, VLM_WIDTH), vlm.embed_tokens(text_ids)], 1)
        _, counts, cache = decoder_prefill(vlm, prefix)
        n_layers = len(vlm.layers)

        state = torch.empty(1, 1, PADDED_ACTION_DIM, dtype=dtype)
        noisy = torch.empty(1, FLOW_CHUNK, PADDED_ACTION_DIM, dtype=dtype)
        time_emb = torch.empty(1, FLOW_CHUNK, EXPERT_WIDTH, dtype=dtype)  # sinusoidal: no matmul
        suffix, in_flops = count_repeated(
            lambda: _embed_suffix(heads, state, noisy, time_emb), FLOW_STEPS
        )
        prefix_kv = [layer_kv(cache, i) for i in range(n_layers)]
        layer_flops, hidden = count_expert_loop(expert.layers, suffix, prefix_kv, FLOW_STEPS)
        velocity, out_flops = count_repeated(
            lambda: _velocity(heads, expert.norm, hidden), FLOW_STEPS
        )

    text_id_bytes = nbytes(text_ids)
    flow = FlowCount(
        vlm_layers=list(vlm.layers),
        vlm_layer_flops=[counts[f"GemmaModel.layers.{i}"] for i in range(n_layers)],
        prefix_bytes=nbytes(prefix),
        layer_kv_bytes=[kv_bytes(cache, i) for i in range(n_layers)],
        carried_bytes=float(STATE_BYTES),
        expert_in=[heads[k] for k in ("state_proj", "action_in_proj")]
        + [heads[k] for k in ("action_time_mlp_in", "action_time_mlp_out")],
        expert_in_flops=in_flops,
        expert_layers=list(expert.layers),
        expert_layer_flops=layer_flops,
        expert_out=[expert.norm, heads["action_out_proj"]],
        expert_out_flops=out_flops,
        suffix_bytes=nbytes(suffix),
        action_hidden_bytes=float(FLOW_CHUNK * EXPERT_WIDTH * BF16_BYTES),
        steps=FLOW_STEPS,
        output_bytes=FLOW_CHUNK * LIBERO_ACTION_DIM * FLOAT32_BYTES,
        velocity_bytes=int(velocity.numel()) * FLOAT32_BYTES,  # float32 on the wire
    )
    carried = text_id_bytes + STATE_BYTES
    blocks = [
        BlockCost(
            name="vision.siglip",
            flops=siglip_flops["Global"],
            weight_bytes=param_bytes(siglip),
            activation_bytes=nbytes(image_feats) + carried,
        ),
        BlockCost(
            name="projector",
            flops=projector_flops["Global"],
            weight_bytes=param_bytes(projector),
            activation_bytes=nbytes(image_tokens) + carried,
        ),
        BlockCost(
            name="llm.embed_tokens",
            flops=0.0,
            # PaliGemma ties the LM head to this table; the final norm is unused by pi0.
            weight_bytes=param_bytes(vlm.embed_tokens, vlm.norm),
            activation_bytes=nbytes(prefix) + STATE_BYTES,
            read_bytes=float(VLM_WIDTH * BF16_BYTES * PI0_TEXT_TOKENS),
        ),
    ]
    blocks += vlm_layer_blocks(flow) + expert_blocks(flow)
    if prefix.shape[1] != PI0_IMAGE_SLOTS * 256 + PI0_TEXT_TOKENS or suffix.shape[1] != 51:
        raise AssertionError(f"unexpected shapes {tuple(prefix.shape)}, {tuple(suffix.shape)}")
    sent_size = min(PI0_IMAGE_SIZE, CAMERA_SIZE)
    return ArchProfile(
        name="pi0",
        blocks=tuple(blocks),
        input_bytes=int(image_bytes(LIBERO_CAMERAS, sent_size) + carried),
        output_bytes=flow.output_bytes,
        decode_steps=flow.decode_steps,
        source=PI0_SOURCE,
        token_bytes=flow.velocity_bytes,
        loop="flow",
    )
