"""Profile of pi0 (Physical Intelligence, Black et al. 2024): PaliGemma-3B + a flow action expert.

The VLM prefix (SigLIP So400m/14 image tokens + the instruction) runs once through Gemma-2B and
leaves a KV cache; a ~300M Gemma-style action expert then runs 10 times (flow-matching Euler steps
over a chunk of 50 actions), each time attending to that cache. See ``docs/cost_model.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rapid_env.cost.profiles import ArchProfile, BlockCost
from rapid_env.profiler.arch_flow import (
    CAMERA_SIZE,
    FLOW_CHUNK,
    FLOW_STEPS,
    LIBERO_ACTION_DIM,
    LIBERO_CAMERAS,
    LIBERO_STATE_DIM,
    PADDED_ACTION_DIM,
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


GEMMA_VARIANTS: dict[str, dict[str, int]] = {
    "gemma_300m": {"width": 1024, "depth": 18, "mlp_dim": 4096, "num_heads": 8,
                   "num_kv_heads": 1, "head_dim": 256},
    "gemma_2b": {"width": 2048, "depth": 18, "mlp_dim": 16384, "num_heads": 8,
                 "num_kv_heads": 1, "head_dim": 256},
}
"""openpi's ``gemma.py`` variants (LeRobot's ``get_gemma_config``): the VLM and the action expert
each take one. Both have 18 layers and one KV head of 256, so expert layer ``i`` can attend to
VLM layer ``i``'s keys and values whichever pair is chosen."""
GEMMA_VOCAB = 257152
SIGLIP_PATCH = 14


@dataclass(frozen=True)
class Pi0Spec:
    """What a pi0-style profile is counted from (defaults: openpi's pi0 on the LIBERO setup).

    Attributes:
        vlm_variant: The PaliGemma language model's Gemma variant (:data:`GEMMA_VARIANTS`).
        expert_variant: The action expert's Gemma variant.
        image_size: Resolution every image slot is resized (and padded) to for SigLIP.
        image_slots: Images SigLIP encodes per inference: the cameras plus empty (masked, still
            encoded) slots.
        cameras: Camera images sent per observation.
        camera_size: The cameras' resolution (images are never upsampled before sending).
        state_dim, action_dim: Robot state sent up, action dimensions sent down (float32).
        max_state_dim, max_action_dim: What state and actions are padded to inside the model.
        text_tokens: Instruction tokens (padded to this length).
        chunk: Actions per chunk; steps: flow-matching (Euler) steps.
        name, source: The profile's name and its provenance string.
    """

    vlm_variant: str = "gemma_2b"
    expert_variant: str = "gemma_300m"
    image_size: int = PI0_IMAGE_SIZE
    image_slots: int = PI0_IMAGE_SLOTS
    cameras: int = LIBERO_CAMERAS
    camera_size: int = CAMERA_SIZE
    state_dim: int = LIBERO_STATE_DIM
    action_dim: int = LIBERO_ACTION_DIM
    max_state_dim: int = PADDED_ACTION_DIM
    max_action_dim: int = PADDED_ACTION_DIM
    text_tokens: int = PI0_TEXT_TOKENS
    chunk: int = FLOW_CHUNK
    steps: int = FLOW_STEPS
    name: str = "pi0"
    source: str = PI0_SOURCE


def gemma_variant(field_name: str, variant: str) -> dict[str, int]:
    """The Gemma variant's numbers, or a one-line error naming the known variants."""
    if variant not in GEMMA_VARIANTS:
        raise ValueError(
            f"{field_name}: no profile rule for {variant!r}; allowed: {', '.join(GEMMA_VARIANTS)}"
        )
    return GEMMA_VARIANTS[variant]


def _pi0_vision(spec: Pi0Spec, vlm_width: int, dtype: Any) -> tuple[Any, Any]:
    """SigLIP So400m/14 without its pooling head, and PaliGemma's projector to the VLM width."""
    import torch
    from torch import nn
    from transformers import SiglipVisionModel

    cfg = siglip_so400m_config(spec.image_size, use_head=False)
    with torch.device("meta"):
        siglip = to_eval(SiglipVisionModel(cfg), dtype)
        projector = to_eval(nn.Linear(cfg.hidden_size, vlm_width), dtype)
    return siglip, projector


def _gemma(variant: dict[str, int], dtype: Any) -> Any:
    """A Gemma decoder of one of openpi's variants on the meta device."""
    import torch
    from transformers import GemmaConfig, GemmaModel

    cfg = GemmaConfig(
        vocab_size=GEMMA_VOCAB,
        hidden_size=variant["width"],
        intermediate_size=variant["mlp_dim"],
        num_hidden_layers=variant["depth"],
        num_attention_heads=variant["num_heads"],
        num_key_value_heads=variant["num_kv_heads"],
        head_dim=variant["head_dim"],
    )
    with torch.device("meta"):
        return to_eval(GemmaModel(cfg), dtype)


def _action_projections(spec: Pi0Spec, width: int, dtype: Any) -> Any:
    """pi0's state / action / time projections around the expert (openpi ``Pi0`` module)."""
    import torch
    from torch import nn

    with torch.device("meta"):
        heads = nn.ModuleDict(
            {
                "state_proj": nn.Linear(spec.max_state_dim, width),
                "action_in_proj": nn.Linear(spec.max_action_dim, width),
                "action_time_mlp_in": nn.Linear(2 * width, width),
                "action_time_mlp_out": nn.Linear(width, width),
                "action_out_proj": nn.Linear(width, spec.max_action_dim),
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
    """Count pi0: SigLIP, projector, Gemma-2B prefix once; the action expert 10 times."""
    return count_pi0(Pi0Spec())


def count_pi0(spec: Pi0Spec) -> ArchProfile:
    """Count a pi0-style policy: the PaliGemma prefix once, the action expert ``steps`` times.

    Why these blocks: the prefix blocks mirror OpenVLA's cut points; the expert is the loop tail
    (``per_token`` with ``loop="flow"``), so a split inside it pays a round trip per flow step,
    and a split between prefix and expert ships the prefix KV cache (the expert attends to it).

    Raises:
        ValueError: an unknown Gemma variant, a VLM and expert of different depths, or a
            non-positive size; one line naming the field.
    """
    import torch

    dtype = torch.bfloat16
    vlm_cfg = gemma_variant("paligemma_variant", spec.vlm_variant)
    expert_cfg = gemma_variant("action_expert_variant", spec.expert_variant)
    for key in ("depth", "num_kv_heads", "head_dim"):
        if vlm_cfg[key] != expert_cfg[key]:
            raise ValueError(
                f"action_expert_variant: {spec.expert_variant!r} has {key} {expert_cfg[key]}, "
                f"the VLM {spec.vlm_variant!r} {vlm_cfg[key]}; they must match"
            )
    sizes = {"image_size": spec.image_size, "image_slots": spec.image_slots,
             "chunk": spec.chunk, "steps": spec.steps, "text_tokens": spec.text_tokens}
    for key, value in sizes.items():
        if value < 1:
            raise ValueError(f"{key}={value}; allowed: ints >= 1")
    vlm_width, width = vlm_cfg["width"], expert_cfg["width"]
    siglip, projector = _pi0_vision(spec, vlm_width, dtype)
    vlm = _gemma(vlm_cfg, dtype)
    expert = _gemma(expert_cfg, dtype)
    heads = _action_projections(spec, width, dtype)
    with torch.device("meta"):
        pixels = torch.empty(spec.image_slots, 3, spec.image_size, spec.image_size, dtype=dtype)
        image_feats, siglip_flops = count_flops(
            lambda: siglip(pixel_values=pixels).last_hidden_state
        )
        image_tokens, projector_flops = count_flops(lambda: projector(image_feats))
        text_ids = torch.zeros(1, spec.text_tokens, dtype=torch.long)
        prefix = torch.cat([image_tokens.reshape(1, -1, vlm_width), vlm.embed_tokens(text_ids)], 1)
        _, counts, cache = decoder_prefill(vlm, prefix)
        n_layers = len(vlm.layers)

        state = torch.empty(1, 1, spec.max_state_dim, dtype=dtype)
        noisy = torch.empty(1, spec.chunk, spec.max_action_dim, dtype=dtype)
        time_emb = torch.empty(1, spec.chunk, width, dtype=dtype)  # sinusoidal: no matmul
        suffix, in_flops = count_repeated(
            lambda: _embed_suffix(heads, state, noisy, time_emb), spec.steps
        )
        prefix_kv = [layer_kv(cache, i) for i in range(n_layers)]
        layer_flops, hidden = count_expert_loop(expert.layers, suffix, prefix_kv, spec.steps)
        velocity, out_flops = count_repeated(
            lambda: _velocity(heads, expert.norm, hidden), spec.steps
        )

    text_id_bytes = nbytes(text_ids)
    state_bytes = spec.state_dim * FLOAT32_BYTES
    flow = FlowCount(
        vlm_layers=list(vlm.layers),
        vlm_layer_flops=[counts[f"GemmaModel.layers.{i}"] for i in range(n_layers)],
        prefix_bytes=nbytes(prefix),
        layer_kv_bytes=[kv_bytes(cache, i) for i in range(n_layers)],
        carried_bytes=float(state_bytes),
        expert_in=[heads[k] for k in ("state_proj", "action_in_proj")]
        + [heads[k] for k in ("action_time_mlp_in", "action_time_mlp_out")],
        expert_in_flops=in_flops,
        expert_layers=list(expert.layers),
        expert_layer_flops=layer_flops,
        expert_out=[expert.norm, heads["action_out_proj"]],
        expert_out_flops=out_flops,
        suffix_bytes=nbytes(suffix),
        action_hidden_bytes=float(spec.chunk * width * BF16_BYTES),
        steps=spec.steps,
        output_bytes=spec.chunk * spec.action_dim * FLOAT32_BYTES,
        velocity_bytes=int(velocity.numel()) * FLOAT32_BYTES,  # float32 on the wire
    )
    carried = text_id_bytes + state_bytes
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
            activation_bytes=nbytes(prefix) + state_bytes,
            read_bytes=float(vlm_width * BF16_BYTES * spec.text_tokens),
        ),
    ]
    blocks += vlm_layer_blocks(flow) + expert_blocks(flow)
    per_image = (spec.image_size // SIGLIP_PATCH) ** 2
    if prefix.shape[1] != spec.image_slots * per_image + spec.text_tokens or (
        suffix.shape[1] != spec.chunk + 1
    ):
        raise AssertionError(f"unexpected shapes {tuple(prefix.shape)}, {tuple(suffix.shape)}")
    sent_size = min(spec.image_size, spec.camera_size)
    return ArchProfile(
        name=spec.name,
        blocks=tuple(blocks),
        input_bytes=int(image_bytes(spec.cameras, sent_size) + carried),
        output_bytes=flow.output_bytes,
        decode_steps=flow.decode_steps,
        source=spec.source,
        token_bytes=flow.velocity_bytes,
        loop="flow",
    )
