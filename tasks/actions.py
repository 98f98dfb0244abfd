"""The one check every task suite runs on an action before its simulator sees it."""

from __future__ import annotations

import numpy as np

__all__ = ["checked_action"]


def checked_action(action: object, shape: tuple[int, ...], meaning: str) -> np.ndarray:
    """``action`` as a float64 array of ``shape``, all finite; ValueError otherwise.

    Checked before MuJoCo sees it: a NaN target makes the simulation diverge a few steps later,
    far from its cause. ``meaning`` names the components in the message (``xyz delta, gripper
    effort``).
    """
    allowed = f"allowed: an array of shape {shape} ({meaning}), finite"
    try:
        a = np.asarray(action, dtype=np.float64) if action is not None else None
    except (TypeError, ValueError):
        a = None
    if a is None:
        raise ValueError(f"action={action!r} is not a numeric array; {allowed}")
    if a.shape != shape:
        raise ValueError(f"action of shape {a.shape}; {allowed}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action={a.tolist()} is not finite; {allowed}")
    return a
