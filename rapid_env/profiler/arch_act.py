"""Profile of ACT (Zhao et al. 2023), LeRobot's ``act`` policy: ResNet + transformer, one pass.

ACT encodes every camera image with a torchvision ResNet (ImageNet-style, frozen batch norm, no
pooling or classifier: ``layer4``'s feature map is the output), projects each feature-map cell to
a token (a 1x1 conv), adds a latent token and one token per robot / environment state vector,
runs a post-norm (or pre-norm) transformer encoder over them, and a transformer decoder whose
``chunk_size`` queries (zeros plus learned positions) cross-attend to the encoder output; a linear
head turns each query into one action. Everything runs once per inference: no decode loop.

The VAE encoder (``use_vae``) encodes the ground-truth action chunk and exists only for training
(at inference the latent is zeros); LeRobot still builds and loads it, so its weights are counted
as resident (in ``encoder.input``, not read) and its FLOPs are not counted.

The modules are re-created here in plain ``torch`` with LeRobot's shapes (``modeling_act.py``,
torchvision's ``resnet.py``); LeRobot itself is not imported. The parameter and FLOP counts per
part are checked against LeRobot's own ``ACTPolicy`` in the tests. See ``docs/cost_model.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from rapid_env.cost.profiles import ArchProfile, BlockCost
from rapid_env.profiler.arch_flow import LIBERO_ACTION_DIM, LIBERO_STATE_DIM
from rapid_env.profiler.counting import (
    FLOAT32_BYTES,
    UINT8_BYTES,
    count_flops,
    nbytes,
    param_bytes,
    resident_only,
    to_eval,
)

RESNETS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
"""torchvision ResNets ACT can take as ``vision_backbone``: block kind and blocks per stage."""
ACTIVATIONS = ("relu", "gelu")
"""``feedforward_activation`` values counted (LeRobot's ``glu`` halves the width ``linear2``
expects, so such a model cannot run)."""
ACT_CAMERAS = 2
ACT_IMAGE_SIZE = 256
"""The LIBERO-like observation the other profiles are costed with: two 256 px cameras."""

ACT_SOURCE = (
    "ACT (Zhao et al., 'Learning Fine-Grained Bimanual Manipulation with Low-Cost Hardware', "
    "arXiv 2304.13705) and LeRobot's act policy (configuration_act.py, modeling_act.py), "
    "LeRobot's defaults: per camera a torchvision ResNet-18 (frozen batch norm, up to layer4, "
    "no pooling, no fc) -> 512 x 8 x 8 feature map at 256 px -> Conv2d(512, 512, 1) -> 64 tokens; "
    "+ 1 latent token (zeros at inference, Linear(32, 512)) + 1 state token (Linear(8, 512)); "
    "transformer encoder (512 wide, 4 post-norm layers, 8 heads, FFN 3200, relu) over 2 x 64 + 2 "
    "= 130 tokens; decoder (1 layer: self-attention over 100 queries, cross-attention to the "
    "encoder output, FFN; final LayerNorm) over chunk_size = 100 queries (zeros + learned "
    "positions); action head Linear(512, 7). Sinusoidal 2D and learned 1D position embeddings "
    "are added to queries and keys (functions of shapes or tiny tables: held on both sides, never "
    "shipped). The VAE encoder (4 layers) is training-only: resident, not run. One pass, no loop; "
    "2 LIBERO cameras at 256 px (uint8) and an 8-d float32 state sent up, 100 x 7 float32 "
    "actions sent back."
)


@dataclass(frozen=True)
class ActSpec:
    """What an ACT profile is counted from (defaults: LeRobot's ACT on the LIBERO setup).

    Attributes:
        vision_backbone: A torchvision ResNet name (:data:`RESNETS`).
        dilation: ``replace_final_stride_with_dilation``: ``layer4`` keeps the resolution.
        pre_norm: Pre-norm transformer layers (and a final encoder norm) instead of post-norm.
        dim_model, n_heads, dim_feedforward: The transformer's width, heads and FFN width.
        activation: The FFN activation (:data:`ACTIVATIONS`).
        n_encoder_layers, n_decoder_layers: Transformer encoder / decoder depth.
        use_vae, latent_dim, n_vae_encoder_layers: The (training-only) VAE encoder; the latent
            token's projection runs at inference either way.
        chunk_size: Actions predicted per inference (the decoder's queries).
        cameras: Camera images per observation (0: environment state only).
        image_height, image_width: Their resolution (ACT does not resize).
        state_dim: Robot state size (0: none); env_state_dim: environment state size (0: none).
        action_dim: Action dimensions.
        name, source: The profile's name and its provenance string.
    """

    vision_backbone: str = "resnet18"
    dilation: bool = False
    pre_norm: bool = False
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    activation: str = "relu"
    n_encoder_layers: int = 4
    n_decoder_layers: int = 1
    use_vae: bool = True
    latent_dim: int = 32
    n_vae_encoder_layers: int = 4
    chunk_size: int = 100
    cameras: int = ACT_CAMERAS
    image_height: int = ACT_IMAGE_SIZE
    image_width: int = ACT_IMAGE_SIZE
    state_dim: int = LIBERO_STATE_DIM
    env_state_dim: int = 0
    action_dim: int = LIBERO_ACTION_DIM
    name: str = "act"
    source: str = ACT_SOURCE


def check_spec(spec: ActSpec) -> None:
    """Refuse what LeRobot's ACT cannot build, one line naming the field and the allowed values.

    Raises:
        ValueError: an unknown backbone or activation, a width the heads do not divide, a
            dilated basic-block ResNet, a size below 1, or no input to encode.
    """
    if spec.vision_backbone not in RESNETS:
        raise ValueError(
            f"vision_backbone: no profile rule for {spec.vision_backbone!r}; allowed: "
            f"{', '.join(RESNETS)}"
        )
    if spec.dilation and RESNETS[spec.vision_backbone][0] == "basic":
        raise ValueError(
            f"replace_final_stride_with_dilation: true needs a bottleneck ResNet (torchvision "
            f"refuses dilation in {spec.vision_backbone}); allowed: false, or resnet50/101/152"
        )
    if spec.activation not in ACTIVATIONS:
        raise ValueError(
            f"feedforward_activation: {spec.activation!r} is not modelled; allowed: "
            f"{', '.join(ACTIVATIONS)}"
        )
    positive = {
        "dim_model": spec.dim_model, "n_heads": spec.n_heads,
        "dim_feedforward": spec.dim_feedforward, "n_encoder_layers": spec.n_encoder_layers,
        "n_decoder_layers": spec.n_decoder_layers, "latent_dim": spec.latent_dim,
        "chunk_size": spec.chunk_size, "action_dim": spec.action_dim,
    }
    if spec.cameras:
        positive.update(image_height=spec.image_height, image_width=spec.image_width)
    if spec.use_vae:
        positive["n_vae_encoder_layers"] = spec.n_vae_encoder_layers
    for key, value in positive.items():
        if value < 1:
            raise ValueError(f"{key}: expected an int >= 1, got {value}")
    if spec.dim_model % spec.n_heads or spec.dim_model % 2:
        raise ValueError(
            f"dim_model: {spec.dim_model} must be even and divisible by n_heads={spec.n_heads}"
        )
    if spec.cameras < 0 or spec.state_dim < 0 or spec.env_state_dim < 0:
        raise ValueError("cameras, state_dim, env_state_dim: expected ints >= 0")
    if not spec.cameras and not spec.env_state_dim:
        raise ValueError(
            "input_features: ACT needs at least one VISUAL feature or an ENV "
            "(observation.environment_state) feature"
        )


def _frozen_bn(channels: int) -> Any:
    """Torchvision's ``FrozenBatchNorm2d``: four buffers, no parameters, element-wise."""
    import torch
    from torch import nn

    class FrozenBatchNorm2d(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for key in ("weight", "bias", "running_mean", "running_var"):
                self.register_buffer(key, torch.empty(channels))

        def forward(self, x: Any) -> Any:
            stats: dict[str, Any] = dict(self.named_buffers())
            scale = stats["weight"] * (stats["running_var"] + 1e-5).rsqrt()
            shift = stats["bias"] - stats["running_mean"] * scale
            return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    return FrozenBatchNorm2d()


def _conv(inp: int, out: int, kernel: int, stride: int = 1, dilation: int = 1) -> Any:
    """The torchvision ``conv3x3`` / ``conv1x1`` (no bias: a batch norm follows)."""
    from torch import nn

    padding = dilation if kernel == 3 else 0
    return nn.Conv2d(inp, out, kernel, stride=stride, padding=padding, dilation=dilation,
                     bias=False)


def _res_block(kind: str, inp: int, planes: int, stride: int, dilation: int) -> tuple[Any, int]:
    """One ``BasicBlock`` or ``Bottleneck`` (ResNet v1.5: the stride sits on the 3x3 conv)."""
    from torch import nn

    out = planes * (4 if kind == "bottleneck" else 1)
    if kind == "basic":
        body = [_conv(inp, planes, 3, stride), _frozen_bn(planes), nn.ReLU(),
                _conv(planes, planes, 3), _frozen_bn(planes)]
    else:
        body = [_conv(inp, planes, 1), _frozen_bn(planes), nn.ReLU(),
                _conv(planes, planes, 3, stride, dilation), _frozen_bn(planes), nn.ReLU(),
                _conv(planes, out, 1), _frozen_bn(out)]
    short = None
    if stride != 1 or inp != out:
        short = nn.Sequential(_conv(inp, out, 1, stride), _frozen_bn(out))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(*body)
            self.downsample = short

        def forward(self, x: Any) -> Any:
            skip = x if self.downsample is None else self.downsample(x)
            return (self.body(x) + skip).relu()

    return Block(), out


def resnet_stages(name: str, dilation: bool) -> tuple[list[tuple[str, Any]], int]:
    """The torchvision ResNet up to ``layer4`` as named stages, and its output channels.

    ``IntermediateLayerGetter(return_layers={"layer4": ...})`` in LeRobot drops the average pool
    and the classifier, so they are neither built nor counted.
    """
    from torch import nn

    kind, depths = RESNETS[name]
    stem = nn.Sequential(
        nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), _frozen_bn(64), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    stages: list[tuple[str, Any]] = [("stem", stem)]
    inp, current_dilation = 64, 1
    for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
        stride = 1 if i == 0 else 2
        previous = current_dilation
        if dilation and i == 3:  # replace_stride_with_dilation=[False, False, True]
            current_dilation *= stride
            stride = 1
        blocks = []
        for j in range(depth):
            block, inp = _res_block(kind, inp, planes, stride if j == 0 else 1,
                                    previous if j == 0 else current_dilation)
            blocks.append(block)
        stages.append((f"layer{i + 1}", nn.Sequential(*blocks)))
    return stages, inp


class _Parts:
    """The re-created ACT modules, grouped as LeRobot's ``ACT`` names them."""

    def __init__(self, spec: ActSpec, dtype: Any) -> None:
        import torch
        from torch import nn

        d = spec.dim_model
        with torch.device("meta"):
            self.stages: list[tuple[str, Any]] = []
            heads: dict[str, Any] = {}
            if spec.cameras:
                self.stages, channels = resnet_stages(spec.vision_backbone, spec.dilation)
                self.stages = [(n, to_eval(m, dtype)) for n, m in self.stages]
                heads["encoder_img_feat_input_proj"] = nn.Conv2d(channels, d, kernel_size=1)
            if spec.state_dim:
                heads["encoder_robot_state_input_proj"] = nn.Linear(spec.state_dim, d)
            if spec.env_state_dim:
                heads["encoder_env_state_input_proj"] = nn.Linear(spec.env_state_dim, d)
            heads["encoder_latent_input_proj"] = nn.Linear(spec.latent_dim, d)
            n_1d = 1 + bool(spec.state_dim) + bool(spec.env_state_dim)
            heads["encoder_1d_feature_pos_embed"] = nn.Embedding(n_1d, d)
            self.inputs = to_eval(nn.ModuleDict(heads), dtype)
            self.encoder = to_eval(_stack(spec, spec.n_encoder_layers, decoder=False), dtype)
            self.decoder = to_eval(_stack(spec, spec.n_decoder_layers, decoder=True), dtype)
            self.decoder_pos_embed = to_eval(nn.Embedding(spec.chunk_size, d), dtype)
            self.action_head = to_eval(nn.Linear(d, spec.action_dim), dtype)
            self.vae = to_eval(_vae_encoder(spec), dtype) if spec.use_vae else None

    def param_counts(self) -> dict[str, int]:
        """Parameters per part, named as the LeRobot cross-check groups them."""

        def count(*modules: Any) -> int:
            return sum(p.numel() for m in modules if m is not None for p in m.parameters())

        return {
            "backbone": count(*(m for _, m in self.stages)),
            "backbone_buffers": sum(b.numel() for _, m in self.stages for b in m.buffers()),
            "encoder": count(self.encoder),
            "decoder": count(self.decoder),
            "heads": count(self.inputs, self.decoder_pos_embed, self.action_head),
            "vae_encoder": count(self.vae),
        }


def _attention(d: int, heads: int) -> Any:
    """``nn.MultiheadAttention``'s weights as four linears (same shapes, FLOPs and parameters).

    Why not ``nn.MultiheadAttention`` itself: it applies ``out_proj`` through ``F.linear``, so the
    out-projection module would never run and the coverage check would (wrongly) call it
    uncounted.
    """
    import torch.nn.functional as F  # noqa: N812 (torch's conventional alias)
    from torch import nn

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q_proj = nn.Linear(d, d)
            self.k_proj = nn.Linear(d, d)
            self.v_proj = nn.Linear(d, d)
            self.out_proj = nn.Linear(d, d)

        def forward(self, q: Any, k: Any, v: Any) -> Any:
            def split(x: Any) -> Any:
                return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

            mixed = F.scaled_dot_product_attention(
                split(self.q_proj(q)), split(self.k_proj(k)), split(self.v_proj(v))
            )
            return self.out_proj(mixed.transpose(1, 2).flatten(2))

    return Attention()


def _layer(spec: ActSpec, decoder: bool) -> Any:
    """``ACTEncoderLayer`` / ``ACTDecoderLayer`` (dropout is the identity at inference)."""
    import torch.nn.functional as F  # noqa: N812 (torch's conventional alias)
    from torch import nn

    d = spec.dim_model
    act = F.relu if spec.activation == "relu" else F.gelu

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.self_attn = _attention(d, spec.n_heads)
            if decoder:
                self.multihead_attn = _attention(d, spec.n_heads)
            self.linear1 = nn.Linear(d, spec.dim_feedforward)
            self.linear2 = nn.Linear(spec.dim_feedforward, d)
            self.norm1 = nn.LayerNorm(d)
            self.norm2 = nn.LayerNorm(d)
            if decoder:
                self.norm3 = nn.LayerNorm(d)

        def forward(self, x: Any, pos: Any, memory: Any = None, memory_pos: Any = None) -> Any:
            norms = [self.norm1, self.norm2] + ([self.norm3] if decoder else [])
            steps = [lambda h: self.self_attn(h + pos, h + pos, h)]
            if decoder:
                steps.append(lambda h: self.multihead_attn(h + pos, memory + memory_pos, memory))
            steps.append(lambda h: self.linear2(act(self.linear1(h))))
            for step, norm in zip(steps, norms, strict=True):
                if spec.pre_norm:
                    x = x + step(norm(x))
                else:
                    x = norm(x + step(x))
            return x

    return Layer()


def _stack(spec: ActSpec, depth: int, decoder: bool) -> Any:
    """``ACTEncoder`` / ``ACTDecoder``: the layers, then a LayerNorm (the encoder: if pre-norm)."""
    from torch import nn

    stack = nn.Module()
    stack.layers = nn.ModuleList([_layer(spec, decoder) for _ in range(depth)])
    stack.norm = nn.LayerNorm(spec.dim_model) if decoder or spec.pre_norm else nn.Identity()
    return stack


def _vae_encoder(spec: ActSpec) -> Any:
    """The training-only VAE encoder and its projections (built and loaded by LeRobot)."""
    import torch
    from torch import nn

    d = spec.dim_model
    parts: dict[str, Any] = {
        "vae_encoder": _stack(spec, spec.n_vae_encoder_layers, decoder=False),
        "vae_encoder_cls_embed": nn.Embedding(1, d),
        "vae_encoder_action_input_proj": nn.Linear(spec.action_dim, d),
        "vae_encoder_latent_output_proj": nn.Linear(d, 2 * spec.latent_dim),
    }
    if spec.state_dim:
        parts["vae_encoder_robot_state_input_proj"] = nn.Linear(spec.state_dim, d)
    vae = nn.ModuleDict(parts)
    tokens = 1 + spec.chunk_size + bool(spec.state_dim)
    vae.register_buffer("vae_encoder_pos_enc", torch.empty(1, tokens, d))
    return vae


def _state_bytes(*modules: Any) -> float:
    """Parameter bytes (:func:`param_bytes`) plus persistent buffers (frozen batch norm stats)."""
    buffers = sum(b.numel() * b.element_size() for m in modules for b in m.buffers())
    return param_bytes(*modules) + float(buffers)


def act_param_counts(spec: ActSpec) -> dict[str, int]:
    """Parameters per part of the re-created ACT (for checking against LeRobot's)."""
    import torch

    check_spec(spec)
    return _Parts(spec, torch.bfloat16).param_counts()


def count_act(spec: ActSpec) -> ArchProfile:
    """Count an ACT policy: backbone stages, encoder inputs and layers, decoder layers, head.

    Why these blocks: each ResNet stage is a cut point (all cameras run through it together, the
    backbone's weights are shared between them), then the encoder's token assembly, each encoder
    layer, each decoder layer (which also needs the encoder output, shipped along if the cut falls
    between two decoder layers) and the action head. No block is ``per_token``: ACT predicts the
    whole chunk in one pass.

    Raises:
        ValueError: a spec LeRobot's ACT cannot build (:func:`check_spec`).
    """
    import torch

    check_spec(spec)
    dtype = torch.bfloat16
    parts = _Parts(spec, dtype)
    if parts.vae is not None:
        resident_only(parts.vae, "the VAE encoder: training only, loaded but not run")
    d = spec.dim_model
    heads = parts.inputs
    carried = float((spec.state_dim + spec.env_state_dim) * FLOAT32_BYTES)
    raw_images = float(spec.cameras * 3 * spec.image_height * spec.image_width * UINT8_BYTES)
    blocks: list[BlockCost] = []
    with torch.device("meta"):
        feats = torch.empty(spec.cameras, 3, spec.image_height, spec.image_width, dtype=dtype)
        for stage_name, stage in parts.stages:
            feats, counts = count_flops(partial(stage, feats))
            blocks.append(BlockCost(
                name=f"backbone.{stage_name}",
                flops=counts.get("Global", 0.0),
                weight_bytes=_state_bytes(stage),
                activation_bytes=nbytes(feats) + carried,
            ))
        tokens, input_flops = count_flops(lambda: _encoder_tokens(spec, heads, feats))
        pos = torch.empty_like(tokens)  # sinusoidal 2D + learned 1D: no matmul, not shipped
        layer_flops = []
        hidden = tokens
        for layer in parts.encoder.layers:
            hidden, counts = count_flops(partial(layer, hidden, pos))
            layer_flops.append(counts.get("Global", 0.0))
        memory, norm_counts = count_flops(lambda: parts.encoder.norm(hidden))
        query_pos = parts.decoder_pos_embed.weight.unsqueeze(0)
        x = torch.zeros(1, spec.chunk_size, d, dtype=dtype)
        decoder_flops = []
        for layer in parts.decoder.layers:
            x, counts = count_flops(partial(layer, x, query_pos, memory, pos))
            decoder_flops.append(counts.get("Global", 0.0))
        actions, head_flops = count_flops(lambda: parts.action_head(parts.decoder.norm(x)))

    vae_bytes = _state_bytes(parts.vae) if parts.vae is not None else 0.0
    input_bytes = param_bytes(heads)
    blocks.append(BlockCost(
        name="encoder.input",  # image-feature, state and latent projections -> the tokens
        flops=input_flops.get("Global", 0.0),
        weight_bytes=input_bytes + vae_bytes,
        activation_bytes=nbytes(tokens),
        read_bytes=input_bytes,
    ))
    n_enc = len(parts.encoder.layers)
    for i, layer in enumerate(parts.encoder.layers):
        last = i == n_enc - 1
        blocks.append(BlockCost(
            name=f"encoder.layer.{i:02d}",
            flops=layer_flops[i] + (norm_counts.get("Global", 0.0) if last else 0.0),
            weight_bytes=param_bytes(layer) + (param_bytes(parts.encoder.norm) if last else 0.0),
            activation_bytes=nbytes(memory),
        ))
    n_dec = len(parts.decoder.layers)
    for i, layer in enumerate(parts.decoder.layers):
        last = i == n_dec - 1
        extra = [parts.decoder_pos_embed] if i == 0 else []
        extra += [parts.decoder.norm] if last else []
        blocks.append(BlockCost(
            name=f"decoder.layer.{i:02d}",
            flops=decoder_flops[i],
            weight_bytes=param_bytes(layer, *extra),
            # Later decoder layers cross-attend to the encoder output: it travels with the cut.
            activation_bytes=nbytes(x) + (0.0 if last else nbytes(memory)),
        ))
    output_bytes = spec.chunk_size * spec.action_dim * FLOAT32_BYTES
    blocks.append(BlockCost(
        name="action_head",  # final decoder norm (in the last decoder block) + Linear
        flops=head_flops.get("Global", 0.0),
        weight_bytes=param_bytes(parts.action_head),
        activation_bytes=float(output_bytes),
    ))
    if tuple(actions.shape) != (1, spec.chunk_size, spec.action_dim):
        raise AssertionError(f"unexpected action shape {tuple(actions.shape)}")
    return ArchProfile(
        name=spec.name,
        blocks=tuple(blocks),
        input_bytes=int(raw_images + carried),
        output_bytes=output_bytes,
        decode_steps=0,
        source=spec.source,
        token_bytes=0,
        loop="none",
    )


def _encoder_tokens(spec: ActSpec, heads: Any, feats: Any) -> Any:
    """ACT's encoder input: [latent, robot state, env state, camera cells...] as tokens."""
    import torch

    dtype = heads["encoder_latent_input_proj"].weight.dtype
    tokens = [heads["encoder_latent_input_proj"](torch.zeros(1, 1, spec.latent_dim, dtype=dtype))]
    if spec.state_dim:
        state = torch.empty(1, 1, spec.state_dim, dtype=dtype)
        tokens.append(heads["encoder_robot_state_input_proj"](state))
    if spec.env_state_dim:
        env = torch.empty(1, 1, spec.env_state_dim, dtype=dtype)
        tokens.append(heads["encoder_env_state_input_proj"](env))
    if spec.cameras:
        cells = heads["encoder_img_feat_input_proj"](feats)  # (cameras, d, h, w)
        tokens.append(cells.flatten(2).transpose(1, 2).reshape(1, -1, spec.dim_model))
    return torch.cat(tokens, dim=1)
