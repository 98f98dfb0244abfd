"""A task written with plain numpy that implements the Task protocol, for runs without MuJoCo.

:class:`PointMass` is a 3-D point driven towards a commanded velocity (first-order lag) at every
physics substep; it succeeds within a radius of a goal drawn per seed, and its camera is a
synthetic top-down picture (goal and point as coloured squares). It shows, and the tests check,
that the control loop needs nothing of a task suite beyond :class:`rapid_env.task.Task`.
:class:`GoToGoal` is the matching scripted policy: it reads the privileged ``sim`` handle, as
Meta-World's scripted expert does.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from gymnasium import spaces

from rapid_env.policy import PolicyInput
from rapid_env.proprio import ProprioBuffer
from rapid_env.task import SceneHook

WORKSPACE = 0.5
"""Half-width of the cube the point and the goal live in, metres."""


class PointMassScene:
    """Scene access of the point mass: a camera above the workspace, no background geoms."""

    def __init__(self, task: PointMass) -> None:
        self._task = task

    def camera_position(self) -> np.ndarray:
        """A camera one metre above the workspace's centre."""
        return np.array([0.0, 0.0, 1.0])

    def keep_out_points(self) -> np.ndarray:
        """The goal and the point."""
        return np.vstack([self._task.goal, self._task.pos])

    def background_geoms(self) -> frozenset[int]:
        """No geoms: the picture is drawn, not rendered from a model."""
        return frozenset()


class PointMass:
    """A point mass that follows the commanded velocity; success within ``radius`` of the goal.

    The action is ``(vx, vy, vz, gripper)`` in [-1, 1], velocity in units of ``max_speed``; the
    gripper component only shows up in the proprio vector. Proprioception per substep: the
    point's xyz as "joint" positions, its velocity, acceleration and the driving force.
    """

    def __init__(
        self,
        image_size: int = 16,
        control_hz: float = 20.0,
        substeps: int = 5,
        max_episode_s: float = 2.0,
        max_speed: float = 0.5,
        radius: float = 0.05,
        lag_s: float = 0.02,
    ) -> None:
        self.image_hw = (image_size, image_size)
        self.control_hz = float(control_hz)
        self.tick_dt = 1.0 / self.control_hz
        self.samples_per_tick = substeps
        self.physics_dt = self.tick_dt / substeps
        self.max_ticks = int(np.ceil(max_episode_s * control_hz))
        self.ee_trace_hz = 1.0 / self.physics_dt
        self.ee_samples_per_tick = substeps
        self.max_speed = max_speed
        self.radius = radius
        self.lag_s = lag_s
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.proprio_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)
        self.instruction = "move the point to the goal"
        self.proprio = ProprioBuffer(256, n_joints=3)
        self.scene = PointMassScene(self)
        self.scene_hook: SceneHook | None = None
        self.pos = np.zeros(3)
        self.vel = np.zeros(3)
        self.goal = np.zeros(3)
        self.gripper = 0.0
        self.tick = 0
        self.success = False
        self.ee_trace: list[np.ndarray] = []
        self.renders = 0
        self.closed = False

    @property
    def sim_time(self) -> float:
        """Simulated seconds since reset, in whole ticks."""
        return self.tick * self.tick_dt

    def reset(self, *, seed: int | None = None) -> None:
        """Draw the start and the goal (at least 0.2 m apart) from ``seed``."""
        rng = np.random.default_rng(seed)
        self.pos = rng.uniform(-WORKSPACE, WORKSPACE, 3)
        self.goal = self.pos.copy()
        while np.linalg.norm(self.goal - self.pos) < 0.2:
            self.goal = rng.uniform(-WORKSPACE, WORKSPACE, 3)
        self.vel = np.zeros(3)
        self.gripper = 0.0
        self.tick = 0
        self.success = False
        self.proprio.clear()
        self.ee_trace = [self.pos.copy()]

    def advance(self, action: np.ndarray) -> dict[str, Any]:
        """One tick: ``samples_per_tick`` substeps of first-order velocity tracking."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self.gripper = float(a[3])
        target = a[:3] * self.max_speed
        dt = self.physics_dt
        t0 = self.sim_time
        for k in range(self.samples_per_tick):
            force = (target - self.vel) / self.lag_s
            acc = force  # unit mass
            self.vel = self.vel + acc * dt
            self.pos = self.pos + self.vel * dt
            self.proprio.append(t0 + (k + 1) * dt, self.pos, self.vel, acc, force)
            self.ee_trace.append(self.pos.copy())
        self.tick += 1
        if not np.all(np.isfinite(self.pos)):
            raise FloatingPointError("point mass diverged (non-finite position)")
        now = bool(np.linalg.norm(self.pos - self.goal) < self.radius)
        self.success = self.success or now
        return {"success": now, "sim_time_s": self.sim_time}

    def proprio_vector(self) -> np.ndarray:
        """Position and gripper command, float32."""
        return np.array([*self.pos, self.gripper], dtype=np.float32)

    def end_effector_pos(self) -> np.ndarray:
        """The point's position (copy)."""
        return self.pos.copy()

    def render_image(self) -> np.ndarray:
        """Top-down picture: goal in green, point in red, on grey; the hook may draw on it."""
        self.renders += 1
        h, w = self.image_hw
        img = np.full((h, w, 3), 60, dtype=np.uint8)
        for p, colour in ((self.goal, (0, 200, 0)), (self.pos, (220, 0, 0))):
            r = int(np.clip((p[1] / WORKSPACE + 1) / 2 * (h - 1), 0, h - 1))
            c = int(np.clip((p[0] / WORKSPACE + 1) / 2 * (w - 1), 0, w - 1))
            img[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] = colour
        if self.scene_hook is not None:
            self.scene_hook(img)
        return img

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Position and velocity (copies): all a later substep integrates from."""
        return self.pos.copy(), self.vel.copy()

    def set_state(self, state: object) -> None:
        """Put back a state from :meth:`get_state`."""
        pos, vel = cast("tuple[np.ndarray, np.ndarray]", state)
        self.pos = np.array(pos, dtype=np.float64)
        self.vel = np.array(vel, dtype=np.float64)

    def close(self) -> None:
        """Nothing held outside Python; remembered so a test can see it was called."""
        self.closed = True


class GoToGoal:
    """Scripted policy for :class:`PointMass`: a chunk of actions heading for the goal.

    Each action is the velocity command that covers the remaining distance in ``horizon_s`` at
    most, so the point slows down as it arrives; the chunk repeats it (open loop, like a VLA's
    chunk).
    """

    name = "go-to-goal"
    needs_image = False

    def __init__(self, chunk_size: int = 4, horizon_s: float = 0.25) -> None:
        self.chunk_size = chunk_size
        self.horizon_s = horizon_s
        self.calls = 0

    def reset(self, rng: np.random.Generator) -> None:
        """Deterministic: nothing to draw."""
        self.calls = 0

    def act(self, inp: PolicyInput) -> np.ndarray:
        """The chunk from the point's position (proprio) towards the goal (privileged)."""
        self.calls += 1
        task = inp.sim
        if not isinstance(task, PointMass):
            raise ValueError(f"GoToGoal runs in a PointMass task, got {type(task).__name__}")
        delta = task.goal - inp.proprio[:3]
        v = np.clip(delta / self.horizon_s / task.max_speed, -1.0, 1.0)
        return np.tile(np.append(v, 0.0).astype(np.float32), (self.chunk_size, 1))
