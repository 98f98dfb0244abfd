"""Architecture cost profiles of full-size VLAs, counted on the ``meta`` device.

A profile is an ordered list of blocks, each with the FLOPs it executes in one inference, the
bytes of weights it keeps resident, and the bytes that would cross the network if the model were
split right after it. The numbers come from the real ``transformers`` architectures built on the
``meta`` device (shapes only: no memory, no weights, nothing downloaded) and run under
``torch.utils.flop_counter.FlopCounterMode``, so they are counted rather than typed in.

Counting needs ``torch`` and takes a few seconds, so the result is cached in
``rapid_env/data/profiles.json``; :func:`load_profile` only reads that file (no torch import).
Regenerate it with ``python -m rapid_env.cost.profiles --write``.

Adding a profile is one builder function decorated with :func:`profile_builder`; it must only
return an :class:`ArchProfile`, and ``--write`` picks it up.

Counting conventions (see ``docs/cost_model.md``):
    * ``FlopCounterMode`` counts matmul-class ops (mm, bmm, addmm, conv, SDPA) at 2 FLOPs per
      multiply-accumulate; element-wise work (norms, softmax, activations, RoPE) is not counted.
      It is well under 1 % of the total for these shapes and memory-bound anyway.
    * Weights are bf16 (2 bytes per parameter), as OpenVLA is served.
    * Token ids travel as int64 (8 bytes, what tokenizers return); camera images as raw uint8 RGB
      at the model's input resolution (the edge resizes before sending).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rapid_env.registry import Registry

PROFILES_JSON = Path(__file__).resolve().parent.parent / "data" / "profiles.json"
"""The cached profiles, shipped as package data."""

WRITE_COMMAND = "python -m rapid_env.cost.profiles --write"
BF16_BYTES = 2
TOKEN_ID_BYTES = 8
UINT8_BYTES = 1


@dataclass(frozen=True)
class BlockCost:
    """Cost of one block (an encoder, a projector, one decoder layer, the LM head).

    Attributes:
        name: Unique name within the profile, e.g. ``"llm.layer.07"``.
        flops: FLOPs this block executes in one whole inference: the prefill pass plus, for
            blocks inside the autoregressive loop, every single-token decode step.
        weight_bytes: Bytes of parameters the block keeps resident (bf16).
        activation_bytes: Bytes that cross the link if the model is split right after this block
            (after the prefill pass): the block's output plus anything computed or received
            earlier that later blocks still need (e.g. the raw image for a second vision encoder,
            the instruction's token ids).
        per_token: True if the block runs again for every decoded token (decoder layers, the LM
            head, the token-embedding lookup). Those blocks form a contiguous tail of the profile.
        decode_flops: FLOPs of one single-token decode step (average over the steps; attention
            over the growing KV cache makes later steps slightly dearer). 0 if not ``per_token``.
        decode_activation_bytes: Bytes that cross the link per decode step if split right after
            this block (one token's hidden state). 0 if not ``per_token``.
        kv_cache_bytes: KV-cache bytes the block holds at the end of the inference; resident on
            whichever side runs the block, and re-read by every decode step.
        read_bytes: Weight bytes actually read per forward pass, if not all of them (an embedding
            lookup reads one row per token, not the table). ``None`` means ``weight_bytes``.
    """

    name: str
    flops: float
    weight_bytes: float
    activation_bytes: float
    per_token: bool = False
    decode_flops: float = 0.0
    decode_activation_bytes: float = 0.0
    kv_cache_bytes: float = 0.0
    read_bytes: float | None = None

    def __post_init__(self) -> None:
        numbers = {
            "flops": self.flops,
            "weight_bytes": self.weight_bytes,
            "activation_bytes": self.activation_bytes,
            "decode_flops": self.decode_flops,
            "decode_activation_bytes": self.decode_activation_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
        }
        if self.read_bytes is not None:
            numbers["read_bytes"] = self.read_bytes
        for key, value in numbers.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"block {self.name!r}: {key} must be finite and >= 0, got {value}")
        if not self.per_token and (self.decode_flops or self.decode_activation_bytes):
            raise ValueError(
                f"block {self.name!r}: decode_flops/decode_activation_bytes need per_token=True"
            )

    @property
    def streamed_bytes(self) -> float:
        """Weight bytes read from DRAM per forward pass (prefill or one decode step)."""
        return self.weight_bytes if self.read_bytes is None else self.read_bytes

    def prefill_flops(self, decode_steps: int) -> float:
        """FLOPs of the prefill pass alone: the total minus the decode steps."""
        return max(0.0, self.flops - decode_steps * self.decode_flops)


@dataclass(frozen=True)
class ArchProfile:
    """The cost profile of one full-size VLA architecture.

    Attributes:
        name: Registry name, e.g. ``"openvla-7b"``.
        blocks: Blocks in execution order; a split point ``k`` puts ``blocks[:k]`` on the edge.
        input_bytes: Bytes sent up when everything runs in the cloud (raw camera image plus the
            tokenised instruction).
        output_bytes: Bytes of the action chunk sent back down.
        decode_steps: Single-token forward passes after the prefill. The prefill already yields
            the first token, so a model emitting ``T`` tokens has ``T - 1`` decode steps.
        source: Papers / model cards the configuration was written from.
        token_bytes: Bytes sent down per intermediate decode round when the split falls inside
            the decoder (the sampled token id, so the edge can embed it).
    """

    name: str
    blocks: tuple[BlockCost, ...]
    input_bytes: int
    output_bytes: int
    decode_steps: int
    source: str
    token_bytes: int = TOKEN_ID_BYTES

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError(f"profile {self.name!r} has no blocks")
        names = [b.name for b in self.blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"profile {self.name!r} has duplicate block names")
        for key in ("input_bytes", "output_bytes", "decode_steps", "token_bytes"):
            if getattr(self, key) < 0:
                raise ValueError(f"profile {self.name!r}: {key} must be >= 0")
        flags = [b.per_token for b in self.blocks]
        if any(flags):
            first = flags.index(True)
            if not all(flags[first:]):
                raise ValueError(
                    f"profile {self.name!r}: per-token blocks must form a contiguous tail"
                )

    @property
    def n_blocks(self) -> int:
        """Number of blocks; split points run from 0 to ``n_blocks``."""
        return len(self.blocks)

    @property
    def total_flops(self) -> float:
        """FLOPs of one whole inference."""
        return sum(b.flops for b in self.blocks)

    @property
    def weight_bytes(self) -> float:
        """Resident weight bytes of the whole model."""
        return sum(b.weight_bytes for b in self.blocks)

    def to_dict(self) -> dict[str, Any]:
        """Convert to a JSON-ready dict; :meth:`from_dict` inverts it exactly."""
        data = asdict(self)
        data["blocks"] = [asdict(b) for b in self.blocks]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchProfile:
        """Rebuild a profile from :meth:`to_dict` output (e.g. the cached JSON)."""
        fields = dict(data)
        fields["blocks"] = tuple(BlockCost(**b) for b in data["blocks"])
        return cls(**fields)


# --------------------------------------------------------------------------- registry and cache

BUILDERS: dict[str, Callable[[], ArchProfile]] = {}
"""Profile name -> builder that counts it from the architecture (slow; needs torch)."""

PROFILES: Registry[ArchProfile] = Registry("profile")
"""Profile names -> cached profiles; ``PROFILES.create(name)`` reads the JSON like
:func:`load_profile`. Unknown names list the allowed ones."""


def profile_builder(name: str) -> Callable[[Callable[[], ArchProfile]], Callable[[], ArchProfile]]:
    """Register a builder function under ``name`` (for ``--write``) and the name in PROFILES."""

    def decorate(builder: Callable[[], ArchProfile]) -> Callable[[], ArchProfile]:
        BUILDERS[name] = builder
        PROFILES.register(name, partial(load_profile, name))
        return builder

    return decorate


def load_profile(name: str, path: Path | str | None = None) -> ArchProfile:
    """Read one cached profile from ``profiles.json`` (fast: no torch, no counting).

    Args:
        name: A registered profile name.
        path: Another JSON file in the same format (default: the shipped cache).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the allowed names).
        KeyError: The name is registered but the cache lacks it (run the write command).
    """
    PROFILES.check(name)
    cache = Path(path) if path is not None else PROFILES_JSON
    data = json.loads(cache.read_text())
    profiles = data["profiles"]
    if name not in profiles:
        raise KeyError(f"profile {name!r} is not in {cache}; regenerate it with `{WRITE_COMMAND}`")
    return ArchProfile.from_dict(profiles[name])


def build_profiles(names: Iterable[str] | None = None) -> dict[str, ArchProfile]:
    """Count profiles from their architectures (slow: imports torch and transformers)."""
    selected = list(BUILDERS) if names is None else [PROFILES.check(n) for n in names]
    return {name: BUILDERS[name]() for name in selected}


def write_profiles(path: Path | str | None = None, names: Iterable[str] | None = None) -> Path:
    """Regenerate the cache. Profiles not rebuilt are kept as they were in an existing file."""
    target = Path(path) if path is not None else PROFILES_JSON
    existing: dict[str, Any] = {}
    if target.exists():
        existing = json.loads(target.read_text()).get("profiles", {})
    for name, built in build_profiles(names).items():
        existing[name] = built.to_dict()
    payload = {
        "generated_by": WRITE_COMMAND,
        "note": "Counted on the meta device from transformers architectures; do not edit by hand.",
        "profiles": {name: existing[name] for name in sorted(existing)},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=1) + "\n")
    return target


# ------------------------------------------------------------------------------ counting helpers


def _count_flops(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run ``fn`` under FlopCounterMode; return its result and FLOPs per module name.

    Module names are FlopCounterMode's: ``"Global"`` for everything, then the root module's class
    name followed by the dotted submodule path, e.g. ``"LlamaModel.layers.3"``.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        result = fn()
    per_module = {
        module: float(sum(ops.values())) for module, ops in counter.get_flop_counts().items()
    }
    return result, per_module


def _param_bytes(module: Any) -> float:
    """Resident parameter bytes of a module (numel x element size of its dtype)."""
    return float(sum(p.numel() * p.element_size() for p in module.parameters()))


def _bf16_eval(module: Any, dtype: Any) -> Any:
    """Cast a module to ``dtype`` and put it in eval mode (typed ``Any``: HF stubs are partial)."""
    return module.to(dtype).eval()


def _lm_logits(llm: Any, hidden: Any) -> Any:
    """Apply the final norm and LM head to the given positions (generate() keeps the last one)."""
    return llm.lm_head(llm.model.norm(hidden))


def _nbytes(tensor: Any) -> float:
    """Bytes of a (meta) tensor from its shape and dtype."""
    return float(tensor.numel() * tensor.element_size())


# ---------------------------------------------------------------------------------- OpenVLA-7B

OPENVLA_IMAGE_SIZE = 224
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


def _openvla_projector(vision_dim: int, llm_dim: int) -> Any:
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


@profile_builder("openvla-7b")
def build_openvla_7b() -> ArchProfile:
    """Count OpenVLA-7B block by block from its ``transformers`` parts on the meta device.

    Why this block list: splitting between whole vision encoders, after the projector, or between
    any two decoder layers are the cut points a Neurosurgeon-style partitioner would consider;
    the token embedding is its own block because whoever runs decoder layer 0 must also hold the
    embedding table to embed each newly decoded token.
    """
    import torch
    from transformers import (
        Dinov2WithRegistersConfig,
        Dinov2WithRegistersModel,
        LlamaConfig,
        LlamaForCausalLM,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    dtype = torch.bfloat16
    decode_steps = OPENVLA_ACTION_TOKENS - 1
    dino_cfg = Dinov2WithRegistersConfig(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        mlp_ratio=4,
        image_size=OPENVLA_IMAGE_SIZE,
        patch_size=14,
        num_register_tokens=4,
    )
    # The checkpoint carries SigLIP's attention-pooling head (15.2 M params) although Prismatic
    # reads patch features and never runs it: keep it for memory, drop its FLOPs below.
    siglip_cfg = SiglipVisionConfig(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=27,
        num_attention_heads=16,
        image_size=OPENVLA_IMAGE_SIZE,
        patch_size=14,
        vision_use_head=True,
    )
    llama_cfg = LlamaConfig(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32064,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
    )
    with torch.device("meta"):
        dino = _bf16_eval(Dinov2WithRegistersModel(dino_cfg), dtype)
        siglip = _bf16_eval(SiglipVisionModel(siglip_cfg), dtype)
        vision_dim = dino_cfg.hidden_size + siglip_cfg.hidden_size
        projector = _bf16_eval(_openvla_projector(vision_dim, llama_cfg.hidden_size), dtype)
        llm = _bf16_eval(LlamaForCausalLM(llama_cfg), dtype)

        pixels = torch.empty(1, 3, OPENVLA_IMAGE_SIZE, OPENVLA_IMAGE_SIZE, dtype=dtype)
        raw_image_bytes = float(pixels.numel() * UINT8_BYTES)
        text_ids = torch.zeros(1, OPENVLA_TEXT_TOKENS, dtype=torch.long)
        text_id_bytes = _nbytes(text_ids)

        dino_out, dino_flops = _count_flops(lambda: dino(pixel_values=pixels).last_hidden_state)
        prefix = 1 + dino_cfg.num_register_tokens  # CLS + registers: Prismatic keeps patches only
        dino_patches = dino_out[:, prefix:, :]
        siglip_out, siglip_flops = _count_flops(
            lambda: siglip(pixel_values=pixels).last_hidden_state
        )
        fused = torch.cat([dino_patches, siglip_out], dim=-1)
        patch_embeds, projector_flops = _count_flops(lambda: projector(fused))

        text_embeds = llm.model.embed_tokens(text_ids)
        # OpenVLA inserts the patch embeddings right after BOS.
        prompt = torch.cat([text_embeds[:, :1], patch_embeds, text_embeds[:, 1:]], dim=1)
        prompt_tokens = prompt.shape[1]

        decoder = llm.model
        out, prefill_counts = _count_flops(lambda: decoder(inputs_embeds=prompt, use_cache=True))
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        last_hidden = out.last_hidden_state[:, -1:, :]
        _, head_prefill = _count_flops(partial(_lm_logits, llm, last_hidden))

        decode_counts: dict[str, float] = {}
        head_decode = 0.0
        step_input = torch.empty(1, 1, llama_cfg.hidden_size, dtype=dtype)
        for _ in range(decode_steps):
            step, counts = _count_flops(
                lambda: decoder(inputs_embeds=step_input, cache=cache, use_cache=True)
            )
            for module, value in counts.items():
                decode_counts[module] = decode_counts.get(module, 0.0) + value
            _, head_counts = _count_flops(partial(_lm_logits, llm, step.last_hidden_state))
            head_decode += head_counts["Global"]

    hidden_bytes = float(llama_cfg.hidden_size * BF16_BYTES)  # one token's hidden state
    blocks: list[BlockCost] = [
        BlockCost(
            name="vision.dinov2",
            flops=dino_flops["Global"],
            weight_bytes=_param_bytes(dino),
            # SigLIP in the cloud still needs the image; the decoder needs the instruction.
            activation_bytes=_nbytes(dino_patches) + raw_image_bytes + text_id_bytes,
        ),
        BlockCost(
            name="vision.siglip",
            flops=siglip_flops["Global"] - siglip_flops.get("SiglipVisionModel.head", 0.0),
            weight_bytes=_param_bytes(siglip),
            activation_bytes=_nbytes(fused) + text_id_bytes,
        ),
        BlockCost(
            name="projector",
            flops=projector_flops["Global"],
            weight_bytes=_param_bytes(projector),
            activation_bytes=_nbytes(patch_embeds) + text_id_bytes,
        ),
        BlockCost(
            name="llm.embed_tokens",
            flops=0.0,  # a lookup, no arithmetic
            weight_bytes=_param_bytes(decoder.embed_tokens),
            activation_bytes=_nbytes(prompt),
            per_token=True,
            decode_activation_bytes=hidden_bytes,
            read_bytes=hidden_bytes * OPENVLA_TEXT_TOKENS,
        ),
    ]
    n_layers = llama_cfg.num_hidden_layers
    for i, layer in enumerate(decoder.layers):
        key = f"LlamaModel.layers.{i}"
        layer_cache = cache.layers[i]
        is_last = i == n_layers - 1
        blocks.append(
            BlockCost(
                name=f"llm.layer.{i:02d}",
                flops=prefill_counts[key] + decode_counts[key],
                weight_bytes=_param_bytes(layer),
                # After the last layer only the last position feeds the LM head.
                activation_bytes=hidden_bytes if is_last else _nbytes(out.last_hidden_state),
                per_token=True,
                decode_flops=decode_counts[key] / decode_steps,
                decode_activation_bytes=hidden_bytes,
                kv_cache_bytes=_nbytes(layer_cache.keys) + _nbytes(layer_cache.values),
            )
        )
    blocks.append(
        BlockCost(
            name="llm.lm_head",
            flops=head_prefill["Global"] + head_decode,
            weight_bytes=_param_bytes(llm.lm_head) + _param_bytes(decoder.norm),
            activation_bytes=float(OPENVLA_ACTION_TOKENS * 4),
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
        output_bytes=OPENVLA_ACTION_TOKENS * 4,  # 7 float32 action values
        decode_steps=decode_steps,
        source=OPENVLA_SOURCE,
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--write`` regenerates the cache, otherwise print a summary of it."""
    parser = argparse.ArgumentParser(prog="python -m rapid_env.cost.profiles", description=__doc__)
    parser.add_argument("--write", action="store_true", help="recount and rewrite the cache")
    parser.add_argument("--path", type=Path, default=None, help="cache file (default: shipped)")
    parser.add_argument("names", nargs="*", help="profiles to rebuild (default: all)")
    args = parser.parse_args(argv)
    if args.write:
        target = write_profiles(args.path, args.names or None)
        print(f"wrote {target}")
    for name in args.names or PROFILES.names():
        prof = load_profile(name, args.path)
        print(
            f"{name}: {prof.n_blocks} blocks, {prof.total_flops / 1e12:.3f} TFLOP, "
            f"{prof.weight_bytes / 1e9:.3f} GB weights, "
            f"{sum(p.kv_cache_bytes for p in prof.blocks) / 1e6:.1f} MB KV cache"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
