"""Count a profile from a model's config folder: a Hugging Face VLA config or a LeRobot policy's.

The built-in profiles are counted from configurations written into the ``arch_*`` builders; a
user's own architecture (another vision tower, a shallower LLM, a longer chunk) differs only in
those numbers. This module reads them from the ``config.json`` the model already ships with, maps
them onto the builders' specs (:class:`~rapid_env.profiler.arch_openvla.PrismaticSpec`,
:class:`~rapid_env.profiler.arch_smolvla.SmolVLASpec`) and counts on the meta device, recording
which weight-holding modules got no FLOPs (:class:`~rapid_env.profiler.counting.Coverage`), so
an undercounted profile says so instead of looking complete.

Two config kinds are understood:

* a Hugging Face OpenVLA / Prismatic config (``model_type: "openvla"``, or any config with
  ``timm_model_ids``): ``timm_model_ids``, ``image_sizes``, ``arch_specifier`` (its projector),
  ``text_config`` (a ``transformers`` model type and its fields), ``norm_stats`` (action size);
* a LeRobot policy config (``type: "smolvla"``): ``vlm_model_name``, ``num_vlm_layers``,
  ``expert_width_multiplier``, ``self_attn_every_n_layers``, ``attention_mode``, ``chunk_size``,
  ``num_steps``, ``max_state_dim``, ``max_action_dim``, ``resize_imgs_with_padding``,
  ``pad_language_to``, ``tokenizer_max_length``, ``input_features`` / ``output_features``.

What the config cannot say (how many instruction tokens, which name the profile gets, a VLM's
config that is only named) goes into an optional ``rapid_profile`` object (:data:`EXTRA_KEYS`).
Nothing is downloaded: a VLM named by its hub id must be one the profiler knows
(:data:`~rapid_env.profiler.arch_smolvla.KNOWN_VLMS`) or be given as ``rapid_profile.vlm_config``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapid_env.cost.profiles import ArchProfile
from rapid_env.profiler.arch_openvla import PROJECTORS, PrismaticSpec, count_openvla
from rapid_env.profiler.arch_smolvla import KNOWN_VLMS, SmolVLASpec, count_smolvla
from rapid_env.profiler.counting import track_coverage

CONFIG_FILE = "config.json"
EXTRA = "rapid_profile"
"""The optional object of rapid-env's own fields inside ``config.json``."""
EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    "openvla": ("name", "source", "text_tokens", "action_tokens", "action_head"),
    "smolvla": ("name", "source", "text_tokens", "vlm_config", "cameras", "camera_size",
                "state_dim", "action_dim"),
}
"""The ``rapid_profile`` fields each family reads."""
ACTION_HEADS = ("tokens",)
"""OpenVLA-family action heads the profiler counts: ``tokens`` (one decoded token per action
dimension, OpenVLA's)."""
LEROBOT_TYPES = ("smolvla",)
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
        family: Which builder counted it (``openvla``, ``smolvla``).
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
    """``openvla`` or ``smolvla``: which builder a config belongs to.

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


def _features(config: dict[str, Any], key: str, kind: str) -> list[list[int]]:
    """Shapes of the LeRobot features of ``kind`` (``VISUAL``, ``STATE``, ``ACTION``)."""
    feats = _get(config, key, dict, {})
    shapes = []
    for fname, feat in feats.items():
        if not isinstance(feat, dict) or not isinstance(feat.get("shape"), list):
            raise ValueError(f"{key}.{fname}: expected an object with 'type' and 'shape'")
        if feat.get("type") == kind:
            shapes.append(feat["shape"])
    return shapes


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
    resize = _get(config, "resize_imgs_with_padding", list, [base.image_size] * 2)
    if len(resize) != 2 or resize[0] != resize[1] or not isinstance(resize[0], int):
        raise ValueError(f"resize_imgs_with_padding: expected [side, side], got {resize}")
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
        image_size=resize[0],
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
    try:
        if family == "openvla":
            ospec = openvla_spec(config, default_name, source)
            ospec = ospec if name is None else _renamed(ospec, name)
            with track_coverage() as coverage:
                profile = count_openvla(ospec)
        else:
            sspec = smolvla_spec(config, default_name, source)
            sspec = sspec if name is None else _renamed(sspec, name)
            with track_coverage() as coverage:
                profile = count_smolvla(sspec)
    except (TypeError, KeyError, AttributeError) as exc:
        # A transformers config that takes the field names but cannot build from the values.
        raise ValueError(f"{family} config: cannot build the model: {exc}") from None
    return Counted(profile, tuple(coverage.uncounted()), digest, family)


def _renamed(spec: Any, name: str) -> Any:
    import dataclasses

    return dataclasses.replace(spec, name=name)
