"""Plug a user's own checkpoint in as a :class:`~rapid_env.agents.policy.Policy`.

The small executable VLAs stand in for models this machine cannot run; a user with a GPU and real
weights replaces them through this adapter. It only ever reads a *local* directory (every
``from_pretrained`` gets ``local_files_only=True``) and only ever loads weights from safetensors
files, never from pickles, so pointing it at an untrusted checkpoint cannot run code hidden in the
weights.

Two layouts are detected from ``<path>/config.json``:

* **transformers** -- ``config.json`` has ``model_type`` or ``architectures`` (what
  ``save_pretrained`` writes) and the weights are ``model.safetensors`` (or a sharded
  ``model.safetensors.index.json``). The class is taken from ``architectures[0]`` (a
  ``transformers`` class, or an ``auto_map`` entry when ``trust_remote_code=True``). A processor or
  tokenizer saved in the same directory is loaded with ``AutoProcessor``. Because every VLA returns
  actions its own way, a small *predict* callable is the glue::

      predict(model, processor, image, proprio, instruction) -> np.ndarray  # (K, D) or (D,)

  It is passed as ``predict=`` or named by dotted path (``"pkg.module:function"``) under
  ``"predict"`` in ``<path>/rapid_env_adapter.json``. The default, :func:`predict_action_default`,
  serves models with an OpenVLA-style ``predict_action``.
* **LeRobot** -- ``config.json`` has a ``type`` field (``"act"``, ``"smolvla"`` ...) and the
  weights are ``model.safetensors``. The module is built by a factory registered for that type
  with :func:`register_lerobot_factory` and must offer ``predict_action_chunk(batch)`` (preferred)
  or ``select_action(batch)``; the batch follows LeRobot's keys (``observation.state``,
  ``observation.image...``, ``task``).

The model's native action (e.g. OpenVLA's 7-D end-effector delta + gripper) becomes Meta-World's
4-D action through an :class:`ActionMap`; chunks shorter than ``chunk_size`` repeat their last
action, longer ones are truncated (see :func:`fit_chunk`).

``rapid_env_adapter.json`` (optional) may hold::

    {"predict": "my_glue:predict", "predict_kwargs": {"unnorm_key": "bridge_orig"},
     "action_map": {"indices": [0, 1, 2, 6], "xyz_scale": 25.0,
                    "gripper_open": 1.0, "gripper_closed": 0.0}}

Constructor arguments win over the file. See docs/plugging_in_a_policy.md.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rapid_env.agents.policy import PolicyInput
from rapid_env.registry import Registry, UnknownNameError

if TYPE_CHECKING:
    import torch

ADAPTER_FILE = "rapid_env_adapter.json"
"""Optional per-checkpoint file naming the predict glue, its kwargs and the action map."""

SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
"""Weight files we accept; ``pytorch_model.bin`` and other pickles are refused on purpose."""

Layout = Literal["transformers", "lerobot"]

PredictFn = Callable[..., Any]
"""``predict(model, processor, image, proprio, instruction, **predict_kwargs) -> (K, D) array``."""

LeRobotFactory = Callable[[dict[str, Any]], "torch.nn.Module"]
"""Builds an un-initialised LeRobot-style module from its ``config.json`` dict."""

LEROBOT_FACTORIES: Registry[torch.nn.Module] = Registry("LeRobot policy type")
"""LeRobot ``type`` -> factory; fill it with :func:`register_lerobot_factory`."""


def register_lerobot_factory(type_name: str, factory: LeRobotFactory) -> None:
    """Teach the adapter to build LeRobot checkpoints whose ``config.json`` has ``type_name``.

    LeRobot itself is not a dependency, so the adapter cannot know how to build an ``act`` or a
    ``smolvla`` module; the user (who has LeRobot installed) registers one line per type, e.g.
    ``register_lerobot_factory("act", lambda c: ACTPolicy(ACTConfig(**c)))``. Registering a type
    twice raises ValueError, as every registry here does.

    Args:
        type_name: the ``type`` value in the checkpoint's ``config.json``.
        factory: builds the module from the config dict; the adapter then loads the weights.
    """
    LEROBOT_FACTORIES.register(type_name, factory)


@dataclass(frozen=True)
class ActionMap:
    """How a model's native action becomes Meta-World's ``[dx, dy, dz, grip]`` in ``[-1, 1]``.

    Steps, in order: optional min-max unnormalisation of the native vector, pick four dims,
    scale the xyz part, map the gripper linearly so ``gripper_open -> -1`` and
    ``gripper_closed -> +1`` (Meta-World closes the fingers for positive effort), then clip.

    OpenVLA's ``predict_action`` returns 7-D ``[dx, dy, dz, droll, dpitch, dyaw, grip]`` already
    unnormalised to the dataset's units (metres per step) with ``grip`` 1 = open, 0 = closed.
    Meta-World moves its mocap target ``action / 100`` m per Meta-World step and a control tick
    holds the action for ``80 / control_hz`` of them, so metres-per-tick deltas want
    ``xyz_scale = 100 / (80 / control_hz)``: ``ActionMap(xyz_scale=25.0, gripper_open=1.0,
    gripper_closed=0.0)`` at the default 20 Hz. Rotations are dropped: Meta-World's hand has a
    fixed orientation.

    Attributes:
        indices: native dims used for x, y, z and gripper. None picks by width: 4 -> (0, 1, 2, 3),
            7 -> (0, 1, 2, 6); other widths must say which dims to use.
        xyz_scale: multiplies the xyz deltas, one factor or one per axis.
        gripper_open: the model's value for a fully open gripper.
        gripper_closed: the model's value for a fully closed gripper.
        binarize_gripper: snap the mapped gripper to -1 / +1 at 0 (many VLAs are trained on binary
            gripper labels and output values near, not at, the ends).
        native_low: with ``native_high``, per-dim bounds used to unnormalise a model that outputs
            ``[-1, 1]``-normalised actions: ``x -> low + (x + 1) / 2 * (high - low)``.
        native_high: see ``native_low``.
        clip: clip to ``[-1, 1]`` (True) or raise ValueError on any value outside it (False,
            useful while choosing ``xyz_scale``).
    """

    indices: tuple[int, int, int, int] | None = None
    xyz_scale: float | tuple[float, float, float] = 1.0
    gripper_open: float = -1.0
    gripper_closed: float = 1.0
    binarize_gripper: bool = False
    native_low: tuple[float, ...] | None = None
    native_high: tuple[float, ...] | None = None
    clip: bool = True

    def __post_init__(self) -> None:
        if self.indices is not None:
            if len(self.indices) != 4 or any(int(i) != i or i < 0 for i in self.indices):
                raise ValueError(
                    f"ActionMap.indices must be 4 non-negative ints (x, y, z, gripper), "
                    f"got {self.indices!r}"
                )
            object.__setattr__(self, "indices", tuple(int(i) for i in self.indices))
        scale = self.xyz_scale
        scales = (scale,) * 3 if isinstance(scale, int | float) else tuple(scale)
        if len(scales) != 3 or not all(math.isfinite(s) for s in scales):
            raise ValueError(f"ActionMap.xyz_scale must be finite, one or 3 values, got {scale!r}")
        if not isinstance(scale, int | float):
            object.__setattr__(self, "xyz_scale", tuple(float(s) for s in scales))
        if not (math.isfinite(self.gripper_open) and math.isfinite(self.gripper_closed)):
            raise ValueError(
                f"ActionMap gripper values must be finite, got open={self.gripper_open!r}, "
                f"closed={self.gripper_closed!r}"
            )
        if self.gripper_open == self.gripper_closed:
            raise ValueError(
                f"ActionMap.gripper_open and gripper_closed must differ, both are "
                f"{self.gripper_open!r}"
            )
        if (self.native_low is None) != (self.native_high is None):
            raise ValueError("ActionMap.native_low and native_high must be given together")
        if self.native_low is not None and self.native_high is not None:
            low, high = tuple(self.native_low), tuple(self.native_high)
            if len(low) != len(high) or not all(a < b for a, b in zip(low, high, strict=True)):
                raise ValueError(
                    f"ActionMap.native_low must be below native_high dim by dim, same length; "
                    f"got low={low!r}, high={high!r}"
                )
            object.__setattr__(self, "native_low", low)
            object.__setattr__(self, "native_high", high)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionMap:
        """Build from plain data (the ``action_map`` entry of ``rapid_env_adapter.json``)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ActionMap fields {unknown}; allowed: {sorted(known)}")
        # JSON has no tuples; the frozen dataclass wants them (hashable, compares equal)
        kwargs: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, for records and W&B config."""
        return asdict(self)

    def resolve_indices(self, width: int) -> tuple[int, int, int, int]:
        """The native dims to use for an action of ``width`` dims, or ValueError."""
        if self.indices is None:
            if width == 4:
                return (0, 1, 2, 3)
            if width == 7:
                return (0, 1, 2, 6)
            raise ValueError(
                f"cannot map a {width}-D model action to Meta-World's 4-D action by default "
                f"(defaults exist for 4-D and 7-D); set ActionMap.indices"
            )
        if max(self.indices) >= width:
            raise ValueError(
                f"ActionMap.indices {self.indices} need at least {max(self.indices) + 1} action "
                f"dims, the model returned {width}"
            )
        return self.indices

    def __call__(self, native: np.ndarray) -> np.ndarray:
        """Map a ``(K, D)`` native chunk to a ``(K, 4)`` float32 Meta-World chunk."""
        x = np.asarray(native, dtype=np.float64)
        if self.native_low is not None and self.native_high is not None:
            if len(self.native_low) != x.shape[1]:
                raise ValueError(
                    f"ActionMap.native_low has {len(self.native_low)} dims, the model returned "
                    f"{x.shape[1]}"
                )
            low, high = np.asarray(self.native_low), np.asarray(self.native_high)
            x = low + (x + 1.0) / 2.0 * (high - low)
        idx = list(self.resolve_indices(x.shape[1]))
        out = x[:, idx].copy()
        out[:, :3] *= np.asarray(self.xyz_scale, dtype=np.float64)
        span = self.gripper_closed - self.gripper_open
        out[:, 3] = 2.0 * (out[:, 3] - self.gripper_open) / span - 1.0
        if self.binarize_gripper:
            out[:, 3] = np.where(out[:, 3] > 0.0, 1.0, -1.0)
        if self.clip:
            out = np.clip(out, -1.0, 1.0)
        elif np.abs(out).max() > 1.0:
            raise ValueError(
                f"mapped action leaves [-1, 1] (max |a| = {np.abs(out).max():.4g}) and "
                f"ActionMap.clip is False; lower xyz_scale or enable clip"
            )
        return out.astype(np.float32)


def fit_chunk(actions: np.ndarray, chunk_size: int) -> np.ndarray:
    """Make a ``(K, 4)`` chunk exactly ``chunk_size`` long.

    A shorter chunk repeats its last action (holding the last command is what a robot does when
    its planner falls behind, and it never invents motion the model did not ask for); a longer
    one is truncated, the tail being the least reliable part of an open-loop plan.
    """
    k = actions.shape[0]
    if k >= chunk_size:
        return actions[:chunk_size]
    pad = np.repeat(actions[-1:], chunk_size - k, axis=0)
    return np.concatenate([actions, pad], axis=0)


def check_native_actions(value: Any, source: str) -> np.ndarray:
    """Turn a model's output into a finite float ``(K, D)`` array, or raise ValueError.

    Args:
        value: what predict / the module returned: array, tensor or nested list; ``(D,)``,
            ``(K, D)`` or ``(1, K, D)``.
        source: names the producer (and checkpoint path) in the error message.
    """
    if hasattr(value, "detach"):  # a torch tensor; bf16 has no numpy dtype, hence float()
        value = value.detach().float().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source} must return a numeric array of actions, got {value!r}") from e
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(
            f"{source} must return actions of shape (K, D) or (D,) with K, D >= 1, "
            f"got shape {np.shape(value)}"
        )
    if not np.isfinite(arr).all():
        bad = arr[~np.isfinite(arr)][0]
        raise ValueError(f"{source} returned a non-finite action value ({bad}); expected finite")
    return arr


def load_callable(ref: str) -> PredictFn:
    """Import ``"pkg.module:attr"`` (or ``"pkg.module.attr"``) and return the callable."""
    module_name, sep, attr = ref.partition(":")
    if not sep:
        module_name, _, attr = ref.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"predict must be a dotted path like 'pkg.module:function', got {ref!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot import predict callable {ref!r}: {e}") from e
    if not callable(obj):
        raise ValueError(f"predict {ref!r} is not callable")
    return obj  # type: ignore[no-any-return]


OPENVLA_PROMPT = "In: What action should the robot take to {instruction}?\nOut:"
"""The prompt OpenVLA was fine-tuned with; ``{instruction}`` is lower-cased first."""


def predict_action_default(
    model: Any,
    processor: Any,
    image: np.ndarray | None,
    proprio: np.ndarray,
    instruction: str,
    prompt: str = OPENVLA_PROMPT,
    **kwargs: Any,
) -> np.ndarray:
    """Predict glue for OpenVLA-style models: ``model.predict_action(**inputs, **kwargs)``.

    Assumes what OpenVLA's model card shows: the processor takes ``(text, PIL image)`` and returns
    tensors, the model has ``predict_action`` returning one unnormalised 7-D action as an array,
    and greedy decoding (``do_sample=False``) is wanted. Proprio is not read (OpenVLA ignores it).
    Pass ``unnorm_key`` through ``predict_kwargs`` to pick the dataset statistics.

    Args:
        model: the loaded model; must have ``predict_action``.
        processor: the processor saved with it.
        image: uint8 HxWx3 camera frame.
        proprio: unused, part of the predict signature.
        instruction: the task sentence, inserted into ``prompt``.
        prompt: template with ``{instruction}``.
        **kwargs: forwarded to ``predict_action`` (``unnorm_key``, ...).

    Returns:
        Whatever ``predict_action`` returns, as a numpy array (the adapter checks its shape).
    """
    if not hasattr(model, "predict_action"):
        raise ValueError(
            f"default predict needs a model with predict_action (OpenVLA-style); "
            f"{type(model).__name__} has none, pass predict= or set it in {ADAPTER_FILE}"
        )
    if processor is None or image is None:
        raise ValueError("default predict needs a processor and a camera image")
    from PIL import Image

    text = prompt.format(instruction=instruction.lower())
    inputs = processor(text, Image.fromarray(image))
    if hasattr(inputs, "to"):  # BatchFeature: move to the model, cast only floating tensors
        inputs = inputs.to(getattr(model, "device", "cpu"), dtype=getattr(model, "dtype", None))
    kwargs.setdefault("do_sample", False)
    action = model.predict_action(**inputs, **kwargs)
    if hasattr(action, "detach"):
        action = action.detach().float().cpu().numpy()
    return np.asarray(action)


def detect_layout(path: Path, config: Mapping[str, Any]) -> Layout:
    """Say which layout ``config.json`` describes, or raise ValueError naming ``path``."""
    if "model_type" in config or "architectures" in config:
        return "transformers"
    if isinstance(config.get("type"), str):
        return "lerobot"
    raise ValueError(
        f"unknown checkpoint layout in {path / 'config.json'}: expected 'model_type' or "
        f"'architectures' (transformers save_pretrained) or 'type' (LeRobot), "
        f"found keys {sorted(config)}"
    )


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read {file}: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{file} must hold a JSON object, got {type(data).__name__}")
    return data


def _require_safetensors(path: Path, names: Sequence[str]) -> Path:
    for name in names:
        if (path / name).is_file():
            return path / name
    raise ValueError(
        f"no safetensors weights in {path}: expected one of {list(names)} "
        f"(pickled .bin/.pt weights are refused; convert them with safetensors)"
    )


@dataclass
class _Loaded:
    """What loading produced, before the adapter wraps it."""

    layout: Layout
    model: Any
    processor: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _resolve_model_class(
    path: Path, config: Mapping[str, Any], model_class: str | type | None, trust_remote_code: bool
) -> Any:
    import transformers

    if isinstance(model_class, type):
        return model_class
    if model_class is not None:
        cls = getattr(transformers, model_class, None)
        if cls is None:
            raise ValueError(f"model_class {model_class!r} is not a transformers class")
        return cls
    archs = config.get("architectures") or []
    arch = archs[0] if archs else None
    if arch is not None and hasattr(transformers, arch):
        return getattr(transformers, arch)
    auto_map = config.get("auto_map") or {}
    if arch is not None:
        refs = [ref for ref in auto_map.values() if str(ref).rsplit(".", 1)[-1] == arch]
        if refs:
            if not trust_remote_code:
                raise ValueError(
                    f"{path} defines {arch} in its own code (auto_map); pass "
                    f"trust_remote_code=True only if you trust the .py files in that directory"
                )
            from transformers.dynamic_module_utils import get_class_from_dynamic_module

            return get_class_from_dynamic_module(refs[0], str(path), local_files_only=True)
    # No architectures entry: the base model of this model_type.
    return transformers.AutoModel


def _load_transformers(
    path: Path,
    config: Mapping[str, Any],
    *,
    device: str,
    dtype: str | None,
    model_class: str | type | None,
    trust_remote_code: bool,
    load_processor: bool,
) -> _Loaded:
    import torch

    _require_safetensors(path, SAFETENSORS_FILES)
    cls = _resolve_model_class(path, config, model_class, trust_remote_code)
    kwargs: dict[str, Any] = {"local_files_only": True, "use_safetensors": True}
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    if dtype is not None:
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ValueError(f"dtype must name a torch dtype like 'bfloat16', got {dtype!r}")
        kwargs["dtype"] = torch_dtype
    try:
        model = cls.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot load the transformers model from {path}: {e}") from e
    model.to(device)
    model.eval()
    processor = None
    processor_files = (
        "processor_config.json",
        "preprocessor_config.json",
        "tokenizer_config.json",
        "tokenizer.json",
    )
    if load_processor and any((path / f).is_file() for f in processor_files):
        from transformers import AutoProcessor

        try:
            processor = AutoProcessor.from_pretrained(
                str(path), local_files_only=True, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot load the processor/tokenizer from {path}: {e}") from e
    return _Loaded("transformers", model, processor)


def _load_lerobot(path: Path, config: dict[str, Any], *, device: str) -> _Loaded:
    from safetensors.torch import load_file

    weights = _require_safetensors(path, ("model.safetensors",))
    type_name = config["type"]
    try:
        module = LEROBOT_FACTORIES.create(type_name, config)
    except UnknownNameError as e:
        raise ValueError(
            f"{path}: no factory for LeRobot type {type_name!r}; register one with "
            f"register_lerobot_factory (registered: {e.allowed})"
        ) from e
    if not (hasattr(module, "predict_action_chunk") or hasattr(module, "select_action")):
        raise ValueError(
            f"the factory for LeRobot type {type_name!r} built a {type(module).__name__} with "
            f"neither predict_action_chunk nor select_action"
        )
    state = load_file(str(weights), device="cpu")  # safetensors: no pickle, no code
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"weights in {weights} do not fit the {type_name!r} module: {e}") from e
    module.to(device)
    module.eval()
    return _Loaded("lerobot", module, extra={"image_keys": _lerobot_image_keys(config)})


def _lerobot_image_keys(config: Mapping[str, Any]) -> list[str]:
    """Camera keys from LeRobot's ``input_features`` (``type: VISUAL``); one frame feeds all."""
    feats = config.get("input_features") or {}
    if not feats:  # older configs do not list features: use LeRobot's single-camera key
        return ["observation.image"]
    return [k for k, v in feats.items() if isinstance(v, dict) and v.get("type") == "VISUAL"]


class HFPolicyAdapter:
    """A local ``transformers`` or LeRobot-style checkpoint behind the Policy protocol.

    Example:
        >>> policy = HFPolicyAdapter(  # doctest: +SKIP
        ...     "/ckpts/openvla-7b", device="cuda", dtype="bfloat16", trust_remote_code=True,
        ...     predict_kwargs={"unnorm_key": "bridge_orig"},
        ...     action_map=ActionMap(xyz_scale=25.0, gripper_open=1.0, gripper_closed=0.0))
        >>> policy.reset(np.random.default_rng(0))  # doctest: +SKIP
        >>> policy.act(inp).shape  # doctest: +SKIP
        (8, 4)

    Args:
        path: the checkpoint directory (must exist locally; nothing is downloaded).
        chunk_size: actions per chunk handed to the controller.
        device: torch device to run on (``"cuda"`` on a GPU machine).
        predict: transformers layout only: the glue callable, or a dotted path to it. Default:
            ``predict`` from ``rapid_env_adapter.json``, else :func:`predict_action_default`.
        predict_kwargs: extra keyword arguments for predict (merged over the file's).
        action_map: native -> Meta-World mapping; default from the file, else ``ActionMap()``.
        dtype: torch dtype name for transformers weights (``"bfloat16"``); None keeps the saved.
        model_class: transformers class (or its name) overriding ``architectures[0]``.
        trust_remote_code: allow ``auto_map`` classes defined by .py files in ``path``. Never
            read from the checkpoint itself: running its code must be the caller's decision.
        needs_image: whether act() needs a camera frame. None: True for the transformers layout
            (VLAs read images), for LeRobot whether its config lists a camera feature.
        name: policy name in records; default ``"hf:<directory name>"``.
    """

    def __init__(
        self,
        path: str | Path,
        chunk_size: int = 8,
        device: str = "cpu",
        *,
        predict: PredictFn | str | None = None,
        predict_kwargs: Mapping[str, Any] | None = None,
        action_map: ActionMap | None = None,
        dtype: str | None = None,
        model_class: str | type | None = None,
        trust_remote_code: bool = False,
        needs_image: bool | None = None,
        name: str | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise ValueError(
                f"checkpoint directory {self.path} does not exist (nothing is downloaded; "
                f"give a local directory)"
            )
        config_file = self.path / "config.json"
        if not config_file.is_file():
            raise ValueError(f"{self.path} has no config.json; is it a checkpoint directory?")
        self.config = _read_json(config_file)
        self.layout: Layout = detect_layout(self.path, self.config)
        adapter_file = self.path / ADAPTER_FILE
        settings = _read_json(adapter_file) if adapter_file.is_file() else {}
        allowed = {"predict", "predict_kwargs", "action_map"}
        if set(settings) - allowed:
            raise ValueError(
                f"unknown keys {sorted(set(settings) - allowed)} in {adapter_file}; "
                f"allowed: {sorted(allowed)}"
            )

        self.name = name if name is not None else f"hf:{self.path.name}"
        self.chunk_size = chunk_size
        self.device = device
        if action_map is None:
            action_map = ActionMap.from_dict(settings.get("action_map", {}))
        self.action_map = action_map
        self.predict_kwargs: dict[str, Any] = {
            **settings.get("predict_kwargs", {}),
            **(predict_kwargs or {}),
        }

        self._predict: PredictFn | None = None
        if self.layout == "transformers":
            ref = predict if predict is not None else settings.get("predict")
            if ref is None:
                self._predict = predict_action_default
            elif isinstance(ref, str):
                self._predict = load_callable(ref)
            else:
                self._predict = ref
            loaded = _load_transformers(
                self.path,
                self.config,
                device=device,
                dtype=dtype,
                model_class=model_class,
                trust_remote_code=trust_remote_code,
                load_processor=True,
            )
        else:
            if predict is not None:
                raise ValueError(
                    f"{self.path} is a LeRobot checkpoint; predict= applies to the transformers "
                    f"layout only (the module's predict_action_chunk/select_action is used)"
                )
            loaded = _load_lerobot(self.path, self.config, device=device)
        self.model = loaded.model
        self.processor = loaded.processor
        self._image_keys: list[str] = loaded.extra.get("image_keys", [])
        if needs_image is None:
            needs_image = self.layout == "transformers" or bool(self._image_keys)
        self.needs_image = needs_image

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode: clear the model's action queue and seed torch from ``rng``.

        Sampling models (diffusion, flow matching, ``do_sample=True``) draw from torch's global
        generator, which their APIs give no other handle on; seeding it from the episode's stream
        keeps same seed -> same actions.
        """
        import torch

        torch.manual_seed(int(rng.integers(2**63 - 1)))
        reset = getattr(self.model, "reset", None)
        if callable(reset) and self.layout == "lerobot":
            reset()

    def act(self, inp: PolicyInput) -> np.ndarray:
        """Run the model once; return a ``(chunk_size, 4)`` float32 chunk in ``[-1, 1]``.

        ``inp.sim`` is never read: a learned policy sees only image, proprio and instruction.
        """
        import torch

        if self.needs_image and inp.image is None:
            raise ValueError(f"policy {self.name!r} needs a camera image, got None")
        proprio = np.asarray(inp.proprio, dtype=np.float32)
        with torch.inference_mode():
            if self.layout == "transformers":
                assert self._predict is not None
                raw = self._predict(
                    self.model,
                    self.processor,
                    inp.image,
                    proprio,
                    inp.instruction,
                    **self.predict_kwargs,
                )
                source = f"predict for {self.path}"
            else:
                raw = self._lerobot_step(inp.image, proprio, inp.instruction)
                source = f"LeRobot module from {self.path}"
        native = check_native_actions(raw, source)
        return fit_chunk(self.action_map(native), self.chunk_size)

    def _lerobot_step(self, image: np.ndarray | None, proprio: np.ndarray, text: str) -> Any:
        """Build LeRobot's batch (batch size 1) and ask the module for a chunk.

        Keys follow LeRobot: ``observation.state`` float (1, D); each camera key float
        (1, 3, H, W) in [0, 1]; ``task`` a list of one instruction. ``predict_action_chunk``
        gives (1, K, D); with only ``select_action`` we get one action, which fit_chunk repeats.
        """
        import torch

        batch: dict[str, Any] = {
            "observation.state": torch.as_tensor(proprio, device=self.device)[None],
            "task": [text],
        }
        if image is not None:
            frame = torch.as_tensor(np.ascontiguousarray(image), device=self.device)
            frame = frame.permute(2, 0, 1).float().div(255.0)[None]
            for key in self._image_keys:
                batch[key] = frame
        if hasattr(self.model, "predict_action_chunk"):
            return self.model.predict_action_chunk(batch)
        return self.model.select_action(batch)


def hf_policy_factory(path: str | Path, **kwargs: Any) -> Callable[..., HFPolicyAdapter]:
    """A factory with the POLICIES signature ``(task, chunk_size=8)`` for one checkpoint.

    The task name is not passed on: a VLA is conditioned by the instruction in each observation.
    Use it as ``POLICIES.register("my-vla", hf_policy_factory("/ckpts/my-vla", device="cuda"))``.
    """

    def make(task: str, chunk_size: int = 8) -> HFPolicyAdapter:
        return HFPolicyAdapter(path, chunk_size=chunk_size, **kwargs)

    return make
