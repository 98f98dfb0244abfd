"""The LeRobot backend: a ``type``-tagged ``config.json`` plus ``model.safetensors``.

LeRobot itself is not a dependency, so this backend cannot know how to build an ``act`` or a
``smolvla`` module: the user registers a factory per ``type`` with
:func:`register_lerobot_factory`. The module it builds must offer ``predict_action_chunk(batch)``
(preferred) or ``select_action(batch)``; the batch follows LeRobot's keys
(``observation.state``, ``observation.image...``, ``task``). Weights are read with
``safetensors.torch.load_file`` (no pickle, no code) and loaded with ``strict=True``.

Cameras: a key naming a wrist (``wrist``, ``hand``) is fed the task's wrist camera, the one other
key the task's main camera; a checkpoint with more cameras than the suite renders is refused
rather than fed one frame twice. LeRobot's processor pipelines (normalisation) are not run here:
``rapid-policy-server --lerobot DIR`` serves a checkpoint with them, from LeRobot's own venv.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from rapid_env.agents.cameras import is_wrist_key
from rapid_env.agents.hf_adapter.backend import (
    ADAPTER_FILE,
    Layout,
    LoadOptions,
    require_safetensors,
)
from rapid_env.policy import PolicyInput
from rapid_env.registry import Registry, UnknownNameError

if TYPE_CHECKING:
    import torch

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


def lerobot_image_keys(config: Mapping[str, Any]) -> list[str]:
    """Camera keys from LeRobot's ``input_features`` (``type: VISUAL``), in the config's order."""
    feats = config.get("input_features") or {}
    if not feats:  # older configs do not list features: use LeRobot's single-camera key
        return ["observation.image"]
    return [k for k, v in feats.items() if isinstance(v, dict) and v.get("type") == "VISUAL"]


def camera_sources(keys: list[str], wrist_camera: str | None, path: Path) -> dict[str, str | None]:
    """Each camera key's source: None for the task's main camera, else a wrist camera's name.

    Raises:
        ValueError: more main or wrist keys than the suite has one of each, or a wrist key when
            the task's wrist camera is not known (naming the keys).
    """
    wrist = [k for k in keys if is_wrist_key(k)]
    main = [k for k in keys if k not in wrist]
    if len(main) > 1 or len(wrist) > 1:
        raise ValueError(f"{path}: cameras {keys}; a task renders one main and one wrist camera "
                         f"(a wrist key names 'wrist' or 'hand'); serve the checkpoint with "
                         f"rapid-policy-server --lerobot and --camera to choose")
    if wrist and wrist_camera is None:
        raise ValueError(f"{path}: camera {wrist[0]} is a wrist camera and the task's is not "
                         f"known; pass wrist_camera= (Meta-World gripperPOV, LIBERO eye_in_hand)")
    return {k: (wrist_camera if k in wrist else None) for k in keys}


class LeRobotBackend:
    """A LeRobot-style module built by a registered factory, as a :class:`PolicyBackend`.

    Attributes:
        path: the checkpoint directory.
        model: the module, weights loaded, on ``device``, in eval mode.
        processor: always None (LeRobot modules take raw tensors).
        image_keys: batch keys that receive a camera frame.
        sources: each image key's camera: None the task's main one, else a wrist camera's name.
        cameras: the extra cameras :meth:`forward` reads from ``PolicyInput.images``.
        device: torch device the batch tensors are put on.
        dtype: torch dtype of the module's weights, which the float batch tensors are cast to;
            None: as built (float32).
        needs_image: whether the config lists a camera feature.
        source: ``"LeRobot module from <path>"``, for the action map's error messages.
    """

    layout: Layout = "lerobot"

    def __init__(
        self, path: Path, module: Any, image_keys: list[str], device: str, dtype: Any = None,
        wrist_camera: str | None = None,
    ) -> None:
        self.path = path
        self.model = module
        self.processor: Any = None
        self.image_keys = image_keys
        self.sources = camera_sources(image_keys, wrist_camera, path)
        self.cameras: tuple[str, ...] = tuple(c for c in self.sources.values() if c is not None)
        self.device = device
        self.dtype = dtype  # a torch dtype the float inputs are cast to; None: float32
        self.needs_image = bool(image_keys)
        self.source = f"LeRobot module from {path}"

    @classmethod
    def load(cls, path: Path, config: dict[str, Any], options: LoadOptions) -> Self:
        """Build the module for ``config["type"]`` and load ``model.safetensors`` into it.

        ``predict=`` is refused, and so is a ``predict`` in the adapter file: the module's own
        ``predict_action_chunk`` / ``select_action`` is the forward, and silently ignoring a glue
        would hide a mistake. Nothing is imported either way.
        """
        if options.predict is not None or "predict" in options.settings:
            where = "predict=" if options.predict is not None else f"predict in {ADAPTER_FILE}"
            raise ValueError(
                f"{path} is a LeRobot checkpoint; {where} applies to the transformers "
                f"layout only (the module's predict_action_chunk/select_action is used)"
            )
        from safetensors.torch import load_file

        weights = require_safetensors(path, ("model.safetensors",))
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
            raise ValueError(
                f"weights in {weights} do not fit the {type_name!r} module: {e}"
            ) from e
        dtype = None
        if options.dtype is not None:  # the module's floating weights and buffers, like .to()
            import torch

            dtype = getattr(torch, options.dtype, None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(
                    f"dtype must name a torch dtype like 'bfloat16', got {options.dtype!r}")
        module.to(options.device, dtype)
        module.eval()
        return cls(path, module, lerobot_image_keys(config), options.device, dtype,
                   options.wrist_camera)

    def reset(self) -> None:
        """Call the module's own ``reset()`` if it has one: it clears LeRobot's action queue."""
        reset = getattr(self.model, "reset", None)
        if callable(reset):
            reset()

    def forward(self, inp: PolicyInput) -> Any:
        """Build LeRobot's batch (batch size 1) and ask the module for a chunk.

        Keys follow LeRobot: ``observation.state`` float (1, D); each camera key float
        (1, 3, H, W) in [0, 1], from the main or the wrist camera (:attr:`sources`); ``task`` a
        list of one instruction. ``predict_action_chunk``
        gives (1, K, D); with only ``select_action`` we get one action, which fit_chunk repeats.
        """
        import torch

        proprio = np.asarray(inp.proprio, dtype=np.float32)
        batch: dict[str, Any] = {
            "observation.state": torch.as_tensor(proprio, device=self.device, dtype=self.dtype)[
                None],
            "task": [inp.instruction],
        }
        if inp.image is not None:
            for key, camera in self.sources.items():
                image = inp.image if camera is None else inp.images.get(camera)
                if image is None:
                    raise ValueError(f"{self.source} reads camera {camera!r} for {key}; the "
                                     f"input has {sorted(inp.images)}")
                frame = torch.as_tensor(np.ascontiguousarray(image), device=self.device)
                batch[key] = frame.permute(2, 0, 1).to(self.dtype or torch.float32).div(255.0)[
                    None]
        if hasattr(self.model, "predict_action_chunk"):
            return self.model.predict_action_chunk(batch)
        return self.model.select_action(batch)
