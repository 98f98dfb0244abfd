"""The Policy seam, re-exported: the protocol now lives in the core, :mod:`rapid_env.policy`.

The control loop calls it, so it sits in the layer of the loop; agents implement it. This module
keeps ``from rapid_env.policy import Policy, PolicyInput`` working for existing code.
"""

from __future__ import annotations

from rapid_env.policy import Policy, PolicyInput

__all__ = ["Policy", "PolicyInput"]
