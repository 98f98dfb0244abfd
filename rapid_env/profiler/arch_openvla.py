"""Profiles of the Prismatic-based VLAs: OpenVLA-7B and OpenVLA-OFT-7B.

Both share Prismatic's fused DINOv2 + SigLIP vision backbone, its MLP projector and a Llama-2-7B
decoder; they differ in how actions come out. OpenVLA decodes 7 action tokens one at a time with a
KV cache; OFT fills 56 empty action slots (8 actions x 7 dimensions) in ONE bidirectional pass and
reads continuous actions off their hidden states with an MLP head. See ``docs/cost_model.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from rapid_env.cost.profiles import TOKEN_ID_BYTES, ArchProfile, BlockCost
from rapid_env.profiler.counting import (
    BF16_BYTES,
    FLOAT32_BYTES,
    count_flops,
    decoder_prefill,
    image_bytes,
    nbytes,
    param_bytes,
    residual,
    siglip_so400m_config,
    to_eval,
)
from rapid_env.profiler.registry import profile_builder

PRISMATIC_IMAGE_SIZE = 224
LLAMA_WIDTH = 4096

OPENVLA_TEXT_TOKENS = 20
"""BOS + "In: What action should the robot take to {instruction}?\\nOut:" for a short LIBERO /
Meta-World instruction, in Llama-2 tokens (~20)."""
OPENVLA_ACTION_TOKENS = 7
"""One token per action dimension (x, y, z, roll, pitch, yaw, gripper), one action per call."""

OPENVLA_SOURCE = (
    "OpenVLA (Kim et al., arXiv 2406.09246) and the openvla/openvla-7b model card: Prismatic VLM "
    "(Karamcheti et al., arXiv 2402.07865) 'dinosiglip-vit-so-224px' fused backbone = DINOv2 "
    "ViT-L/14 with 4 registers (Oquab et al. 2304.07193; Darcet et al. 2309.16588: hidden 1024, "
    "24 layers, 16 heads, MLP 4096) + SigLIP So400m/14 (Zhai et al. 2303.15343; Alabdulmohsin "
    "et al. 2305.13035: hidden 1152, 27 layers, 16 heads, MLP 4304) at 224 px (256 patches "
    "each), features concatenated (2176) -> 'fused-gelu-mlp' projector 2176->8704->4096->4096 -> "
    "Llama-2-7B (Touvron et al. 2307.09288: hidden 4096, 32 layers, 32 heads, MLP 11008, vocab "
    "padded to 32064). bf16 weights; prompt = 256 patch embeddings + ~20 text tokens; 7 action "
    "tokens greedy-decoded with KV cache (prefill + 6 decode steps); actions de-tokenised to 7 "
    "float32 values."
)

OFT_IMAGES = 2
"""LIBERO setup of the OFT paper: one third-person image + one wrist image (plus proprio)."""
OFT_CHUNK = 8
OFT_ACTION_DIM = 7
OFT_PROPRIO_DIM = 8
"""LIBERO proprio: end-effector position (3) + axis-angle (3) + gripper joints (2)."""
OFT_SLOTS = OFT_CHUNK * OFT_ACTION_DIM + 1
"""56 empty action-token slots plus the stop token, appended to the prompt."""

OFT_SOURCE = (
    "OpenVLA-OFT (Kim, Finn & Liang, 'Fine-Tuning Vision-Language-Action Models: Optimizing "
    "Speed and Success', arXiv 2502.19645) and its reference code (moojink/openvla-oft): the "
    "OpenVLA-7B backbone above (Prismatic DINOv2 + SigLIP at 224 px, Llama-2-7B) with parallel "
    "decoding: the prompt (BOS + 2 x 256 patch embeddings for the LIBERO third-person and wrist "
    "images + 1 proprio token + ~19 text tokens) is followed by 8 x 7 = 56 empty action "
    "embeddings and a stop token, all processed in ONE bidirectional forward pass (590 tokens, "
    "no decode loop); proprio projector Linear(8, 4096)-GELU-Linear(4096, 4096); L1-regression "
    "action head MLPResNet(LayerNorm(7*4096), Linear(7*4096, 4096), ReLU, 2 x [LayerNorm, "
    "Linear(4096, 4096), ReLU] residual, LayerNorm, Linear(4096, 7)) on each action's 7 hidden "
    "states -> a chunk of 8 continuous 7-d actions (float32). The LM head stays in the "
    "checkpoint (resident) but is not needed for regression: its FLOPs are not counted."
)


# ------------------------------------------------------------------------- shared Prismatic parts


@dataclass(frozen=True)
class _PrismaticVision:
    """The counted vision half of a Prismatic VLA for ``n_images`` camera images.

    Attributes:
        dino, siglip, projector: The meta-device modules (for their weight bytes).
        dino_patches: DINOv2 patch features ``(n_images, 256, 1024)`` (CLS and registers dropped).
        fused: DINOv2 and SigLIP features concatenated, ``(n_images, 256, 2176)``.
        patch_embeds: Projected patch embeddings ``(n_images, 256, 4096)``.
        dino_flops, siglip_flops, projector_flops: Counted FLOPs of each part.
    """

    dino: Any
    siglip: Any
    projector: Any
    dino_patches: Any
    fused: Any
    patch_embeds: Any
    dino_flops: float
    siglip_flops: float
    projector_flops: float


def _prismatic_projector(vision_dim: int, llm_dim: int) -> Any:
    """Prismatic's ``FusedMLPProjector``: Linear(v, 4v), GELU, Linear(4v, d), GELU, Linear(d, d)."""
    from torch import nn

    hidden = 4 * vision_dim
    return nn.Sequential(
        nn.Linear(vision_dim, hidden),
        nn.GELU(),
        nn.Linear(hidden, llm_dim),
        nn.GELU(),
        nn.Linear(llm_dim, llm_dim),
    )


def _count_prismatic_vision(n_images: int, dtype: Any) -> _PrismaticVision:
    """Build and count Prismatic's 'dinosiglip-vit-so-224px' backbone + projector on meta."""
    import torch
    from transformers import (
        Dinov2WithRegistersConfig,
        Dinov2WithRegistersModel,
        SiglipVisionModel,
    )

    dino_cfg = Dinov2WithRegistersConfig(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        mlp_ratio=4,
        image_size=PRISMATIC_IMAGE_SIZE,
        patch_size=14,
        num_register_tokens=4,
    )
    # The checkpoint carries SigLIP's attention-pooling head (15.2 M params) although Prismatic
    # reads patch features and never runs it: keep it for memory, drop its FLOPs below.
    siglip_cfg = siglip_so400m_config(PRISMATIC_IMAGE_SIZE, use_head=True)
    with torch.device("meta"):
        dino = to_eval(Dinov2WithRegistersModel(dino_cfg), dtype)
        siglip = to_eval(SiglipVisionModel(siglip_cfg), dtype)
        vision_dim = dino_cfg.hidden_size + siglip_cfg.hidden_size
        projector = to_eval(_prismatic_projector(vision_dim, LLAMA_WIDTH), dtype)
        size = PRISMATIC_IMAGE_SIZE
        pixels = torch.empty(n_images, 3, size, size, dtype=dtype)
        dino_out, dino_flops = count_flops(lambda: dino(pixel_values=pixels).last_hidden_state)
        prefix = 1 + dino_cfg.num_register_tokens  # CLS + registers: Prismatic keeps patches only
        dino_patches = dino_out[:, prefix:, :]
        siglip_out, siglip_flops = count_flops(
            lambda: siglip(pixel_values=pixels).last_hidden_state
        )
        fused = torch.cat([dino_patches, siglip_out], dim=-1)
        patch_embeds, projector_flops = count_flops(lambda: projector(fused))
    return _PrismaticVision(
        dino=dino,
        siglip=siglip,
        projector=projector,
        dino_patches=dino_patches,
        fused=fused,
        patch_embeds=patch_embeds,
        dino_flops=dino_flops["Global"],
        siglip_flops=siglip_flops["Global"] - siglip_flops.get("SiglipVisionModel.head", 0.0),
        projector_flops=projector_flops["Global"],
    )


def _llama2_7b(dtype: Any) -> Any:
    """Llama-2-7B as OpenVLA ships it (vocab padded to 32064), on the meta device."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        hidden_size=LLAMA_WIDTH,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32064,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
    )
    with torch.device("meta"):
        return to_eval(LlamaForCausalLM(cfg), dtype)


def _vision_blocks(
    vision: _PrismaticVision, raw_image_bytes: float, carried_bytes: float
) -> list[BlockCost]:
    """DINOv2 and SigLIP blocks; ``carried_bytes`` (ids, proprio) ride along every cut."""
    return [
        BlockCost(
            name="vision.dinov2",
            flops=vision.dino_flops,
            weight_bytes=param_bytes(vision.dino),
            # SigLIP in the cloud still needs the image; the decoder needs the instruction.
            activation_bytes=nbytes(vision.dino_patches) + raw_image_bytes + carried_bytes,
        ),
        BlockCost(
            name="vision.siglip",
            flops=vision.siglip_flops,
            weight_bytes=param_bytes(vision.siglip),
            activation_bytes=nbytes(vision.fused) + carried_bytes,
        ),
    ]


def _lm_logits(llm: Any, hidden: Any) -> Any:
    """Apply the final norm and LM head to the given positions (generate() keeps the last one)."""
    return llm.lm_head(llm.model.norm(hidden))


# ------------------------------------------------------------------------------------ OpenVLA-7B


@profile_builder("openvla-7b")
def build_openvla_7b() -> ArchProfile:
    """Count OpenVLA-7B block by block from its ``transformers`` parts on the meta device.

    Why this block list: splitting between whole vision encoders, after the projector, or between
    any two decoder layers are the cut points a Neurosurgeon-style partitioner would consider;
    the token embedding is its own block because whoever runs decoder layer 0 must also hold the
    embedding table to embed each newly decoded token.
    """
    import torch

    dtype = torch.bfloat16
    decode_steps = OPENVLA_ACTION_TOKENS - 1
    vision = _count_prismatic_vision(1, dtype)
    llm = _llama2_7b(dtype)
    decoder = llm.model
    with torch.device("meta"):
        raw_image_bytes = image_bytes(1, PRISMATIC_IMAGE_SIZE)
        text_ids = torch.zeros(1, OPENVLA_TEXT_TOKENS, dtype=torch.long)
        text_id_bytes = nbytes(text_ids)
        text_embeds = decoder.embed_tokens(text_ids)
        # OpenVLA inserts the patch embeddings right after BOS.
        prompt = torch.cat([text_embeds[:, :1], vision.patch_embeds, text_embeds[:, 1:]], dim=1)
        prompt_tokens = prompt.shape[1]

        out, prefill_counts = count_flops(lambda: decoder(inputs_embeds=prompt, use_cache=True))
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        last_hidden = out.last_hidden_state[:, -1:, :]
        _, head_prefill = count_flops(partial(_lm_logits, llm, last_hidden))

        decode_counts: dict[str, float] = {}
        head_decode = 0.0
        step_input = torch.empty(1, 1, LLAMA_WIDTH, dtype=dtype)
        for _ in range(decode_steps):
            step, counts = count_flops(
                lambda: decoder(inputs_embeds=step_input, cache=cache, use_cache=True)
            )
            for module, value in counts.items():
                decode_counts[module] = decode_counts.get(module, 0.0) + value
            _, head_counts = count_flops(partial(_lm_logits, llm, step.last_hidden_state))
            head_decode += head_counts["Global"]

    hidden_bytes = float(LLAMA_WIDTH * BF16_BYTES)  # one token's hidden state
    blocks = _vision_blocks(vision, raw_image_bytes, text_id_bytes)
    blocks += [
        BlockCost(
            name="projector",
            flops=vision.projector_flops,
            weight_bytes=param_bytes(vision.projector),
            activation_bytes=nbytes(vision.patch_embeds) + text_id_bytes,
        ),
        BlockCost(
            name="llm.embed_tokens",
            flops=0.0,  # a lookup, no arithmetic
            weight_bytes=param_bytes(decoder.embed_tokens),
            activation_bytes=nbytes(prompt),
            per_token=True,
            decode_activation_bytes=hidden_bytes,
            read_bytes=hidden_bytes * OPENVLA_TEXT_TOKENS,
        ),
    ]
    n_layers = len(decoder.layers)
    for i, layer in enumerate(decoder.layers):
        key = f"LlamaModel.layers.{i}"
        layer_cache = cache.layers[i]
        is_last = i == n_layers - 1
        blocks.append(
            BlockCost(
                name=f"llm.layer.{i:02d}",
                flops=prefill_counts[key] + decode_counts[key],
                weight_bytes=param_bytes(layer),
                # After the last layer only the last position feeds the LM head.
                activation_bytes=hidden_bytes if is_last else nbytes(out.last_hidden_state),
                per_token=True,
                decode_flops=decode_counts[key] / decode_steps,
                decode_activation_bytes=hidden_bytes,
                kv_cache_bytes=nbytes(layer_cache.keys) + nbytes(layer_cache.values),
            )
        )
    blocks.append(
        BlockCost(
            name="llm.lm_head",
            flops=head_prefill["Global"] + head_decode,
            weight_bytes=param_bytes(llm.lm_head, decoder.norm),
            activation_bytes=float(OPENVLA_ACTION_TOKENS * FLOAT32_BYTES),
            per_token=True,
            decode_flops=head_decode / decode_steps,
            decode_activation_bytes=float(TOKEN_ID_BYTES),
        )
    )
    if prompt_tokens != 1 + 256 + OPENVLA_TEXT_TOKENS - 1:
        raise AssertionError(f"unexpected prompt length {prompt_tokens}")
    return ArchProfile(
        name="openvla-7b",
        blocks=tuple(blocks),
        input_bytes=int(raw_image_bytes + text_id_bytes),
        output_bytes=OPENVLA_ACTION_TOKENS * FLOAT32_BYTES,  # 7 float32 action values
        decode_steps=decode_steps,
        source=OPENVLA_SOURCE,
        loop="autoregressive",
    )


# -------------------------------------------------------------------------------- OpenVLA-OFT-7B


def _oft_proprio_projector() -> Any:
    """OFT's ``ProprioProjector``: Linear(8, 4096), GELU, Linear(4096, 4096) -> one token."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(OFT_PROPRIO_DIM, LLAMA_WIDTH),
        nn.GELU(),
        nn.Linear(LLAMA_WIDTH, LLAMA_WIDTH),
    )


def _oft_action_head() -> Any:
    """OFT's ``L1RegressionActionHead``: an MLPResNet over one action's 7 hidden states."""
    from torch import nn

    width = LLAMA_WIDTH
    wide = OFT_ACTION_DIM * width
    blocks = [
        residual(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU()))
        for _ in range(2)
    ]
    return nn.Sequential(
        nn.LayerNorm(wide),
        nn.Linear(wide, width),
        nn.ReLU(),
        *blocks,
        nn.LayerNorm(width),
        nn.Linear(width, OFT_ACTION_DIM),
    )


def _oft_action_hidden(norm: Any, hidden: Any) -> Any:
    """Normalised hidden states of the 56 action slots, grouped 7 per action: ``(1, 8, 28672)``."""
    slots = hidden[:, -OFT_SLOTS:-1, :]  # the stop token's position is not an action
    return norm(slots).reshape(1, OFT_CHUNK, OFT_ACTION_DIM * LLAMA_WIDTH)


@profile_builder("openvla-oft-7b")
def build_openvla_oft_7b() -> ArchProfile:
    """Count OpenVLA-OFT-7B: one parallel-decoding pass plus the L1-regression MLP head.

    Why no loop: OFT replaces token-by-token decoding by bidirectional attention over empty
    action slots, so the decoder runs once over the whole prompt and every action is read off in
    parallel. The edge pays a bigger, compute-bound prefill (590 tokens) and no bandwidth-bound
    decode steps at all.
    """
    import torch

    dtype = torch.bfloat16
    vision = _count_prismatic_vision(OFT_IMAGES, dtype)
    llm = _llama2_7b(dtype)
    decoder = llm.model
    with torch.device("meta"):
        proprio_projector = to_eval(_oft_proprio_projector(), dtype)
        action_head = to_eval(_oft_action_head(), dtype)
        proprio = torch.empty(1, 1, OFT_PROPRIO_DIM, dtype=dtype)
        proprio_token, proprio_flops = count_flops(lambda: proprio_projector(proprio))
        patches = vision.patch_embeds.reshape(1, -1, LLAMA_WIDTH)  # both images' patches in a row
        vision_tokens = torch.cat([patches, proprio_token], dim=1)

        text_ids = torch.zeros(1, OPENVLA_TEXT_TOKENS, dtype=torch.long)
        slot_ids = torch.zeros(1, OFT_SLOTS, dtype=torch.long)  # constant: added by the model side
        text_embeds = decoder.embed_tokens(text_ids)
        slot_embeds = decoder.embed_tokens(slot_ids) * 0  # OFT zeroes the action embeddings
        prompt = torch.cat(
            [text_embeds[:, :1], vision_tokens, text_embeds[:, 1:], slot_embeds], dim=1
        )
        # With a cache, as transformers' mask helpers need on the meta device; no FLOP difference
        # and the cache is dropped (one pass, nothing to re-read).
        out, counts, _ = decoder_prefill(decoder, prompt)
        action_hidden = _oft_action_hidden(decoder.norm, out.last_hidden_state)
        actions, head_flops = count_flops(lambda: action_head(action_hidden))

    raw_image_bytes = image_bytes(OFT_IMAGES, PRISMATIC_IMAGE_SIZE)
    carried = nbytes(text_ids) + OFT_PROPRIO_DIM * FLOAT32_BYTES
    blocks = _vision_blocks(vision, raw_image_bytes, carried)
    blocks += [
        BlockCost(
            name="projector",  # vision projector + proprio projector
            flops=vision.projector_flops + proprio_flops["Global"],
            weight_bytes=param_bytes(vision.projector, proprio_projector),
            activation_bytes=nbytes(vision_tokens) + nbytes(text_ids),
        ),
        BlockCost(
            name="llm.embed_tokens",
            flops=0.0,
            # The unused LM head is loaded with the language model: resident, never run.
            weight_bytes=param_bytes(decoder.embed_tokens, llm.lm_head),
            activation_bytes=nbytes(prompt),
            read_bytes=float(LLAMA_WIDTH * BF16_BYTES * (OPENVLA_TEXT_TOKENS + OFT_SLOTS)),
        ),
    ]
    n_layers = len(decoder.layers)
    for i, layer in enumerate(decoder.layers):
        is_last = i == n_layers - 1
        blocks.append(
            BlockCost(
                name=f"llm.layer.{i:02d}",
                flops=counts[f"LlamaModel.layers.{i}"],
                weight_bytes=param_bytes(layer),
                # After the last layer only the 56 action slots feed the head.
                activation_bytes=nbytes(action_hidden) if is_last else nbytes(prompt),
            )
        )
    output_bytes = OFT_CHUNK * OFT_ACTION_DIM * FLOAT32_BYTES
    blocks.append(
        BlockCost(
            name="action_head",  # final RMSNorm + MLPResNet
            flops=head_flops["Global"],
            weight_bytes=param_bytes(decoder.norm, action_head),
            activation_bytes=float(output_bytes),
        )
    )
    expected = 1 + OFT_IMAGES * 256 + 1 + OPENVLA_TEXT_TOKENS - 1 + OFT_SLOTS
    if prompt.shape[1] != expected or tuple(actions.shape) != (1, OFT_CHUNK, OFT_ACTION_DIM):
        raise AssertionError(f"unexpected shapes {tuple(prompt.shape)}, {tuple(actions.shape)}")
    return ArchProfile(
        name="openvla-oft-7b",
        blocks=tuple(blocks),
        input_bytes=int(raw_image_bytes + carried),
        output_bytes=output_bytes,
        decode_steps=0,
        source=OFT_SOURCE,
        token_bytes=0,
        loop="none",
    )
