"""Profile of SmolVLA (Shukor et al. 2025): half a SmolVLM2-500M + a small flow action expert.

SmolVLA keeps only the first 16 of SmolVLM2's 32 language layers ("layer skipping": features from
the middle of the VLM are good enough for control, and half the layers is half the prefix cost),
feeds 64 visual tokens per camera (SigLIP-B/16 at 512 px, pixel shuffle x4), the instruction and a
state token through them once, then runs a 0.75x-wide expert 10 times (flow matching, chunk 50)
whose layers alternate self-attention (over prefix + actions) and cross-attention (to the prefix
only). See ``docs/cost_model.md``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
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
    resident_only,
    to_eval,
)
from rapid_env.profiler.registry import profile_builder

SMOLVLA_IMAGE_SIZE = 512
SMOLVLA_TEXT_TOKENS = 20
"""The instruction, padded to the longest in the batch (``pad_language_to="longest"``): ~20."""
VLM_LAYERS_KEPT = 16
"""``num_vlm_layers=16``: the first half of SmolLM2-360M's 32 layers; the rest are dropped."""
VLM_WIDTH = 960
VLM_VOCAB = 49280
EXPERT_WIDTH_MULTIPLIER = 0.75
SELF_ATTN_EVERY = 2
"""``self_attn_every_n_layers=2``: expert layers 0, 2, 4 ... self-attend, odd ones cross-attend."""
VISUAL_TOKENS_PER_IMAGE = 64

SMOLVLA_SOURCE = (
    "SmolVLA (Shukor et al., 'SmolVLA: A Vision-Language-Action Model for Affordable and "
    "Efficient Robotics', arXiv 2506.01844) and LeRobot's smolvla policy (configuration_smolvla."
    "py, smolvlm_with_expert.py): SmolVLM2-500M-Video-Instruct (Marafioti et al., arXiv "
    "2504.05299) = SigLIP base-patch16/512 (hidden 768, 12 layers, 12 heads, MLP 3072; 1024 "
    "patches) -> pixel shuffle x4 -> Linear(12288, 960) = 64 visual tokens per image (global "
    "image only, no tiling, no image special tokens) -> SmolLM2-360M decoder (hidden 960, 15 "
    "heads, 5 KV heads, head dim 64, MLP 2560, vocab 49280, untied LM head kept in the "
    "checkpoint but unused) truncated to its first 16 of 32 layers (num_vlm_layers=16). Prefix = "
    "2 LIBERO cameras x 64 + ~20 text tokens + 1 state token (Linear(32, 960)) = 149 tokens, run "
    "once with KV cache. Action expert: a copy of the text config at 0.75 x width (hidden 720, "
    "16 layers, 15 heads x 64, 5 KV heads, MLP 2048 = get_intermediate_size(720)); even layers "
    "self-attend over [prefix KV, own KV], odd layers cross-attend to the prefix KV re-projected "
    "by Linear(320, 320) (attention_mode='cross_attn', self_attn_every_n_layers=2); action "
    "in/out Linear(32, 720) / Linear(720, 32), time MLP 1440->720->720 (swish). 10 flow steps "
    "over a chunk of 50 (num_steps=10, chunk_size=50), actions padded to 32-d; 50 x 7 LIBERO "
    "actions (float32) sent back."
)


SMOLVLM2_500M_NAME = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
SMOLVLM2_500M: dict[str, Any] = {
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "patch_size": 16,
        "image_size": SMOLVLA_IMAGE_SIZE,
    },
    "text_config": {
        "model_type": "llama",
        "hidden_size": VLM_WIDTH,
        "intermediate_size": 2560,
        "num_hidden_layers": 32,
        "num_attention_heads": 15,
        "num_key_value_heads": 5,
        "head_dim": 64,
        "vocab_size": VLM_VOCAB,
        "tie_word_embeddings": False,
    },
    "scale_factor": 4,
}
"""SmolVLM2-500M's ``SmolVLMConfig`` fields (the published config)."""
KNOWN_VLMS: dict[str, dict[str, Any]] = {SMOLVLM2_500M_NAME: SMOLVLM2_500M}
"""``vlm_model_name`` values whose configs the profiler knows without downloading anything."""


@dataclass(frozen=True)
class SmolVLASpec:
    """What a SmolVLA-style profile is counted from (defaults: SmolVLA on the LIBERO setup).

    Attributes:
        vlm: The VLM's ``SmolVLMConfig`` fields (vision and text configs, pixel-shuffle factor).
        image_size: Resolution images are resized (and padded) to.
        vlm_layers: VLM language layers kept (``num_vlm_layers``; the rest are dropped).
        expert_width_multiplier: Expert width over the VLM's.
        self_attn_every: Expert layers ``0, n, 2n ...`` self-attend, the others cross-attend.
        cross_attention: ``attention_mode`` names cross-attention (else every layer self-attends).
        cameras: Camera images per observation.
        camera_size: The cameras' resolution (images are never upsampled before sending).
        state_dim, action_dim: Robot state sent up, action dimensions sent down (float32).
        max_state_dim, max_action_dim: What state and actions are padded to inside the model.
        text_tokens: Instruction tokens.
        chunk: Actions per chunk; steps: flow-matching steps.
        name, source: The profile's name and its provenance string.
    """

    vlm: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(SMOLVLM2_500M))
    image_size: int = SMOLVLA_IMAGE_SIZE
    vlm_layers: int = VLM_LAYERS_KEPT
    expert_width_multiplier: float = EXPERT_WIDTH_MULTIPLIER
    self_attn_every: int = SELF_ATTN_EVERY
    cross_attention: bool = True
    cameras: int = LIBERO_CAMERAS
    camera_size: int = CAMERA_SIZE
    state_dim: int = LIBERO_STATE_DIM
    action_dim: int = LIBERO_ACTION_DIM
    max_state_dim: int = PADDED_ACTION_DIM
    max_action_dim: int = PADDED_ACTION_DIM
    text_tokens: int = SMOLVLA_TEXT_TOKENS
    chunk: int = FLOW_CHUNK
    steps: int = FLOW_STEPS
    name: str = "smolvla"
    source: str = SMOLVLA_SOURCE


def _smolvlm(spec: SmolVLASpec, dtype: Any) -> Any:
    """The VLM on the meta device, its language model cut to the first ``vlm_layers`` layers."""
    import torch
    from torch import nn
    from transformers import SmolVLMConfig, SmolVLMModel

    fields = copy.deepcopy(spec.vlm)
    fields.setdefault("vision_config", {})["image_size"] = spec.image_size
    cfg = SmolVLMConfig(**fields)
    text_cfg: Any = cfg.text_config
    if not 1 <= spec.vlm_layers <= text_cfg.num_hidden_layers:
        raise ValueError(
            f"num_vlm_layers={spec.vlm_layers}; allowed: 1..{text_cfg.num_hidden_layers}"
        )
    with torch.device("meta"):
        vlm = SmolVLMModel(cfg)
        # Layer skipping, as LeRobot does it: the dropped layers are not even loaded.
        vlm.text_model.layers = vlm.text_model.layers[: spec.vlm_layers]
        lm_head = nn.Linear(text_cfg.hidden_size, text_cfg.vocab_size, bias=False)
        return to_eval(vlm, dtype), to_eval(lm_head, dtype)


def _expert_intermediate_size(width: int, multiplier: int = 4, multiple_of: int = 256) -> int:
    """LeRobot's ``get_intermediate_size``: 2/3 x 4 x width, rounded up to a multiple of 256."""
    hidden = multiplier * int(2 * width / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def _is_cross(spec: SmolVLASpec, i: int) -> bool:
    """Whether expert layer ``i`` cross-attends to the prefix (LeRobot's alternation)."""
    return spec.cross_attention and bool(i % spec.self_attn_every)


def _expert(spec: SmolVLASpec, text_cfg: Any, dtype: Any) -> Any:
    """The action expert: the VLM text config at a fraction of its width, some layers crossed."""
    import torch
    from torch import nn
    from transformers import LlamaModel

    cfg = copy.deepcopy(text_cfg)
    width = int(text_cfg.hidden_size * spec.expert_width_multiplier)
    cfg.hidden_size = width
    cfg.intermediate_size = _expert_intermediate_size(width)
    cfg.num_hidden_layers = spec.vlm_layers
    kv_dim = text_cfg.num_key_value_heads * text_cfg.head_dim
    with torch.device("meta"):
        expert: Any = LlamaModel(cfg)
        expert.embed_tokens = None  # unused, removed by LeRobot too
        for i, layer in enumerate(expert.layers):
            if _is_cross(spec, i):
                # Cross-attention layers project the VLM's cached K/V, not the expert's tokens.
                layer.self_attn.k_proj = nn.Linear(kv_dim, kv_dim, bias=False)
                layer.self_attn.v_proj = nn.Linear(kv_dim, kv_dim, bias=False)
        return to_eval(expert, dtype)


def _action_projections(spec: SmolVLASpec, vlm_width: int, expert_width: int, dtype: Any) -> Any:
    """SmolVLA's state / action / time projections (``VLAFlowMatching``)."""
    import torch
    from torch import nn

    with torch.device("meta"):
        heads = nn.ModuleDict(
            {
                "state_proj": nn.Linear(spec.max_state_dim, vlm_width),
                "action_in_proj": nn.Linear(spec.max_action_dim, expert_width),
                "action_time_mlp_in": nn.Linear(2 * expert_width, expert_width),
                "action_time_mlp_out": nn.Linear(expert_width, expert_width),
                "action_out_proj": nn.Linear(expert_width, spec.max_action_dim),
            }
        )
        return to_eval(heads, dtype)


def _embed_images(vlm: Any, pixels: Any) -> Any:
    """SigLIP over full-size images: patch conv + position embeddings, encoder, final norm.

    Written out (LeRobot passes ``patch_attention_mask=None`` too) because the variable-
    resolution mask bookkeeping of ``SmolVLMVisionEmbeddings`` cannot run on the meta device;
    for a full-size image it selects every position, so the result is the same.
    """
    import torch

    vision = vlm.vision_model
    emb = vision.embeddings
    patches = emb.patch_embedding(pixels).flatten(2).transpose(1, 2)
    patches = patches + emb.position_embedding(torch.arange(patches.shape[1]))
    return vision.post_layernorm(vision.encoder(inputs_embeds=patches).last_hidden_state)


def _embed_suffix(heads: Any, noisy: Any, time_emb: Any) -> Any:
    """SmolVLA's ``embed_suffix``: action tokens mixed with the flow time (no state token)."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (torch's conventional alias)

    actions = heads["action_in_proj"](noisy)
    mixed = heads["action_time_mlp_in"](torch.cat([actions, time_emb], dim=-1))
    return heads["action_time_mlp_out"](F.silu(mixed))


@profile_builder("smolvla")
def build_smolvla() -> ArchProfile:
    """Count SmolVLA: vision + connector + 16 VLM layers once; the action expert 10 times."""
    return count_smolvla(SmolVLASpec())


def count_smolvla(spec: SmolVLASpec) -> ArchProfile:
    """Count a SmolVLA-style policy: the VLM prefix once, the action expert ``steps`` times."""
    import torch

    dtype = torch.bfloat16
    if spec.steps < 1 or spec.chunk < 1:
        raise ValueError(f"num_steps={spec.steps}, chunk_size={spec.chunk}; allowed: ints >= 1")
    vlm, lm_head = _smolvlm(spec, dtype)
    text = vlm.text_model
    vlm_width = int(vlm.config.text_config.hidden_size)
    expert = _expert(spec, vlm.config.text_config, dtype)
    width = expert.config.hidden_size
    heads = _action_projections(spec, vlm_width, width, dtype)
    resident_only(lm_head, "loaded with the language model, never run")
    with torch.device("meta"):
        size = spec.image_size
        pixels = torch.empty(spec.cameras, 3, size, size, dtype=dtype)
        image_feats, vision_flops = count_flops(lambda: _embed_images(vlm, pixels))
        image_tokens, connector_flops = count_flops(lambda: vlm.connector(image_feats))
        text_ids = torch.zeros(1, spec.text_tokens, dtype=torch.long)
        state = torch.empty(1, 1, spec.max_state_dim, dtype=dtype)
        state_token, state_flops = count_flops(lambda: heads["state_proj"](state))
        prefix = torch.cat(
            [image_tokens.reshape(1, -1, vlm_width), text.embed_tokens(text_ids), state_token], 1
        )
        _, counts, cache = decoder_prefill(text, prefix)

        noisy = torch.empty(1, spec.chunk, spec.max_action_dim, dtype=dtype)
        time_emb = torch.empty(1, spec.chunk, width, dtype=dtype)  # sinusoidal: no matmul
        suffix, in_flops = count_repeated(lambda: _embed_suffix(heads, noisy, time_emb), spec.steps)
        prefix_kv = [layer_kv(cache, i) for i in range(spec.vlm_layers)]
        cross = [_is_cross(spec, i) for i in range(spec.vlm_layers)]
        layer_flops, hidden = count_expert_loop(expert.layers, suffix, prefix_kv, spec.steps, cross)
        velocity, out_flops = count_repeated(
            lambda: heads["action_out_proj"](expert.norm(hidden)), spec.steps
        )

    text_id_bytes = nbytes(text_ids)
    layer_key = f"{type(text).__name__}.layers"
    flow = FlowCount(
        vlm_layers=list(text.layers),
        vlm_layer_flops=[counts[f"{layer_key}.{i}"] for i in range(spec.vlm_layers)],
        prefix_bytes=nbytes(prefix),
        layer_kv_bytes=[kv_bytes(cache, i) for i in range(spec.vlm_layers)],
        carried_bytes=0.0,  # the state is already a prefix token
        expert_in=[heads[k] for k in ("action_in_proj", "action_time_mlp_in")]
        + [heads["action_time_mlp_out"]],
        expert_in_flops=in_flops,
        expert_layers=list(expert.layers),
        expert_layer_flops=layer_flops,
        expert_out=[expert.norm, heads["action_out_proj"]],
        expert_out_flops=out_flops,
        suffix_bytes=nbytes(suffix),
        action_hidden_bytes=nbytes(suffix),
        steps=spec.steps,
        output_bytes=spec.chunk * spec.action_dim * FLOAT32_BYTES,
        velocity_bytes=int(velocity.numel()) * FLOAT32_BYTES,  # float32 on the wire
    )
    carried = text_id_bytes + spec.state_dim * FLOAT32_BYTES
    blocks = [
        BlockCost(
            name="vision.siglip",
            flops=vision_flops["Global"],
            weight_bytes=param_bytes(vlm.vision_model),
            activation_bytes=nbytes(image_feats) + carried,
        ),
        BlockCost(
            name="connector",  # pixel shuffle (a reshape) + modality projection
            flops=connector_flops["Global"],
            weight_bytes=param_bytes(vlm.connector),
            activation_bytes=nbytes(image_tokens) + carried,
        ),
        BlockCost(
            name="llm.embed_tokens",  # token embedding + state projection -> the prefix
            flops=state_flops["Global"],
            # The unused LM head and final norm load with the language model: resident only.
            weight_bytes=param_bytes(text.embed_tokens, heads["state_proj"], lm_head, text.norm),
            activation_bytes=nbytes(prefix),
            read_bytes=float(vlm_width * BF16_BYTES * spec.text_tokens)
            + param_bytes(heads["state_proj"]),
        ),
    ]
    blocks += vlm_layer_blocks(flow) + expert_blocks(flow)
    expected_velocity = (1, spec.chunk, spec.max_action_dim)
    if prefix.shape[1] != image_tokens.shape[0] * image_tokens.shape[1] + spec.text_tokens + 1 or (
        tuple(velocity.shape) != expected_velocity
    ):
        raise AssertionError(f"unexpected shapes {tuple(prefix.shape)}, {tuple(velocity.shape)}")
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
