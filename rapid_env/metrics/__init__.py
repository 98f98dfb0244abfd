"""Episode metrics: how smooth the robot moved, computed from the sampled end-effector path."""

from __future__ import annotations

from rapid_env.metrics.smoothness import ldlj, rms_jerk, sparc, tick_jerk_sq

__all__ = ["ldlj", "rms_jerk", "sparc", "tick_jerk_sq"]
