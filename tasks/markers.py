"""Visual-only goal cues, so a vision-language-action policy can *see* where the goal is.

A VLA never receives goal coordinates: for goal-conditioned MT10 tasks (reach, push,
pick-place) the only way it can know where to go is to see the goal in the camera image.
Meta-World marks the goal with a 2 cm sphere *site*, which is 1-3 px at 64 px and, for reach,
the same red as the Sawyer arm. :func:`make_goal_visible` turns that site into a large,
saturated, semi-transparent marker whose radius is the task's success radius, so the blob
shows the region the object/hand must end up in, and the object stays visible inside it.

Sites are purely visual in MuJoCo: they have no mass, no collision and are never read by the
dynamics, so editing ``model.site_size``/``site_rgba``/``site_type`` cannot change physics (the
tests step an env with and without markers and compare ``qpos`` bit for bit). Meta-World keeps
the goal site at the goal itself (``model.site_pos`` at reset, ``data.site_xpos`` each step).

For the articulated tasks (door, drawer, window, peg-insert) the goal is implicit in the
object (a door/drawer/window to open or close, a hole to insert into) that is already large in
the image, and the language instruction names it; their goal sites sit on or next to the
handle, so a big blob would only hide it. They are left exactly as Meta-World draws them.
``button-press-topdown-v3`` has no goal site at all: the button is the goal.

Reset caveat (Meta-World v3): ``env.reset()`` moves the goal site in ``model.site_pos`` *after*
its last ``mj_forward``, so ``data.site_xpos`` (what the renderer draws) still holds the
previous goal until the first ``env.step()``. Call :func:`refresh_site_poses` after every reset
and before rendering the first frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from rapid_env.tasks.limits import DEFAULT_CAMERA

__all__ = [
    "DEFAULT_CAMERA",
    "GOAL_MARKERS",
    "GOAL_SITE",
    "MT10_TASKS",
    "GoalMarker",
    "make_goal_visible",
    "refresh_site_poses",
]

GOAL_SITE = "goal"
"""Name of Meta-World's goal site."""

MT10_TASKS: tuple[str, ...] = (
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "drawer-open-v3",
    "drawer-close-v3",
    "button-press-topdown-v3",
    "peg-insert-side-v3",
    "window-open-v3",
    "window-close-v3",
)
"""The Meta-World MT10 task names, in the benchmark's order."""

# Saturated magenta: absent from the scene (red arm, brown table, grey floor, green/yellow
# objects), so at 64 px it cannot be confused with the robot or an object.
_GOAL_RGBA = (1.0, 0.0, 1.0, 0.55)


@dataclass(frozen=True)
class GoalMarker:
    """How the goal site of one task is drawn.

    Attributes:
        site_type: A ``mujoco.mjtGeom`` shape for the site (sphere or cylinder).
        size: ``model.site_size`` entry: ``(radius, 0, 0)`` for a sphere,
            ``(radius, half_height, 0)`` for a cylinder.
        rgba: Colour and opacity (translucent, so the object stays visible inside it).
    """

    site_type: int
    size: tuple[float, float, float]
    rgba: tuple[float, float, float, float]


GOAL_MARKERS: dict[str, GoalMarker | None] = {
    # Radius = the task's success radius (reach 0.05 m, push TARGET_RADIUS 0.05 m,
    # pick-place 0.07 m): the blob is the region to reach, ~5-7 px across at 64 px.
    "reach-v3": GoalMarker(int(mujoco.mjtGeom.mjGEOM_SPHERE), (0.05, 0.0, 0.0), _GOAL_RGBA),
    # Push's goal is on the table at puck height: a puck-high pad reads as "put it here".
    "push-v3": GoalMarker(int(mujoco.mjtGeom.mjGEOM_CYLINDER), (0.05, 0.02, 0.0), _GOAL_RGBA),
    "pick-place-v3": GoalMarker(int(mujoco.mjtGeom.mjGEOM_SPHERE), (0.07, 0.0, 0.0), _GOAL_RGBA),
    # Articulated tasks: the object is the goal; keep Meta-World's own small goal dot.
    "door-open-v3": None,
    "drawer-open-v3": None,
    "drawer-close-v3": None,
    "button-press-topdown-v3": None,  # no goal site: the button itself is the goal
    "peg-insert-side-v3": None,
    "window-open-v3": None,
    "window-close-v3": None,
}
"""Per-task goal drawing; ``None`` means the model is left unchanged."""


def make_goal_visible(model: mujoco.MjModel, task_name: str) -> None:
    """Restyle the task's goal site in place so the goal is a clear blob at 64 px.

    Only ``model.site_type``, ``model.site_size`` and ``model.site_rgba`` of the ``goal`` site
    change; sites take no part in the dynamics, so trajectories are bit-identical. Calling it
    twice is harmless (idempotent). Apply it once after constructing the env; Meta-World's
    resets only move the site.

    Args:
        model: The task env's ``MjModel`` (``env.model``), modified in place.
        task_name: A Meta-World MT10 task name, e.g. ``"reach-v3"``.

    Raises:
        ValueError: If ``task_name`` is not an MT10 task (the message lists them), or the task
            should have a goal site and the model has none.
    """
    if task_name not in GOAL_MARKERS:
        raise ValueError(f"unknown task {task_name!r}; MT10 tasks are {list(MT10_TASKS)}")
    marker = GOAL_MARKERS[task_name]
    if marker is None:
        return
    site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, GOAL_SITE)
    if site_id < 0:
        raise ValueError(f"model of {task_name!r} has no {GOAL_SITE!r} site")
    model.site_type[site_id] = marker.site_type
    model.site_size[site_id] = np.asarray(marker.size, dtype=np.float64)
    model.site_rgba[site_id] = np.asarray(marker.rgba, dtype=np.float32)


def refresh_site_poses(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """Recompute world poses of bodies, sites and cameras from the current state.

    Works around Meta-World v3's stale goal site right after ``env.reset()`` (see the module
    docstring). ``mj_kinematics`` writes only derived position quantities (``xpos``,
    ``site_xpos``, ``cam_xpos``, ...), which ``mj_step`` recomputes from ``qpos`` before using
    them; ``qpos``, ``qvel``, ``act``, ``ctrl``, time and the solver warm start are untouched,
    so the trajectory is unchanged.

    Args:
        model: The env's ``MjModel``.
        data: The env's ``MjData``, updated in place.
    """
    mujoco.mj_kinematics(model, data)
