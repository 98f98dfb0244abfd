"""The shared action map: a backend's raw output -> Meta-World's ``(chunk_size, 4)`` chunk.

Both backends hand back whatever their model returns (an array, a tensor, a nested list, one
action or a chunk); everything from there on is layout-independent and lives here, so a
transformers checkpoint and a LeRobot one that emit the same numbers give the same chunk:

1. :func:`check_native_actions` -- coerce to a finite float ``(K, D)`` array or raise ValueError;
2. :class:`ActionMap` -- unnormalise, pick the x/y/z/gripper dims, scale, map the gripper, clip;
3. :func:`fit_chunk` -- repeat the last action or truncate to exactly ``chunk_size``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


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


def native_to_chunk(raw: Any, action_map: ActionMap, chunk_size: int, source: str) -> np.ndarray:
    """Run the whole map on a backend's raw output: check, map to 4-D, fit to ``chunk_size``.

    The one entry point the adapter calls, so every backend's output goes through the same three
    steps in the same order (see the module docstring).

    Args:
        raw: what the backend's forward returned.
        action_map: native -> Meta-World mapping.
        chunk_size: length of the returned chunk.
        source: names the producer (and checkpoint path) in error messages.

    Returns:
        A ``(chunk_size, 4)`` float32 chunk in ``[-1, 1]``.
    """
    native = check_native_actions(raw, source)
    return fit_chunk(action_map(native), chunk_size)
