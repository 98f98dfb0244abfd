"""Proprioception buffer of the task suites: re-exported from :mod:`rapid_env.proprio`.

The buffer and its window moved to the package's bottom layer so that the control loop and the
deciders read them without importing a task suite; this module keeps the old import path.
"""

from __future__ import annotations

from rapid_env.proprio import N_ARM_JOINTS, ProprioBuffer, ProprioWindow

__all__ = ["N_ARM_JOINTS", "ProprioBuffer", "ProprioWindow"]
