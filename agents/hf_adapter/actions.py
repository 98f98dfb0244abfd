"""The shared action map: a model's native output -> the suite's ``(chunk_size, D)`` chunk.

Both backends hand back whatever their model returns (an array, a tensor, a nested list, one
action or a chunk); everything from there on is layout-independent and lives here, so a
transformers checkpoint and a LeRobot one that emit the same numbers give the same chunk. A
policy served over openpi's protocol (``openpi:ws://...?actions=...``) maps its replies with the
same :class:`ActionMap`, into Meta-World's 4-D or LIBERO's 7-D action space:

1. :func:`check_native_actions` -- coerce to a finite float ``(K, D)`` array or raise ValueError;
2. :class:`ActionMap` -- unnormalise, pick the dims, scale, map the gripper, clip;
3. :func:`fit_chunk` -- repeat the last action or truncate to exactly ``chunk_size``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

TARGETS: dict[str, int] = {"metaworld": 4, "libero": 7}
"""The action spaces a map can target, by suite, and their widths: Meta-World ``[dx, dy, dz,
grip]``, LIBERO ``[dx, dy, dz, drx, dry, drz, grip]``; every component in ``[-1, 1]``, the gripper
-1 open and +1 closed in both."""

ROTATION = (3, 4, 5)
"""LIBERO's axis-angle dims: the only target dims an ``indices`` entry may leave unset (None)."""

_NEW_FIELDS = {"target": "metaworld", "rot_scale": 1.0, "native_mean": None, "native_std": None,
               "native_width": None}
"""Fields added for other suites and normalisations, with their defaults: :meth:`to_dict` leaves
them out while they are at the default, so a Meta-World map's plain-data form is what it was."""


def _three(value: float | tuple[float, ...], name: str) -> tuple[float, ...]:
    """One factor or three, as three finite floats; ValueError naming ``name`` otherwise."""
    try:
        values = (float(value),) * 3 if isinstance(value, int | float) else tuple(
            float(v) for v in value)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"ActionMap.{name} must be finite, one or 3 values, got {value!r}")
    return values


def _stats(value: tuple[float, ...] | None, name: str) -> tuple[float, ...] | None:
    """A per-dim statistics vector as finite floats (JSON gives lists); ValueError otherwise."""
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if not out or not all(math.isfinite(v) for v in out):
        raise ValueError(f"ActionMap.{name} must be a non-empty list of finite numbers, "
                         f"got {value!r}")
    return out


@dataclass(frozen=True)
class ActionMap:
    """How a model's native action becomes the suite's action in ``[-1, 1]``.

    Steps, in order: optional unnormalisation of the native vector (min-max or mean-std), pick
    the dims the target needs, scale the xyz part (and LIBERO's rotation part), map the gripper
    linearly so ``gripper_open -> -1`` and ``gripper_closed -> +1`` (Meta-World closes the
    fingers for positive effort, LIBERO's gripper action is -1 open, +1 close), then clip.

    The target is Meta-World's ``[dx, dy, dz, grip]`` unless ``target="libero"``, which keeps
    the rotation: ``[dx, dy, dz, drx, dry, drz, grip]``. Meta-World's hand has a fixed
    orientation, so rotations are dropped there.

    OpenVLA's ``predict_action`` returns 7-D ``[dx, dy, dz, droll, dpitch, dyaw, grip]`` already
    unnormalised to the dataset's units (metres per step) with ``grip`` 1 = open, 0 = closed.
    Meta-World moves its mocap target ``action / 100`` m per Meta-World step and a control tick
    holds the action for ``80 / control_hz`` of them, so metres-per-tick deltas want
    ``xyz_scale = 100 / (80 / control_hz)``: ``ActionMap(xyz_scale=25.0, gripper_open=1.0,
    gripper_closed=0.0)`` at the default 20 Hz. LIBERO's OSC controller moves its set-point
    ``0.05 * action`` m and ``0.5 * action`` rad per tick, so the same policy driving LIBERO
    wants ``xyz_scale=20.0, rot_scale=2.0, target="libero"``.

    Attributes:
        indices: native dims used for each target dim: Meta-World x, y, z, gripper (4 ints);
            LIBERO x, y, z, rx, ry, rz, gripper (7 entries, a rotation entry may be None: that
            dim is 0, for a model with no rotation). None picks by width: Meta-World 4 ->
            (0, 1, 2, 3), 7 -> (0, 1, 2, 6); LIBERO 7 -> (0, ..., 6), 4 -> (0, 1, 2, None, None,
            None, 3); other widths must say which dims to use.
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
        target: the suite whose action space the map produces: ``metaworld`` (4-D) or
            ``libero`` (7-D).
        rot_scale: multiplies LIBERO's axis-angle deltas, one factor or one per axis (LIBERO
            only: Meta-World drops rotations).
        native_mean: with ``native_std``, per-dim statistics used to unnormalise a model that
            outputs mean-std-normalised actions: ``x -> mean + x * std`` (the other normalisation
            VLA checkpoints declare, beside ``native_low``/``native_high``).
        native_std: see ``native_mean``; each >= 0.
        native_width: the model's action width, when known: an action of another width is
            refused (instead of picked from by the default ``indices``), and the statistics and
            ``indices`` are checked against it when the map is built.
    """

    indices: tuple[int, int, int, int] | tuple[int | None, ...] | None = None
    xyz_scale: float | tuple[float, float, float] = 1.0
    gripper_open: float = -1.0
    gripper_closed: float = 1.0
    binarize_gripper: bool = False
    native_low: tuple[float, ...] | None = None
    native_high: tuple[float, ...] | None = None
    clip: bool = True
    target: str = "metaworld"
    rot_scale: float | tuple[float, float, float] = 1.0
    native_mean: tuple[float, ...] | None = None
    native_std: tuple[float, ...] | None = None
    native_width: int | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"ActionMap.target={self.target!r}; allowed: "
                             f"{', '.join(sorted(TARGETS))}")
        if self.indices is not None:
            object.__setattr__(self, "indices", self._checked_indices(self.indices))
        scale = self.xyz_scale
        scales = _three(scale, "xyz_scale")
        if not isinstance(scale, int | float):
            object.__setattr__(self, "xyz_scale", scales)
        rot = self.rot_scale
        rots = _three(rot, "rot_scale")
        if self.target == "metaworld" and rots != (1.0, 1.0, 1.0):
            raise ValueError(f"ActionMap.rot_scale={rot!r} applies to LIBERO's rotation; "
                             f"Meta-World drops rotations (target='metaworld'); allowed: 1.0")
        if not isinstance(rot, int | float):
            object.__setattr__(self, "rot_scale", rots)
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
        self._check_mean_std()
        self._check_width()

    def _checked_indices(self, indices: Any) -> tuple[int | None, ...]:
        """``indices`` as a tuple for the target, or ValueError naming what is allowed."""
        def is_dim(i: Any) -> bool:
            return isinstance(i, int | float) and not isinstance(i, bool) and int(i) == i >= 0

        try:
            entries = tuple(indices)
        except TypeError:
            entries = ()
        if self.target == "metaworld":
            if len(entries) != 4 or not all(is_dim(i) for i in entries):
                raise ValueError(
                    f"ActionMap.indices must be 4 non-negative ints (x, y, z, gripper), "
                    f"got {indices!r}"
                )
        elif len(entries) != 7 or not all(
            is_dim(i) or (i is None and j in ROTATION) for j, i in enumerate(entries)
        ):
            raise ValueError(
                f"ActionMap.indices must be 7 non-negative ints (x, y, z, rx, ry, rz, gripper) "
                f"for target='libero', a rotation entry may be null; got {indices!r}"
            )
        return tuple(None if i is None else int(i) for i in entries)

    def _check_mean_std(self) -> None:
        if (self.native_mean is None) != (self.native_std is None):
            raise ValueError("ActionMap.native_mean and native_std must be given together")
        if self.native_mean is None:
            return
        if self.native_low is not None:
            raise ValueError("ActionMap: give native_low/native_high (min-max) or "
                             "native_mean/native_std (mean-std), not both")
        mean = _stats(self.native_mean, "native_mean") or ()
        std = _stats(self.native_std, "native_std") or ()
        if len(mean) != len(std) or min(std) < 0:
            raise ValueError(f"ActionMap.native_std must be >= 0 dim by dim, same length as "
                             f"native_mean; got mean={mean!r}, std={std!r}")
        object.__setattr__(self, "native_mean", mean)
        object.__setattr__(self, "native_std", std)

    def _check_width(self) -> None:
        """Check what is knowable without a model: the declared width against stats and dims."""
        width = self.native_width
        if width is not None and (isinstance(width, bool) or not isinstance(width, int)
                                  or width < 1):
            raise ValueError(f"ActionMap.native_width={width!r}; allowed: a positive int")
        said = f"native_width is {width}"
        stats = self.native_low if self.native_low is not None else self.native_mean
        if stats is not None:
            which = "native_low" if self.native_low is not None else "native_mean"
            if width is not None and len(stats) != width:
                raise ValueError(f"ActionMap.{which} has {len(stats)} dims, {said}")
            width, said = len(stats), f"{which} has {len(stats)} dims"
        if width is not None:
            self._dims_for(width, said)

    @property
    def width(self) -> int:
        """The width of the mapped action: the target suite's action space."""
        return TARGETS[self.target]

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
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a string where a number belongs, and the like
            raise ValueError(f"ActionMap: a field has the wrong type ({exc}); "
                             f"allowed: {sorted(known)} as documented") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, for records and W&B config.

        Fields added for LIBERO and mean-std stats are left out while at their defaults, so a
        Meta-World map reads as it always has.
        """
        data = asdict(self)
        return {k: v for k, v in data.items()
                if k not in _NEW_FIELDS or v != _NEW_FIELDS[k]}

    def resolve_indices(self, width: int) -> tuple[int | None, ...]:
        """The native dims to use for an action of ``width`` dims, or ValueError."""
        if self.native_width is not None and width != self.native_width:
            raise ValueError(f"ActionMap.native_width is {self.native_width}, the model returned "
                             f"{width}-D actions")
        return self._dims_for(width, f"the model returned {width}")

    def _dims_for(self, width: int, said: str) -> tuple[int | None, ...]:
        """The dims for ``width``; ``said`` tells the message where the width came from."""
        if self.indices is None:
            if width == 4:
                return (0, 1, 2, 3) if self.target == "metaworld" else (
                    0, 1, 2, None, None, None, 3)
            if width == 7:
                return (0, 1, 2, 6) if self.target == "metaworld" else tuple(range(7))
            suite = {"metaworld": "Meta-World's 4-D", "libero": "LIBERO's 7-D"}[self.target]
            raise ValueError(
                f"cannot map a {width}-D model action to {suite} action by default "
                f"(defaults exist for 4-D and 7-D); set ActionMap.indices"
            )
        used = [i for i in self.indices if i is not None]
        if max(used) >= width:
            raise ValueError(
                f"ActionMap.indices {self.indices} need at least {max(used) + 1} action "
                f"dims, {said}"
            )
        return self.indices

    def check_width(self, width: int) -> None:
        """Raise ValueError unless a ``width``-D native action can be mapped (dims and stats)."""
        stats = self.native_low if self.native_low is not None else self.native_mean
        if stats is not None and len(stats) != width:
            which = "native_low" if self.native_low is not None else "native_mean"
            raise ValueError(
                f"ActionMap.{which} has {len(stats)} dims, the model returned {width}"
            )
        self.resolve_indices(width)

    def __call__(self, native: np.ndarray) -> np.ndarray:
        """Map a ``(K, D)`` native chunk to a ``(K, 4)`` Meta-World or ``(K, 7)`` LIBERO chunk."""
        x = np.asarray(native, dtype=np.float64)
        self.check_width(x.shape[1])
        if self.native_low is not None and self.native_high is not None:
            low, high = np.asarray(self.native_low), np.asarray(self.native_high)
            x = low + (x + 1.0) / 2.0 * (high - low)
        elif self.native_mean is not None and self.native_std is not None:
            x = np.asarray(self.native_mean) + x * np.asarray(self.native_std)
        idx = self.resolve_indices(x.shape[1])
        out = np.zeros((x.shape[0], len(idx)), dtype=np.float64)
        for j, i in enumerate(idx):
            if i is not None:
                out[:, j] = x[:, i]
        out[:, :3] *= np.asarray(self.xyz_scale, dtype=np.float64)
        if self.target == "libero":
            out[:, 3:6] *= np.asarray(self.rot_scale, dtype=np.float64)
        span = self.gripper_closed - self.gripper_open
        out[:, -1] = 2.0 * (out[:, -1] - self.gripper_open) / span - 1.0
        if self.binarize_gripper:
            out[:, -1] = np.where(out[:, -1] > 0.0, 1.0, -1.0)
        if self.clip:
            out = np.clip(out, -1.0, 1.0)
        elif np.abs(out).max() > 1.0:
            raise ValueError(
                f"mapped action leaves [-1, 1] (max |a| = {np.abs(out).max():.4g}) and "
                f"ActionMap.clip is False; lower xyz_scale or enable clip"
            )
        return out.astype(np.float32)


def fit_chunk(actions: np.ndarray, chunk_size: int) -> np.ndarray:
    """Make a ``(K, D)`` chunk exactly ``chunk_size`` long.

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
    """Run the whole map on a backend's raw output: check, map, fit to ``chunk_size``.

    The one entry point the adapter calls, so every backend's output goes through the same three
    steps in the same order (see the module docstring).

    Args:
        raw: what the backend's forward returned.
        action_map: native -> suite mapping (Meta-World unless its ``target`` says LIBERO).
        chunk_size: length of the returned chunk.
        source: names the producer (and checkpoint path) in error messages.

    Returns:
        A ``(chunk_size, action_map.width)`` float32 chunk in ``[-1, 1]``.
    """
    native = check_native_actions(raw, source)
    return fit_chunk(action_map(native), chunk_size)
