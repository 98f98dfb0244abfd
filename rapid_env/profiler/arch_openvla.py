"""Profiles of the Prismatic-based VLAs: OpenVLA-7B and OpenVLA-OFT-7B.

Both share Prismatic's fused DINOv2 + SigLIP vision backbone, its MLP projector and a Llama-2-7B
decoder; they differ in how actions come out. OpenVLA decodes 7 action tokens one at a time with a
KV cache; OFT fills 56 empty action slots (8 actions x 7 dimensions) in ONE bidirectional pass and
reads continuous actions off their hidden states with an MLP head. See ``docs/cost_model.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    resident_only,
    residual,
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

DINOV2_REG4_LARGE = "vit_large_patch14_reg4_dinov2.lvd142m"
SIGLIP_SO400M_224 = "vit_so400m_patch14_siglip_224"
SIGLIP_SO400M_384 = "vit_so400m_patch14_siglip_384"
CLIP_LARGE_224 = "vit_large_patch14_clip_224.openai"


@dataclass(frozen=True)
class VisionTower:
    """One of a Prismatic backbone's vision towers, named by its timm id in the HF config.

    Attributes:
        block: The profile block's name (``vision.<block>``).
        model_class: The ``transformers`` class that builds it.
        config: That class's config keywords (``image_size`` is filled in per backbone).
        prefix_tokens: Leading tokens Prismatic drops (CLS, registers): it reads patches only.
        head: Name of a submodule kept in the checkpoint but never run (weights count, FLOPs
            not), or ``None``.
    """

    block: str
    model_class: str
    config: dict[str, Any]
    prefix_tokens: int = 0
    head: str | None = None


_DINOV2_LARGE: dict[str, Any] = {
    "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "mlp_ratio": 4,
    "patch_size": 14,
}
_SIGLIP_SO400M: dict[str, Any] = {
    "hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
    "num_attention_heads": 16, "patch_size": 14, "vision_use_head": True,
}
TIMM_TOWERS: dict[str, VisionTower] = {
    DINOV2_REG4_LARGE: VisionTower(
        "dinov2", "Dinov2WithRegistersModel", {**_DINOV2_LARGE, "num_register_tokens": 4}, 5
    ),
    # The checkpoint carries SigLIP's attention-pooling head (15.2 M params) although Prismatic
    # reads patch features and never runs it: its weights count, its FLOPs do not.
    SIGLIP_SO400M_224: VisionTower("siglip", "SiglipVisionModel", _SIGLIP_SO400M, 0, "head"),
    SIGLIP_SO400M_384: VisionTower("siglip", "SiglipVisionModel", _SIGLIP_SO400M, 0, "head"),
    CLIP_LARGE_224: VisionTower(
        "clip", "CLIPVisionModel",
        {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
         "num_attention_heads": 16, "patch_size": 14},
        1,
    ),
}
"""The timm vision towers Prismatic VLAs name (``timm_model_ids``) that the profiler can build
in ``transformers`` on the meta device; the configs are the published ones."""

PROJECTORS = ("fused-gelu-mlp", "gelu-mlp", "linear")
"""Prismatic's projector kinds (the part of ``arch_specifier`` after ``+``)."""

LLAMA2_7B: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": LLAMA_WIDTH,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32064,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
}
"""Llama-2-7B as OpenVLA ships it (vocab padded to 32064)."""


@dataclass(frozen=True)
class PrismaticSpec:
    """What a Prismatic-style VLA's profile is counted from (defaults: OpenVLA-7B).

    Attributes:
        towers: timm ids of the vision towers, in the order their features are concatenated.
        image_size: Input resolution of every tower (square).
        projector: One of :data:`PROJECTORS`.
        llm: The language model's ``transformers`` config (``model_type`` and its fields).
        text_tokens: Tokens of the prompt text, BOS included (the patches go after BOS).
        action_tokens: Action tokens decoded per call (one per action dimension).
        name, source: The profile's name and its provenance string.
    """

    towers: tuple[str, ...] = (DINOV2_REG4_LARGE, SIGLIP_SO400M_224)
    image_size: int = PRISMATIC_IMAGE_SIZE
    projector: str = "fused-gelu-mlp"
    llm: dict[str, Any] = field(default_factory=lambda: dict(LLAMA2_7B))
    text_tokens: int = OPENVLA_TEXT_TOKENS
    action_tokens: int = OPENVLA_ACTION_TOKENS
    name: str = "openvla-7b"
    source: str = OPENVLA_SOURCE


@dataclass(frozen=True)
class _PrismaticVision:
    """The counted vision half of a Prismatic VLA for ``n_images`` camera images.

    Attributes:
        towers: Per tower: its block name, the meta-device module (for its weight bytes), its
            patch features ``(n_images, patches, width)`` and its counted FLOPs.
        projector: The projector module.
        fused: Every tower's features concatenated, ``(n_images, patches, sum of widths)``.
        patch_embeds: Projected patch embeddings ``(n_images, patches, llm width)``.
        projector_flops: Counted FLOPs of the projector.
    """

    towers: list[tuple[str, Any, Any, float]]
    projector: Any
    fused: Any
    patch_embeds: Any
    projector_flops: float

    @property
    def patches(self) -> int:
        """Patch embeddings per image (what the prompt holds per image)."""
        return int(self.patch_embeds.shape[1])


def _prismatic_projector(kind: str, vision_dim: int, llm_dim: int) -> Any:
    """One of Prismatic's projectors, from the vision features' width to the LM's.

    ``fused-gelu-mlp``: Linear(v, 4v), GELU, Linear(4v, d), GELU, Linear(d, d); ``gelu-mlp``:
    Linear(v, d), GELU, Linear(d, d); ``linear``: Linear(v, d).
    """
    from torch import nn

    if kind == "fused-gelu-mlp":
        hidden = 4 * vision_dim
        return nn.Sequential(
            nn.Linear(vision_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, llm_dim),
            nn.GELU(),
            nn.Linear(llm_dim, llm_dim),
        )
    if kind == "gelu-mlp":
        return nn.Sequential(nn.Linear(vision_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim))
    if kind == "linear":
        return nn.Linear(vision_dim, llm_dim)
    raise ValueError(f"unknown projector {kind!r}; allowed: {', '.join(PROJECTORS)}")


def _tower(timm_id: str, image_size: int, dtype: Any) -> tuple[VisionTower, Any]:
    """Build one vision tower on the meta device (call inside ``torch.device("meta")``)."""
    import transformers

    if timm_id not in TIMM_TOWERS:
        raise ValueError(
            f"no profile rule for vision tower {timm_id!r}; allowed: {', '.join(TIMM_TOWERS)}"
        )
    tower = TIMM_TOWERS[timm_id]
    model_cls = getattr(transformers, tower.model_class)
    cfg = model_cls.config_class(**tower.config, image_size=image_size)
    return tower, to_eval(model_cls(cfg), dtype)


def _patch_features(model: Any, pixels: Any) -> Any:
    """A vision tower's last hidden states (every token, CLS and registers included)."""
    return model(pixel_values=pixels).last_hidden_state


def _count_prismatic_vision(
    n_images: int, dtype: Any, spec: PrismaticSpec | None = None, llm_dim: int = LLAMA_WIDTH
) -> _PrismaticVision:
    """Build and count a Prismatic fused backbone + projector on meta (default: OpenVLA's)."""
    import torch

    spec = spec or PrismaticSpec()
    size = spec.image_size
    towers: list[tuple[str, Any, Any, float]] = []
    names: list[str] = []
    with torch.device("meta"):
        pixels = torch.empty(n_images, 3, size, size, dtype=dtype)
        for timm_id in spec.towers:
            tower, model = _tower(timm_id, size, dtype)
            out, counts = count_flops(partial(_patch_features, model, pixels))
            flops = counts["Global"]
            if tower.head is not None:
                head = getattr(model, tower.head, None) or getattr(model.vision_model, tower.head)
                resident_only(head, "kept in the checkpoint, never run")
                flops -= counts.get(f"{type(model).__name__}.{tower.head}", 0.0)
            name = tower.block if tower.block not in names else f"{tower.block}{len(names)}"
            names.append(name)
            towers.append((name, model, out[:, tower.prefix_tokens :, :], flops))
        shapes = {t[2].shape[1] for t in towers}
        if len(shapes) != 1:
            raise ValueError(f"vision towers {spec.towers} give different patch counts {shapes}")
        fused = torch.cat([t[2] for t in towers], dim=-1)
        projector = to_eval(_prismatic_projector(spec.projector, fused.shape[-1], llm_dim), dtype)
        patch_embeds, projector_flops = count_flops(lambda: projector(fused))
    return _PrismaticVision(
        towers=towers,
        projector=projector,
        fused=fused,
        patch_embeds=patch_embeds,
        projector_flops=projector_flops["Global"],
    )


def _language_model(llm: dict[str, Any], dtype: Any) -> Any:
    """A ``transformers`` causal LM from its config dict (``model_type`` + fields), on meta."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = dict(llm)
    model_type = fields.pop("model_type", None)
    if not isinstance(model_type, str):
        raise ValueError("text_config.model_type: missing; a transformers model type, e.g. 'llama'")
    try:
        cfg = AutoConfig.for_model(model_type, **fields)
    except ValueError as exc:
        raise ValueError(f"text_config.model_type {model_type!r}: {exc}") from None
    with torch.device("meta"):
        return to_eval(AutoModelForCausalLM.from_config(cfg), dtype)


def _llama2_7b(dtype: Any) -> Any:
    """Llama-2-7B as OpenVLA ships it (vocab padded to 32064), on the meta device."""
    return _language_model(LLAMA2_7B, dtype)


def _vision_blocks(
    vision: _PrismaticVision, raw_image_bytes: float, carried_bytes: float
) -> list[BlockCost]:
    """One block per vision tower; ``carried_bytes`` (ids, proprio) ride along every cut.

    A cut after tower ``i`` ships the features so far and, while a later tower still needs it,
    the raw image; after the last tower it ships the fused features.
    """
    blocks = []
    n = len(vision.towers)
    for i, (name, model, _, flops) in enumerate(vision.towers):
        so_far = sum(nbytes(t[2]) for t in vision.towers[: i + 1])
        later_needs_image = raw_image_bytes if i < n - 1 else 0.0
        blocks.append(
            BlockCost(
                name=f"vision.{name}",
                flops=flops,
                weight_bytes=param_bytes(model),
                activation_bytes=so_far + later_needs_image + carried_bytes,
            )
        )
    return blocks


def _lm_logits(llm: Any, hidden: Any) -> Any:
    """Apply the final norm and LM head to the given positions (generate() keeps the last one)."""
    return llm.get_output_embeddings()(llm.get_decoder().norm(hidden))


# ------------------------------------------------------------------------------------ OpenVLA-7B


@profile_builder("openvla-7b")
def build_openvla_7b() -> ArchProfile:
    """Count OpenVLA-7B block by block from its ``transformers`` parts on the meta device."""
    return count_openvla(PrismaticSpec())


def count_openvla(spec: PrismaticSpec) -> ArchProfile:
    """Count an OpenVLA-style VLA (Prismatic backbone, decoder LM, action tokens) on meta.

    Why this block list: splitting between whole vision encoders, after the projector, or between
    any two decoder layers are the cut points a Neurosurgeon-style partitioner would consider;
    the token embedding is its own block because whoever runs decoder layer 0 must also hold the
    embedding table to embed each newly decoded token.
    """
    import torch

    dtype = torch.bfloat16
    if spec.action_tokens < 2:
        raise ValueError(f"action_tokens={spec.action_tokens}; allowed: an int >= 2")
    decode_steps = spec.action_tokens - 1
    llm = _language_model(spec.llm, dtype)
    decoder = llm.get_decoder()
    width = int(llm.config.hidden_size)
    vision = _count_prismatic_vision(1, dtype, spec, width)
    with torch.device("meta"):
        raw_image_bytes = image_bytes(1, spec.image_size)
        text_ids = torch.zeros(1, spec.text_tokens, dtype=torch.long)
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
        step_input = torch.empty(1, 1, width, dtype=dtype)
        for _ in range(decode_steps):
            step, counts = count_flops(
                lambda: decoder(inputs_embeds=step_input, cache=cache, use_cache=True)
            )
            for module, value in counts.items():
                decode_counts[module] = decode_counts.get(module, 0.0) + value
            _, head_counts = count_flops(partial(_lm_logits, llm, step.last_hidden_state))
            head_decode += head_counts["Global"]

    hidden_bytes = float(width * BF16_BYTES)  # one token's hidden state
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
            read_bytes=hidden_bytes * spec.text_tokens,
        ),
    ]
    n_layers = len(decoder.layers)
    layer_key = f"{type(decoder).__name__}.layers"
    for i, layer in enumerate(decoder.layers):
        key = f"{layer_key}.{i}"
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
            weight_bytes=param_bytes(llm.get_output_embeddings(), decoder.norm),
            activation_bytes=float(spec.action_tokens * FLOAT32_BYTES),
            per_token=True,
            decode_flops=head_decode / decode_steps,
            decode_activation_bytes=float(TOKEN_ID_BYTES),
        )
    )
    if prompt_tokens != vision.patches + spec.text_tokens:
        raise AssertionError(f"unexpected prompt length {prompt_tokens}")
    return ArchProfile(
        name=spec.name,
        blocks=tuple(blocks),
        input_bytes=int(raw_image_bytes + text_id_bytes),
        output_bytes=spec.action_tokens * FLOAT32_BYTES,  # one float32 per action dimension
        decode_steps=decode_steps,
        source=spec.source,
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
        resident_only(llm.lm_head, "loaded with the language model, not needed for regression")
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
