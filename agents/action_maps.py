"""Named action maps and action-map files: ``openpi:ws://host:port?actions=<preset or .json>``.

A served policy answers in its own action space; :class:`~rapid_env.agents.hf_adapter.actions.
ActionMap` turns that into the task suite's. This module finds the map a policy name asks for:
a shipped preset by name, or a JSON file of :class:`ActionMap` fields, targeting the suite of the
task the policy will drive (a map that declares another suite is refused when it is built).

The presets translate between the two suites' own action spaces, so every number comes from the
suites' code: a Meta-World action moves the mocap target ``action * MW_METRES_PER_STEP`` per
Meta-World step, :func:`~rapid_env.tasks.limits.mw_steps_per_tick` steps per control tick;
LIBERO's OSC_POSE controller (robosuite's default ``osc_pose.json``, ``output_max``) moves its
set-point ``action * LIBERO_METRES_PER_TICK`` per tick. Both are commanded set-point
displacements, not the motion the arm achieves; both grippers are -1 open, +1 closed. They hold at
:data:`PRESET_CONTROL_HZ`, the default control rate; at another rate write a JSON map with the
scale :func:`libero_to_metaworld_xyz` gives.
"""

from __future__ import annotations

from pathlib import Path

from rapid_env.agents.hf_adapter.actions import TARGETS, ActionMap
from rapid_env.jsonfile import read_json_object
from rapid_env.tasks.limits import mw_steps_per_tick

MW_METRES_PER_STEP = 0.01
"""Meta-World's ``action_scale``: metres of mocap motion per unit action per Meta-World step."""

LIBERO_METRES_PER_TICK = 0.05
"""robosuite OSC_POSE ``output_max`` for xyz: metres of set-point motion per unit action per
tick (its axis-angle bound is 0.5 rad, unused by the presets: Meta-World has no rotation)."""

PRESET_CONTROL_HZ = 20.0
"""The control rate the presets' scales are for: ``EnvConfig.control_hz``'s default."""


def libero_to_metaworld_xyz(control_hz: float = PRESET_CONTROL_HZ) -> float:
    """The xyz factor that gives a LIBERO action's per-tick displacement in Meta-World units.

    A LIBERO action ``a`` moves ``0.05 a`` m per tick; a Meta-World action ``b`` moves ``0.01 b``
    m per Meta-World step, ``80 / control_hz`` steps per tick: ``b = 5 a / (80 / control_hz)``,
    1.25 at 20 Hz.
    """
    return LIBERO_METRES_PER_TICK / (MW_METRES_PER_STEP * mw_steps_per_tick(control_hz))


PRESETS: dict[str, ActionMap] = {
    # a LIBERO policy (openpi's pi0/pi0.5 LIBERO checkpoints answer in LIBERO's action space)
    # driving Meta-World: same displacement per tick, rotation dropped, gripper kept (-1 open)
    "libero7-to-metaworld": ActionMap(
        target="metaworld", native_width=7, indices=(0, 1, 2, 6),
        xyz_scale=libero_to_metaworld_xyz(),
    ),
    # a Meta-World policy (this project's served policies) driving LIBERO: the inverse factor,
    # no rotation commanded, gripper kept
    "metaworld4-to-libero": ActionMap(
        target="libero", native_width=4, indices=(0, 1, 2, None, None, None, 3),
        xyz_scale=1.0 / libero_to_metaworld_xyz(),
    ),
}
"""Shipped maps by name (docs/plugging_in_a_policy.md, "Action spaces and action maps")."""


def _allowed(suite: str) -> str:
    names = ", ".join(n for n, m in sorted(PRESETS.items()) if m.target == suite) or "none"
    return f"a preset for {suite} tasks ({names}) or a path to an action-map .json file"


def load_action_map(value: str, suite: str) -> ActionMap:
    """The map ``?actions=<value>`` names, targeting ``suite``'s action space; ValueError else.

    Args:
        value: a :data:`PRESETS` name or the path of a JSON object of :class:`ActionMap` fields
            (``target`` may be left out: it is the task's suite).
        suite: the task's suite, a :data:`~rapid_env.agents.hf_adapter.actions.TARGETS` key.

    Raises:
        ValueError: an unknown preset, a file that is missing or not a JSON object, an unknown
            or bad field, a map for the other suite, or statistics whose width disagrees with
            the map's dims; one line naming the bad value and the allowed ones.
    """
    if suite not in TARGETS:
        raise ValueError(f"suite={suite!r}; allowed: {', '.join(sorted(TARGETS))}")
    if value in PRESETS:
        amap = PRESETS[value]
        if amap.target != suite:
            raise ValueError(f"actions={value!r} maps to {amap.target} actions, the task is a "
                             f"{suite} task; allowed: {_allowed(suite)}")
        return amap
    if not value.endswith(".json"):
        raise ValueError(f"actions={value!r} is no preset and no .json path; allowed: "
                         f"{_allowed(suite)}")
    data = read_json_object(Path(value), f"actions={value}")
    data.setdefault("target", suite)
    if data["target"] != suite:
        raise ValueError(f"actions={value}: target={data['target']!r}, the task is a {suite} "
                         f"task; allowed: {suite!r} or leave target out")
    try:
        return ActionMap.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"actions={value}: {exc}") from None


__all__ = ["PRESETS", "PRESET_CONTROL_HZ", "libero_to_metaworld_xyz", "load_action_map"]
