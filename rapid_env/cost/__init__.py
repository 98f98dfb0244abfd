"""Cost model: VLA architecture profiles x edge/cloud devices x split point -> an inference plan.

``build_cost_model("openvla-7b", edge="jetson-agx-orin", cloud="a100").plan(k)`` gives the ordered
edge / up / cloud / down stages the partitioned runtime executes in simulated time. See
``docs/cost_model.md`` for the conventions and the calibration.

The re-exports below are resolved lazily (PEP 562): importing one submodule loads only what it
needs. The profiles themselves are counted offline by :mod:`rapid_env.profiler`, which nothing
here imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rapid_env.cost.devices import DEVICES, DeviceProfile
    from rapid_env.cost.model import (
        LOOP_COSTS,
        PLACEMENTS,
        CostModel,
        InferencePlan,
        LoopCost,
        Placement,
        SplitCost,
        Stage,
        StageKind,
        build_cost_model,
        split_table,
    )
    from rapid_env.cost.profiles import (
        PROFILES,
        ArchProfile,
        BlockCost,
        check_profile,
        load_profile,
        load_profile_file,
    )

_EXPORTS = {
    "DEVICES": "devices",
    "DeviceProfile": "devices",
    "CostModel": "model",
    "LOOP_COSTS": "model",
    "LoopCost": "model",
    "PLACEMENTS": "model",
    "Placement": "model",
    "InferencePlan": "model",
    "SplitCost": "model",
    "split_table": "model",
    "Stage": "model",
    "StageKind": "model",
    "build_cost_model": "model",
    "PROFILES": "profiles",
    "ArchProfile": "profiles",
    "BlockCost": "profiles",
    "load_profile": "profiles",
    "load_profile_file": "profiles",
    "check_profile": "profiles",
}

__all__ = [
    "DEVICES",
    "LOOP_COSTS",
    "PLACEMENTS",
    "PROFILES",
    "ArchProfile",
    "BlockCost",
    "CostModel",
    "DeviceProfile",
    "InferencePlan",
    "LoopCost",
    "Placement",
    "SplitCost",
    "Stage",
    "StageKind",
    "build_cost_model",
    "check_profile",
    "load_profile",
    "load_profile_file",
    "split_table",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
