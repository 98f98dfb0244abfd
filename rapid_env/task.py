"""The Task seam: what the control loop needs of a simulated task, and nothing more.

The controller, recorder, camera, policy input, visual noise and redundancy oracle see a task only
through :class:`Task`, so a second task suite slots in by implementing it: nothing in the loop
imports a suite (an import-linter contract in ``pyproject.toml`` keeps it so). Meta-World's
:class:`rapid_env.tasks.metaworld_task.MetaWorldTask` implements it; the tests run whole episodes
through a point mass written with plain numpy (``tests/rapid_env/fakes.py``), without MuJoCo.

What the protocol asks for, and why the loop needs it:

* **one control tick at a time** (:meth:`Task.advance`), with proprioception written to a
  :class:`~rapid_env.proprio.ProprioBuffer` at every physics substep: deciders such as RAPID's
  trigger read joint acceleration and torque change at the physics rate, far above the control
  rate;
* **virtual time** (``tick``, ``max_ticks``, ``tick_dt``, ``sim_time``, ``physics_dt``,
  ``samples_per_tick``): the loop times chunks against simulated seconds and sizes the decider's
  proprioception window in substeps, so it must know both clocks without knowing how a suite
  divides a tick;
* **the camera** (:meth:`Task.render_image` at ``image_hw``), rendered only when read, because a
  frame costs more than a tick of physics; the **instruction**, the **proprio vector** and
  **success**: the rest of what a policy and the record read;
* **the end effector's path** (``ee_trace`` at ``ee_trace_hz``, ``ee_samples_per_tick`` samples
  per tick): the record's smoothness metrics and the per-tick jerk a reward charges;
* **a render hook and scene access** (``scene_hook``, ``scene``): in-scene visual noise edits the
  rendered scene and places its decor away from what the task is about, without reaching into a
  simulator's private fields;
* **state save and restore** (:meth:`Task.get_state`, :meth:`Task.set_state`): the redundancy
  oracle's shadow pass must leave the physics exactly as it found it.

A task may have more (Meta-World's keeps its Gymnasium ``step`` and its privileged handles for the
scripted expert); the loop never reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces

from rapid_env.proprio import ProprioBuffer

__all__ = ["MultiCameraTask", "SceneAccess", "SceneHook", "Task"]

SceneHook = Callable[[Any], None]
"""Edits the renderer's scene between its update and its draw (a MuJoCo ``MjvScene`` for the
MuJoCo suites); the argument's type is the suite's own, which only in-scene noise touches."""


@runtime_checkable
class SceneAccess(Protocol):
    """What in-scene visual noise reads of a task's world, in world coordinates (metres).

    A small read-only view instead of the simulator's handles: a disturbance needs to know where
    the camera is and what it must not cover, not how a suite stores its goal or objects.
    """

    def camera_position(self) -> np.ndarray:
        """Position of the rendering camera, xyz (occluders float between it and the table)."""
        ...

    def keep_out_points(self) -> np.ndarray:
        """Points decor must stay clear of, shape (k, 3): the goal, the task's objects, the hand.

        A distractor placed on the goal or the object would change what the task looks like to
        be about, not just add clutter.
        """
        ...

    def background_geoms(self) -> frozenset[int]:
        """Ids of the geoms that form the background (table and floor), which may be recoloured."""
        ...


@runtime_checkable
class Task(Protocol):
    """A simulated, language-conditioned, camera-observed task, one control tick at a time.

    Actions are boxes in ``action_space``; the loop's hold rule reads the last component as the
    gripper (a held robot keeps its gripper effort and stops moving), and policies emit chunks of
    shape (chunk_size, action_dim).
    """

    scene_hook: SceneHook | None
    """Applied to every rendered frame while set; in-scene noise installs it at each reset."""

    # ------------------------------------------------------------------ what the task is
    @property
    def instruction(self) -> str:
        """The sentence the policy is given."""
        ...

    @property
    def action_space(self) -> spaces.Box:
        """Shape and bounds of one action; the task clips what it is given to these bounds."""
        ...

    @property
    def proprio_space(self) -> spaces.Box:
        """Shape and bounds of :meth:`proprio_vector`."""
        ...

    @property
    def image_hw(self) -> tuple[int, int]:
        """``(height, width)`` of :meth:`render_image`'s frames."""
        ...

    # ------------------------------------------------------------------ clocks
    @property
    def tick(self) -> int:
        """Control ticks since the last reset."""
        ...

    @property
    def max_ticks(self) -> int:
        """Ticks in an episode: the loop truncates it there."""
        ...

    @property
    def tick_dt(self) -> float:
        """Simulated seconds per control tick."""
        ...

    @property
    def control_hz(self) -> float:
        """Control ticks per simulated second (``1 / tick_dt``, as configured)."""
        ...

    @property
    def physics_dt(self) -> float:
        """Simulated seconds per physics substep: one proprioception sample each."""
        ...

    @property
    def samples_per_tick(self) -> int:
        """Physics substeps (proprioception samples) per control tick."""
        ...

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the last reset, in whole ticks."""
        ...

    # ------------------------------------------------------------------ state of the episode
    @property
    def success(self) -> bool:
        """Whether the task has been solved at any tick since the last reset."""
        ...

    @property
    def proprio(self) -> ProprioBuffer:
        """Joint samples written at every physics substep; deciders read its newest window."""
        ...

    @property
    def ee_trace(self) -> Sequence[np.ndarray]:
        """End-effector positions (xyz, metres) since the last reset, at ``ee_trace_hz``."""
        ...

    @property
    def ee_trace_hz(self) -> float:
        """Samples per simulated second in :attr:`ee_trace` (the jerk metrics' rate)."""
        ...

    @property
    def ee_samples_per_tick(self) -> int:
        """Samples each tick adds to :attr:`ee_trace` (a tick's jerk reads the newest ones)."""
        ...

    @property
    def scene(self) -> SceneAccess:
        """What in-scene visual noise reads of the world (see :class:`SceneAccess`)."""
        ...

    # ------------------------------------------------------------------ the loop's calls
    def reset(self, *, seed: int | None = None) -> object:
        """Start an episode; the layout is reproducible per ``seed``.

        Clears the tick, success, the proprioception buffer and the end-effector trace. The
        return value (a Gymnasium task's first observation) is not read by the loop.
        """
        ...

    def advance(self, action: np.ndarray) -> dict[str, Any]:
        """Run one control tick with ``action`` held, sampling proprioception at every substep.

        Returns the tick's info dict, with at least ``success`` (this tick) and ``sim_time_s``.
        Raises FloatingPointError when the simulation diverges (the loop records a fault and
        truncates the episode). Builds no observation: the camera renders only when read.
        """
        ...

    def proprio_vector(self) -> np.ndarray:
        """The policy's proprioception (``proprio_space``), float32."""
        ...

    def end_effector_pos(self) -> np.ndarray:
        """The end effector's position now, xyz in metres (a copy)."""
        ...

    def render_image(self) -> np.ndarray:
        """The camera frame now, uint8 ``(*image_hw, 3)``, with ``scene_hook`` applied."""
        ...

    def get_state(self) -> object:
        """An opaque copy of everything a later tick integrates from (the physics state)."""
        ...

    def set_state(self, state: object) -> None:
        """Put back a state from :meth:`get_state` exactly.

        The next tick then runs as if the state had never been left: the oracle's shadow pass
        relies on it to change nothing in the episode.
        """
        ...

    def close(self) -> None:
        """Free what the task holds outside Python (a renderer's GL context)."""
        ...


@runtime_checkable
class MultiCameraTask(Protocol):
    """A task with more cameras than its main one (LIBERO's third-person and wrist views).

    Optional beside :class:`Task`: the camera layer asks for it only when a policy names extra
    cameras. Every camera renders with ``scene_hook`` applied, so in-scene noise shows in all.
    """

    @property
    def camera_names(self) -> tuple[str, ...]:
        """The task's cameras; the first is the one :meth:`Task.render_image` shows."""
        ...

    def render_camera(self, name: str) -> np.ndarray:
        """Camera ``name``'s frame now, uint8 ``(*image_hw, 3)``; ValueError for another name."""
        ...
