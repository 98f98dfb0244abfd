"""Cost model: VLA architecture profiles x edge/cloud devices x split point -> an inference plan.

``build_cost_model("openvla-7b", edge="jetson-agx-orin", cloud="a100").plan(k)`` gives the ordered
edge / up / cloud / down stages the partitioned runtime executes in simulated time. See
``docs/cost_model.md`` for the conventions and the calibration.
"""

from __future__ import annotations

from rapid_env.cost.devices import DEVICES, DeviceProfile
from rapid_env.cost.model import CostModel, InferencePlan, Stage, StageKind, build_cost_model
from rapid_env.cost.profiles import PROFILES, ArchProfile, BlockCost, load_profile

__all__ = [
    "DEVICES",
    "PROFILES",
    "ArchProfile",
    "BlockCost",
    "CostModel",
    "DeviceProfile",
    "InferencePlan",
    "Stage",
    "StageKind",
    "build_cost_model",
    "load_profile",
]
