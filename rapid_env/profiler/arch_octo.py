"""Profile of Octo-Base (Octo Model Team 2024): a 93M transformer policy with a diffusion head.

Small convolutional stems turn the primary (256 px) and wrist (128 px) images of the last two
frames into tokens; a ViT-B-sized transformer runs over them, the instruction's T5 tokens and one
readout token per frame; a small MLP denoises a chunk of 4 actions from the readout embeddings
in 20 diffusion steps. See ``docs/cost_model.md``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from rapid_env.cost.profiles import ArchProfile, BlockCost
from rapid_env.profiler.counting import (
    BF16_BYTES,
    FLOAT32_BYTES,
    count_flops,
    count_repeated,
    image_bytes,
    nbytes,
    param_bytes,
    residual,
    to_eval,
)
from rapid_env.profiler.registry import profile_builder

WINDOW = 2
"""Octo's observation history: the current and the previous frame, re-encoded every call."""
PRIMARY_SIZE = 256
WRIST_SIZE = 128
STEM_PATCH = 16
"""SmallStem16: four stride-2 convs (x16 downsampling) then a 1x1 'patch' conv -> 16 px tokens."""
STEM_FEATURES = (32, 96, 192, 384)
STEM_OUT = 512
WIDTH = 768
LANGUAGE_TOKENS = 16
"""T5-base tokens of the instruction (Octo pads/truncates to 16)."""
READOUTS_PER_FRAME = 1
CHUNK = 4
ACTION_DIM = 7
DIFFUSION_STEPS = 20
TIME_DIM = 32
HEAD_HIDDEN = 256
HEAD_BLOCKS = 3

OCTO_SOURCE = (
    "Octo (Octo Model Team, 'Octo: An Open-Source Generalist Robot Policy', arXiv 2405.12213) "
    "and the rail-berkeley/octo code, octo-base-1.5 (93M): per frame, 'image_primary' 256 px and "
    "'image_wrist' 128 px through separate SmallStem16 tokenizers (4 x [3x3 stride-2 conv "
    "(32, 96, 192, 384 channels), GroupNorm, ReLU], then a 1x1 conv to 512 -> 16x16 = 256 and "
    "8x8 = 64 tokens), each projected Linear(512, 768) with learned position embeddings; the "
    "instruction as 16 T5-base encoder tokens projected Linear(768, 768); 1 readout token per "
    "frame; window of 2 frames -> 16 + 2 x (256 + 64 + 1) = 658 tokens through a ViT-B "
    "transformer (768 wide, 12 layers, 12 heads, MLP 3072, pre-LN, final LayerNorm; block-causal "
    "mask, which does not change counted FLOPs). Diffusion action head (use_map=False: mean of "
    "the readout tokens): ScoreActor = learnable Fourier time features (32) -> MLP(64, 32) "
    "(swish), concatenated with the 768-d readout and the noisy 4 x 7 chunk -> MLPResNet (Dense "
    "256, 3 x [LayerNorm, Dense 1024, swish, Dense 256] residual, swish, Dense 28), run for both "
    "window frames, 20 DDPM steps. The T5-base encoder (110M, frozen) embeds the instruction "
    "once per episode (Octo's create_tasks), so it is treated as precomputed: not in the "
    "per-inference profile, its 16 x 768 output cached on the side that needs it. Images travel "
    "as raw uint8 for both frames (stateless calls); 4 x 7 float32 actions come back."
)


def _small_stem16() -> Any:
    """Octo's ``SmallStem16`` image tokenizer backbone (weight-standardised convs: same FLOPs)."""
    from torch import nn

    layers: list[Any] = []
    channels = 3
    for features in STEM_FEATURES:
        layers += [
            nn.Conv2d(channels, features, kernel_size=3, stride=2, padding=1),
            nn.GroupNorm(32, features),
            nn.ReLU(),
        ]
        channels = features
    patch = STEM_PATCH // 16  # SmallStem: kernel = patch_size // 16 after the x16 downsampling
    layers.append(nn.Conv2d(channels, STEM_OUT, kernel_size=patch, stride=patch))
    return nn.Sequential(*layers)


def _tokenizer() -> Any:
    """A stem plus its ``obs_projection`` to the transformer width."""
    from torch import nn

    return nn.ModuleDict({"stem": _small_stem16(), "projection": nn.Linear(STEM_OUT, WIDTH)})


def _tokenize(tokenizer: Any, pixels: Any) -> Any:
    """Frames -> tokens ``(1, frames * tokens_per_frame, 768)``."""
    features = tokenizer["stem"](pixels).flatten(2).transpose(1, 2)
    return tokenizer["projection"](features).reshape(1, -1, WIDTH)


def _score_network() -> Any:
    """Octo's diffusion ``ScoreActor`` as two pieces: time encoder and reverse network."""
    from torch import nn

    blocks = [
        residual(
            nn.Sequential(
                nn.LayerNorm(HEAD_HIDDEN),
                nn.Linear(HEAD_HIDDEN, 4 * HEAD_HIDDEN),
                nn.SiLU(),
                nn.Linear(4 * HEAD_HIDDEN, HEAD_HIDDEN),
            )
        )
        for _ in range(HEAD_BLOCKS)
    ]
    return nn.ModuleDict(
        {
            "fourier": nn.Linear(1, TIME_DIM // 2, bias=False),  # learnable Fourier kernel
            "cond_encoder": nn.Sequential(
                nn.Linear(TIME_DIM, 2 * TIME_DIM), nn.SiLU(), nn.Linear(2 * TIME_DIM, TIME_DIM)
            ),
            "reverse": nn.Sequential(
                nn.Linear(TIME_DIM + WIDTH + CHUNK * ACTION_DIM, HEAD_HIDDEN),
                *blocks,
                nn.SiLU(),
                nn.Linear(HEAD_HIDDEN, CHUNK * ACTION_DIM),
            ),
        }
    )


def _denoise_step(net: Any, readout: Any, noisy: Any, time: Any) -> Any:
    """One reverse-diffusion step's network call: predicted noise for every window frame."""
    import torch

    angles = net["fourier"](time)
    cond = net["cond_encoder"](torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1))
    return net["reverse"](torch.cat([cond, readout, noisy], dim=-1))


def _octo_transformer(dtype: Any) -> Any:
    """The ViT-B encoder Octo-Base runs over its token sequence (its patch embedding unused)."""
    import torch
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(
        hidden_size=WIDTH, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    )
    with torch.device("meta"):
        return to_eval(ViTModel(cfg, add_pooling_layer=False), dtype)


def _position_bytes(tokens: int) -> float:
    """Learned position embeddings of ``tokens`` tokens (bf16)."""
    return float(tokens * WIDTH * BF16_BYTES)


@profile_builder("octo-base")
def build_octo_base() -> ArchProfile:
    """Count Octo-Base: two stems, task tokens, 12 transformer layers, 20 diffusion steps."""
    import torch
    from torch import nn

    dtype = torch.bfloat16
    vit = _octo_transformer(dtype)
    with torch.device("meta"):
        primary = to_eval(_tokenizer(), dtype)
        wrist = to_eval(_tokenizer(), dtype)
        task_projection = to_eval(nn.Linear(WIDTH, WIDTH), dtype)
        head = to_eval(_score_network(), dtype)
        primary_px = torch.empty(WINDOW, 3, PRIMARY_SIZE, PRIMARY_SIZE, dtype=dtype)
        wrist_px = torch.empty(WINDOW, 3, WRIST_SIZE, WRIST_SIZE, dtype=dtype)
        primary_tokens, primary_flops = count_flops(lambda: _tokenize(primary, primary_px))
        wrist_tokens, wrist_flops = count_flops(lambda: _tokenize(wrist, wrist_px))
        t5_tokens = torch.empty(1, LANGUAGE_TOKENS, WIDTH, dtype=dtype)  # cached per episode
        task_tokens, task_flops = count_flops(lambda: task_projection(t5_tokens))
        readouts = torch.empty(1, WINDOW * READOUTS_PER_FRAME, WIDTH, dtype=dtype)
        sequence = torch.cat([task_tokens, primary_tokens, wrist_tokens, readouts], dim=1)

        layer_flops = []
        hidden = sequence
        for layer in vit.layers:
            hidden, counts = count_flops(partial(layer, hidden))
            layer_flops.append(counts["Global"])
        readout_out = vit.layernorm(hidden)[:, -WINDOW * READOUTS_PER_FRAME :, :]
        readout = readout_out.reshape(1, WINDOW, READOUTS_PER_FRAME, WIDTH).mean(dim=2)
        noisy = torch.empty(1, WINDOW, CHUNK * ACTION_DIM, dtype=dtype)
        time = torch.empty(1, WINDOW, 1, dtype=dtype)
        eps, head_flops = count_repeated(
            lambda: _denoise_step(head, readout, noisy, time), DIFFUSION_STEPS
        )

    primary_per_frame = primary_tokens.shape[1] // WINDOW
    wrist_per_frame = wrist_tokens.shape[1] // WINDOW
    raw_wrist = image_bytes(WINDOW, WRIST_SIZE)
    blocks = [
        BlockCost(
            name="tokenizer.primary",
            flops=primary_flops["Global"],
            weight_bytes=param_bytes(primary) + _position_bytes(WINDOW * primary_per_frame),
            activation_bytes=nbytes(primary_tokens) + raw_wrist,
        ),
        BlockCost(
            name="tokenizer.wrist",
            flops=wrist_flops["Global"],
            weight_bytes=param_bytes(wrist) + _position_bytes(WINDOW * wrist_per_frame),
            activation_bytes=nbytes(primary_tokens) + nbytes(wrist_tokens),
        ),
        BlockCost(
            name="tokenizer.task",  # language projection + readout tokens -> the sequence
            flops=task_flops["Global"],
            weight_bytes=param_bytes(task_projection)
            + _position_bytes(LANGUAGE_TOKENS + WINDOW * READOUTS_PER_FRAME),
            activation_bytes=nbytes(sequence),
        ),
    ]
    n_layers = len(vit.layers)
    for i, layer in enumerate(vit.layers):
        is_last = i == n_layers - 1
        blocks.append(
            BlockCost(
                name=f"transformer.layer.{i:02d}",
                flops=layer_flops[i],
                weight_bytes=param_bytes(layer) + (param_bytes(vit.layernorm) if is_last else 0),
                # After the last layer only the readout tokens feed the head.
                activation_bytes=nbytes(readout_out) if is_last else nbytes(sequence),
            )
        )
    output_bytes = CHUNK * ACTION_DIM * FLOAT32_BYTES  # the last frame's chunk
    sample_bytes = int(eps.numel()) * FLOAT32_BYTES
    blocks.append(
        BlockCost(
            name="action_head.diffusion",
            flops=head_flops,
            weight_bytes=param_bytes(head),
            activation_bytes=float(output_bytes),
            per_token=True,
            decode_flops=head_flops / DIFFUSION_STEPS,
            decode_activation_bytes=float(sample_bytes),
        )
    )
    if sequence.shape[1] != LANGUAGE_TOKENS + WINDOW * (256 + 64 + READOUTS_PER_FRAME):
        raise AssertionError(f"unexpected sequence length {sequence.shape[1]}")
    return ArchProfile(
        name="octo-base",
        blocks=tuple(blocks),
        input_bytes=int(image_bytes(WINDOW, PRIMARY_SIZE) + raw_wrist),
        output_bytes=output_bytes,
        decode_steps=DIFFUSION_STEPS - 1,
        source=OCTO_SOURCE,
        token_bytes=sample_bytes,
        loop="diffusion",
    )
