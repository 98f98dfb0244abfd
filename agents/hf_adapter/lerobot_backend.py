"""The LeRobot backend: a ``type``-tagged ``config.json`` plus ``model.safetensors``.

LeRobot itself is not a dependency, so this backend cannot know how to build an ``act`` or a
``smolvla`` module: the user registers a factory per ``type`` with
:func:`register_lerobot_factory`. The module it builds must offer ``predict_action_chunk(batch)``
(preferred) or ``select_action(batch)``; the batch follows LeRobot's keys
(``observation.state``, ``observation.image...``, ``task``). Weights are read with
``safetensors.torch.load_file`` (no pickle, no code) and loaded with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

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
    """Camera keys from LeRobot's ``input_features`` (``type: VISUAL``); one frame feeds all."""
    feats = config.get("input_features") or {}
    if not feats:  # older configs do not list features: use LeRobot's single-camera key
        return ["observation.image"]
    return [k for k, v in feats.items() if isinstance(v, dict) and v.get("type") == "VISUAL"]


class LeRobotBackend:
    """A LeRobot-style module built by a registered factory, as a :class:`PolicyBackend`.

    Attributes:
        path: the checkpoint directory.
        model: the module, weights loaded, on ``device``, in eval mode.
        processor: always None (LeRobot modules take raw tensors).
        image_keys: batch keys that receive the camera frame.
        device: torch device the batch tensors are put on.
        dtype: torch dtype of the module's weights, which the float batch tensors are cast to;
            None: as built (float32).
        needs_image: whether the config lists a camera feature.
        source: ``"LeRobot module from <path>"``, for the action map's error messages.
    """

    layout: Layout = "lerobot"

    def __init__(
        self, path: Path, module: Any, image_keys: list[str], device: str, dtype: Any = None
    ) -> None:
        self.path = path
        self.model = module
        self.processor: Any = None
        self.image_keys = image_keys
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
        return cls(path, module, lerobot_image_keys(config), options.device, dtype)

    def reset(self) -> None:
        """Call the module's own ``reset()`` if it has one: it clears LeRobot's action queue."""
        reset = getattr(self.model, "reset", None)
        if callable(reset):
            reset()

    def forward(self, inp: PolicyInput) -> Any:
        """Build LeRobot's batch (batch size 1) and ask the module for a chunk.

        Keys follow LeRobot: ``observation.state`` float (1, D); each camera key float
        (1, 3, H, W) in [0, 1]; ``task`` a list of one instruction. ``predict_action_chunk``
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
            frame = torch.as_tensor(np.ascontiguousarray(inp.image), device=self.device)
            frame = frame.permute(2, 0, 1).to(self.dtype or torch.float32).div(255.0)[None]
            for key in self.image_keys:
                batch[key] = frame
        if hasattr(self.model, "predict_action_chunk"):
            return self.model.predict_action_chunk(batch)
        return self.model.select_action(batch)
