"""Count a profile from a model's config folder: a Hugging Face VLA config or a LeRobot policy's.

The built-in profiles are counted from configurations written into the ``arch_*`` builders; a
user's own architecture (another vision tower, a shallower LLM, a longer chunk) differs only in
those numbers. This module reads them from the ``config.json`` the model already ships with, maps
them onto the builders' specs (:class:`~rapid_env.profiler.arch_openvla.PrismaticSpec`,
:class:`~rapid_env.profiler.arch_smolvla.SmolVLASpec`,
:class:`~rapid_env.profiler.arch_pi0.Pi0Spec`, :class:`~rapid_env.profiler.arch_act.ActSpec`)
and counts on the meta device, recording which weight-holding modules got no FLOPs
(:class:`~rapid_env.profiler.counting.Coverage`), so an undercounted profile says so instead of
looking complete.

These config kinds are understood:

* a Hugging Face OpenVLA / Prismatic config (``model_type: "openvla"``, or any config with
  ``timm_model_ids``): ``timm_model_ids``, ``image_sizes``, ``arch_specifier`` (its projector),
  ``text_config`` (a ``transformers`` model type and its fields), ``norm_stats`` (action size);
* a LeRobot policy config (``type: "smolvla"``): ``vlm_model_name``, ``num_vlm_layers``,
  ``expert_width_multiplier``, ``self_attn_every_n_layers``, ``attention_mode``, ``chunk_size``,
  ``num_steps``, ``max_state_dim``, ``max_action_dim``, ``resize_imgs_with_padding``,
  ``pad_language_to``, ``tokenizer_max_length``, ``input_features`` / ``output_features``;
* a LeRobot ``pi0`` policy config: ``paligemma_variant``, ``action_expert_variant``,
  ``image_resolution``, ``empty_cameras``, ``tokenizer_max_length``, ``chunk_size``,
  ``num_inference_steps``, ``max_state_dim``, ``max_action_dim``, the features;
* a LeRobot ``act`` policy config: ``vision_backbone``, ``replace_final_stride_with_dilation``,
  ``pre_norm``, ``dim_model``, ``n_heads``, ``dim_feedforward``, ``feedforward_activation``,
  ``n_encoder_layers``, ``n_decoder_layers``, ``use_vae``, ``latent_dim``,
  ``n_vae_encoder_layers``, ``chunk_size``, the features (cameras, state, environment state,
  action).

LeRobot's ``dtype`` (pi0) is read but not followed: like every built-in profile, weights and
activations are counted in bf16, as these models are served.

What the config cannot say (how many instruction tokens, which name the profile gets, a VLM's
config that is only named) goes into an optional ``rapid_profile`` object (:data:`EXTRA_KEYS`).
Nothing is downloaded: a VLM named by its hub id must be one the profiler knows
(:data:`~rapid_env.profiler.arch_smolvla.KNOWN_VLMS`) or be given as ``rapid_profile.vlm_config``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapid_env.cost.profiles import ArchProfile
from rapid_env.profiler.arch_act import ActSpec, count_act
from rapid_env.profiler.arch_openvla import PROJECTORS, PrismaticSpec, count_openvla
from rapid_env.profiler.arch_pi0 import Pi0Spec, count_pi0, gemma_variant
from rapid_env.profiler.arch_smolvla import KNOWN_VLMS, SmolVLASpec, count_smolvla
from rapid_env.profiler.counting import track_coverage

CONFIG_FILE = "config.json"
EXTRA = "rapid_profile"
"""The optional object of rapid-env's own fields inside ``config.json``."""
EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    "openvla": ("name", "source", "text_tokens", "action_tokens", "action_head"),
    "smolvla": ("name", "source", "text_tokens", "vlm_config", "cameras", "camera_size",
                "state_dim", "action_dim"),
    "pi0": ("name", "source", "text_tokens", "cameras", "camera_size", "state_dim",
            "action_dim"),
    "act": ("name", "source"),
}
"""The ``rapid_profile`` fields each family reads."""
ACTION_HEADS = ("tokens",)
"""OpenVLA-family action heads the profiler counts: ``tokens`` (one decoded token per action
dimension, OpenVLA's)."""
LEROBOT_TYPES = ("smolvla", "pi0", "act")
"""LeRobot policy types the profiler counts."""
DEFAULT_SOURCE = "counted by rapid-profile from {path} (sha256 {digest})"


@dataclass(frozen=True)
class Counted:
    """A profile counted from a config folder.

    Attributes:
        profile: The counted profile.
        uncounted: One line per weight-holding module whose FLOPs were not counted (never run,
            or run by ops the FLOP counter has no rule for); empty when everything was counted.
        config_sha256: Digest of the ``config.json`` it was counted from.
        family: Which builder counted it (``openvla``, ``smolvla``, ``pi0``, ``act``).
    """

    profile: ArchProfile
    uncounted: tuple[str, ...]
    config_sha256: str
    family: str


def read_config(folder: Path | str) -> tuple[dict[str, Any], str]:
    """The parsed ``config.json`` of ``folder`` (or the file itself) and its SHA-256.

    Raises:
        ValueError: missing, unreadable or not a JSON object; one line naming the file.
    """
    path = Path(folder)
    if path.is_dir():
        path = path / CONFIG_FILE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"config {str(path)!r}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ValueError(f"config {str(path)!r}: not JSON ({msg}{where})") from None
    if not isinstance(data, dict):
        raise ValueError(f"config {str(path)!r}: expected a JSON object")
    return data, hashlib.sha256(raw).hexdigest()


def family_of(config: dict[str, Any]) -> str:
    """``openvla``, or the LeRobot policy type (``smolvla``, ``pi0``, ``act``): which builder.

    Raises:
        ValueError: a LeRobot policy type or a config the profiler has no rule for.
    """
    if "type" in config:
        kind = config["type"]
        if kind not in LEROBOT_TYPES:
            raise ValueError(
                f"type: no profile rule for LeRobot policy type {kind!r}; allowed: "
                f"{', '.join(LEROBOT_TYPES)}"
            )
        return str(kind)
    if config.get("model_type") in ("openvla", "prismatic") or "timm_model_ids" in config:
        return "openvla"
    raise ValueError(
        f"model_type: no profile rule for {config.get('model_type')!r}; allowed: a Hugging Face "
        "OpenVLA/Prismatic config (model_type 'openvla', 'prismatic', or timm_model_ids) or a "
        f"LeRobot policy config (type {', '.join(map(repr, LEROBOT_TYPES))})"
    )


def _get(config: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    """``config[key]`` checked against ``kind`` (bools are not ints), or ``default``."""
    if key not in config:
        return default
    value = config[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{key}: expected {names}, got {json.dumps(value)}")
    return value


def _positive(config: dict[str, Any], key: str, default: int) -> int:
    value = _get(config, key, int, default)
    if value < 1:
        raise ValueError(f"{key}: expected an int >= 1, got {value}")
    return int(value)


def _extra(config: dict[str, Any], family: str) -> dict[str, Any]:
    """The ``rapid_profile`` object, its keys checked against the family's."""
    extra = _get(config, EXTRA, dict, {})
    allowed = EXTRA_KEYS[family]
    for key in extra:
        if key not in allowed:
            raise ValueError(f"{EXTRA}.{key}: unknown field; allowed: {', '.join(allowed)}")
    return {f"{EXTRA}.{k}": v for k, v in extra.items()}


def _named(extra: dict[str, Any], default_name: str, source: str) -> dict[str, Any]:
    return {
        "name": _get(extra, f"{EXTRA}.name", str, default_name),
        "source": _get(extra, f"{EXTRA}.source", str, source),
    }


def openvla_spec(config: dict[str, Any], name: str, source: str) -> PrismaticSpec:
    """Map a Hugging Face OpenVLA / Prismatic config onto :class:`PrismaticSpec`."""
    extra = _extra(config, "openvla")
    base = PrismaticSpec()
    towers = _get(config, "timm_model_ids", list, list(base.towers))
    if not towers or not all(isinstance(t, str) for t in towers):
        raise ValueError(f"timm_model_ids: expected a list of timm ids, got {json.dumps(towers)}")
    sizes = _get(config, "image_sizes", list, [base.image_size] * len(towers))
    if not sizes or len(set(map(str, sizes))) != 1 or not isinstance(sizes[0], int):
        raise ValueError(f"image_sizes: expected one int per tower, all equal, got {sizes}")
    spec_text = _get(config, "arch_specifier", str, f"no-align+{base.projector}")
    projector = spec_text.rsplit("+", 1)[-1]
    if projector not in PROJECTORS:
        raise ValueError(
            f"arch_specifier: no profile rule for projector {projector!r}; allowed: "
            f"{', '.join(PROJECTORS)}"
        )
    llm = copy.deepcopy(_get(config, "text_config", dict, base.llm))
    head = _get(extra, f"{EXTRA}.action_head", str, "tokens")
    if head not in ACTION_HEADS:
        raise ValueError(
            f"{EXTRA}.action_head: no profile rule for {head!r}; allowed: {', '.join(ACTION_HEADS)}"
        )
    return PrismaticSpec(
        towers=tuple(towers),
        image_size=int(sizes[0]),
        projector=projector,
        llm=llm,
        text_tokens=_positive(extra, f"{EXTRA}.text_tokens", base.text_tokens),
        action_tokens=_positive(extra, f"{EXTRA}.action_tokens", _action_dim(config)),
        **_named(extra, name, source),
    )


def _action_dim(config: dict[str, Any]) -> int:
    """Action dimensions from ``norm_stats`` (one entry per dataset), else OpenVLA's 7."""
    stats = config.get("norm_stats")
    if isinstance(stats, dict):
        for entry in stats.values():
            q01 = entry.get("action", {}).get("q01") if isinstance(entry, dict) else None
            if isinstance(q01, list) and q01:
                return len(q01)
    return PrismaticSpec().action_tokens


def _named_features(config: dict[str, Any], key: str, kind: str) -> dict[str, list[int]]:
    """Name -> shape of the LeRobot features of one ``kind``, in the config's order.

    ``kind`` is a LeRobot ``FeatureType``: ``VISUAL``, ``STATE``, ``ENV`` or ``ACTION``.
    """
    feats = _get(config, key, dict, {})
    shapes = {}
    for fname, feat in feats.items():
        shape = feat.get("shape") if isinstance(feat, dict) else None
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape
        ):
            raise ValueError(
                f"{key}.{fname}: expected an object with 'type' and 'shape' (ints >= 1)"
            )
        if feat.get("type") == kind:
            shapes[fname] = shape
    return shapes


def _features(config: dict[str, Any], key: str, kind: str) -> list[list[int]]:
    """Shapes of the LeRobot features of ``kind``, in the config's order."""
    return list(_named_features(config, key, kind).values())


def _square_side(config: dict[str, Any], key: str, default: int) -> int:
    """The side of a square ``[side, side]`` image size under ``key``; ValueError naming it."""
    size = _get(config, key, list, [default] * 2)
    if len(size) != 2 or size[0] != size[1] or not isinstance(size[0], int) or size[0] < 1:
        raise ValueError(f"{key}: expected [side, side], got {size}")
    return int(size[0])


def smolvla_spec(config: dict[str, Any], name: str, source: str) -> SmolVLASpec:
    """Map a LeRobot ``smolvla`` policy config onto :class:`SmolVLASpec`."""
    extra = _extra(config, "smolvla")
    base = SmolVLASpec()
    vlm_name = _get(config, "vlm_model_name", str, None)
    vlm = _get(extra, f"{EXTRA}.vlm_config", dict, None)
    if vlm is None:
        if vlm_name is None:
            vlm = base.vlm
        elif vlm_name in KNOWN_VLMS:
            vlm = KNOWN_VLMS[vlm_name]
        else:
            raise ValueError(
                f"vlm_model_name: no config known for {vlm_name!r} (nothing is downloaded); "
                f"allowed: {', '.join(KNOWN_VLMS)}, or give its SmolVLMConfig fields as "
                f"{EXTRA}.vlm_config"
            )
    layers = _positive(config, "num_vlm_layers", base.vlm_layers)
    expert_layers = _get(config, "num_expert_layers", int, 0)
    if expert_layers not in (0, -1, layers):
        raise ValueError(
            f"num_expert_layers: {expert_layers} is not modelled; allowed: 0 (as many as "
            f"num_vlm_layers) or {layers}"
        )
    if _get(config, "add_image_special_tokens", bool, False):
        raise ValueError("add_image_special_tokens: true is not modelled; allowed: false")
    mode = _get(config, "attention_mode", str, "cross_attn")
    if mode not in ("cross_attn", "self_attn"):
        raise ValueError(f"attention_mode: {mode!r}; allowed: cross_attn, self_attn")
    width_mult = _get(config, "expert_width_multiplier", (int, float), 0.75)
    if not 0 < width_mult <= 4:
        raise ValueError(f"expert_width_multiplier: expected a number in (0, 4], got {width_mult}")
    resize = _square_side(config, "resize_imgs_with_padding", base.image_size)
    text_tokens = base.text_tokens
    if _get(config, "pad_language_to", str, "longest") == "max_length":
        text_tokens = _positive(config, "tokenizer_max_length", 48)
    images = _features(config, "input_features", "VISUAL")
    states = _features(config, "input_features", "STATE")
    actions = _features(config, "output_features", "ACTION")
    cameras = len(images) if images else base.cameras
    camera_size = max(images[0][1:]) if images else base.camera_size
    state_dim = states[0][0] if states else base.state_dim
    action_dim = actions[0][0] if actions else base.action_dim
    return SmolVLASpec(
        vlm=copy.deepcopy(vlm),
        image_size=resize,
        vlm_layers=layers,
        expert_width_multiplier=float(width_mult),
        self_attn_every=_positive(config, "self_attn_every_n_layers", base.self_attn_every),
        cross_attention=mode == "cross_attn",
        cameras=_positive(extra, f"{EXTRA}.cameras", cameras),
        camera_size=_positive(extra, f"{EXTRA}.camera_size", camera_size),
        state_dim=_positive(extra, f"{EXTRA}.state_dim", state_dim),
        action_dim=_positive(extra, f"{EXTRA}.action_dim", action_dim),
        max_state_dim=_positive(config, "max_state_dim", base.max_state_dim),
        max_action_dim=_positive(config, "max_action_dim", base.max_action_dim),
        text_tokens=_positive(extra, f"{EXTRA}.text_tokens", text_tokens),
        chunk=_positive(config, "chunk_size", base.chunk),
        steps=_positive(config, "num_steps", base.steps),
        **_named(extra, name, source),
    )


EMPTY_CAMERA = "observation.images.empty_camera_"
"""LeRobot's pi0 names the empty camera slots it adds (``empty_cameras``) like this; a config saved
after the policy was built lists them among its features."""


def _flag(config: dict[str, Any], key: str, default: bool) -> bool:
    """A LeRobot flag: a bool, or the 0/1 some fields are typed as (``int = False``)."""
    value = _get(config, key, (bool, int), default)
    if value not in (0, 1):
        raise ValueError(f"{key}: expected true or false, got {json.dumps(value)}")
    return bool(value)


def pi0_spec(config: dict[str, Any], name: str, source: str) -> Pi0Spec:
    """Map a LeRobot ``pi0`` policy config onto :class:`Pi0Spec`.

    The image slots are the cameras plus ``empty_cameras`` (LeRobot encodes an empty slot as a
    masked all-(-1) image, so it costs as much as a camera); the instruction is padded to
    ``tokenizer_max_length`` (LeRobot's pi0 tokenizer pads to the maximum length).
    """
    extra = _extra(config, "pi0")
    base = Pi0Spec()
    vlm_variant = _get(config, "paligemma_variant", str, base.vlm_variant)
    expert_variant = _get(config, "action_expert_variant", str, base.expert_variant)
    gemma_variant("paligemma_variant", vlm_variant)  # checked here: the count runs much later
    gemma_variant("action_expert_variant", expert_variant)
    dtype = _get(config, "dtype", str, "bfloat16")
    if dtype not in ("bfloat16", "float32"):
        raise ValueError(f"dtype: {dtype!r}; allowed: bfloat16, float32")
    resolution = _square_side(config, "image_resolution", base.image_size)
    images = {k: v for k, v in _named_features(config, "input_features", "VISUAL").items()
              if not k.startswith(EMPTY_CAMERA)}
    if not images:
        raise ValueError(
            "input_features: pi0 needs at least one VISUAL feature (a camera); got none"
        )
    empty = _get(config, "empty_cameras", int, 0)
    if empty < 0:
        raise ValueError(f"empty_cameras: expected an int >= 0, got {empty}")
    states = _features(config, "input_features", "STATE")
    actions = _features(config, "output_features", "ACTION")
    max_state = _positive(config, "max_state_dim", base.max_state_dim)
    max_action = _positive(config, "max_action_dim", base.max_action_dim)
    first = next(iter(images.values()))
    return Pi0Spec(
        vlm_variant=vlm_variant,
        expert_variant=expert_variant,
        image_size=resolution,
        image_slots=len(images) + empty,
        cameras=_positive(extra, f"{EXTRA}.cameras", len(images)),
        camera_size=_positive(extra, f"{EXTRA}.camera_size", max(first[1:] or [1])),
        # Without a state or action feature LeRobot's pi0 declares one of the padded size.
        state_dim=_positive(extra, f"{EXTRA}.state_dim", states[0][0] if states else max_state),
        action_dim=_positive(extra, f"{EXTRA}.action_dim",
                             actions[0][0] if actions else max_action),
        max_state_dim=max_state,
        max_action_dim=max_action,
        text_tokens=_positive(
            extra, f"{EXTRA}.text_tokens",
            _positive(config, "tokenizer_max_length", base.text_tokens),
        ),
        chunk=_positive(config, "chunk_size", base.chunk),
        steps=_positive(config, "num_inference_steps", base.steps),
        **_named(extra, name, source),
    )


def act_spec(config: dict[str, Any], name: str, source: str) -> ActSpec:
    """Map a LeRobot ``act`` policy config onto :class:`ActSpec`.

    The features decide the inputs as LeRobot's ``ACT`` does: every ``VISUAL`` feature is a
    camera (all of one shape: ACT does not resize), ``observation.state`` (``STATE``) and an
    ``ENV`` feature each add a token, and ``action`` (``ACTION``) sizes the head.
    """
    extra = _extra(config, "act")
    base = ActSpec()
    images = _features(config, "input_features", "VISUAL")
    if any(shape != images[0] for shape in images) or (images and len(images[0]) != 3):
        raise ValueError(
            f"input_features: ACT needs every VISUAL feature of one [3, height, width] shape, "
            f"got {images}"
        )
    states = _named_features(config, "input_features", "STATE")
    envs = _features(config, "input_features", "ENV")
    actions = _named_features(config, "output_features", "ACTION")
    if "action" not in actions:
        raise ValueError("output_features: ACT needs an ACTION feature named 'action'; got none")
    return ActSpec(
        vision_backbone=_get(config, "vision_backbone", str, base.vision_backbone),
        dilation=_flag(config, "replace_final_stride_with_dilation", base.dilation),
        pre_norm=_get(config, "pre_norm", bool, base.pre_norm),
        dim_model=_positive(config, "dim_model", base.dim_model),
        n_heads=_positive(config, "n_heads", base.n_heads),
        dim_feedforward=_positive(config, "dim_feedforward", base.dim_feedforward),
        activation=_get(config, "feedforward_activation", str, base.activation),
        n_encoder_layers=_positive(config, "n_encoder_layers", base.n_encoder_layers),
        n_decoder_layers=_positive(config, "n_decoder_layers", base.n_decoder_layers),
        use_vae=_get(config, "use_vae", bool, base.use_vae),
        latent_dim=_positive(config, "latent_dim", base.latent_dim),
        n_vae_encoder_layers=_positive(config, "n_vae_encoder_layers", base.n_vae_encoder_layers),
        chunk_size=_positive(config, "chunk_size", base.chunk_size),
        cameras=len(images),
        image_height=images[0][1] if images else 0,
        image_width=images[0][2] if images else 0,
        state_dim=states["observation.state"][0] if "observation.state" in states else 0,
        env_state_dim=envs[0][0] if envs else 0,
        action_dim=actions["action"][0],
        **_named(extra, name, source),
    )


def count_config(folder: Path | str, name: str | None = None) -> Counted:
    """Count the profile of the model a config folder describes, on the meta device.

    Args:
        folder: A folder holding ``config.json`` (or the file itself).
        name: The profile's name (default: ``rapid_profile.name``, else the folder's name).

    Raises:
        ValueError: a bad config, one line naming the field and what is allowed.
    """
    config, digest = read_config(folder)
    family = family_of(config)
    path = Path(folder)
    default_name = name or (path.name if path.is_dir() else path.parent.name) or "custom"
    source = DEFAULT_SOURCE.format(path=path.name or str(path), digest=digest[:12])
    mapper, counter = FAMILIES[family]
    try:
        spec = mapper(config, default_name, source)
        spec = spec if name is None else _renamed(spec, name)
        with track_coverage() as coverage:
            profile = counter(spec)
    except (TypeError, KeyError, AttributeError) as exc:
        # A transformers config that takes the field names but cannot build from the values.
        raise ValueError(f"{family} config: cannot build the model: {exc}") from None
    return Counted(profile, tuple(coverage.uncounted()), digest, family)


Mapper = Callable[[dict[str, Any], str, str], Any]
FAMILIES: dict[str, tuple[Mapper, Callable[[Any], ArchProfile]]] = {
    "openvla": (openvla_spec, count_openvla),
    "smolvla": (smolvla_spec, count_smolvla),
    "pi0": (pi0_spec, count_pi0),
    "act": (act_spec, count_act),
}
"""Family -> (config-to-spec mapper, counting function)."""


def _renamed(spec: Any, name: str) -> Any:
    import dataclasses

    return dataclasses.replace(spec, name=name)
