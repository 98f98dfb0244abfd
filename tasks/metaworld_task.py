"""A Meta-World v3 task as a language-conditioned, camera-observed Gymnasium environment.

What this adds to Meta-World's own env:

* **Layouts that vary per seed.** ``gym.make("Meta-World/MT1")`` + ``reset(seed=s)`` draws one of
  50 fixed layouts, so held-out seeds would reuse training layouts. We unfreeze the random vector
  (``_freeze_rand_vec = False``, ``seeded_rand_vec = True``) and seed the unwrapped env, which gives
  layouts that vary continuously and reproduce per seed.
* **A control tick decoupled from physics.** Meta-World steps 5 physics substeps of 2.5 ms (80 Hz)
  per action and its scripted experts are tuned for that rate. One control tick here is
  ``80 / control_hz`` Meta-World steps (4 at the default 20 Hz); the tick's action is Meta-World's
  4-D action (xyz mocap delta in units of ``action_scale`` = 1 cm per Meta-World step, gripper
  effort) held for all of them. The scripted expert's chunks average its own 80 Hz actions over a
  tick (see ``rapid_env.tasks.expert``), so a held tick action moves the hand as far as the expert
  would have.
* **Proprioception at every physics substep (400 Hz):** the 7 arm joints' q, qd, qdd (differenced
  velocity) and drive torque, written to a :class:`~rapid_env.tasks.proprio.ProprioBuffer`. The
  arm is driven through a mocap weld, so the drive torque is the weld constraint force mapped into
  joint space (``J_eq^T f_eq``), the torque a position-controlled arm's motors apply; it rises when
  the hand pushes against a contact, which is what RAPID's torque trigger looks for.
* **Observation dict:** ``image`` (rendered only when read), ``proprio`` (end-effector xyz and
  gripper opening) and ``instruction``; never object or goal coordinates.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces
from metaworld.env_dict import ALL_V3_ENVIRONMENTS

from rapid_env.tasks.actions import checked_action
from rapid_env.tasks.limits import (
    DEFAULT_CAMERA,
    IMAGE_SIZE_RANGE,
    MW_STEP_HZ,
    image_shape,
    mw_steps_per_tick,
)
from rapid_env.tasks.markers import make_goal_visible, refresh_site_poses
from rapid_env.tasks.proprio import N_ARM_JOINTS, ProprioBuffer
from rapid_env.tasks.rendering import CameraRenderer
from rapid_env.tasks.suite import TaskSpec, get_task

INSTRUCTION_MAX_LEN = 128
HAND_CROP = "hand_crop"
"""A virtual camera: the main camera rendered at :data:`HAND_CROP_ZOOM` x the image size and cut
to the image size around the projected tool centre, so the hand and what it touches fill it."""
HAND_CROP_ZOOM = 3
_CHARSET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-'"
TABLE_BODIES = ("tablelink",)
"""Bodies whose geoms (with the world body's floor) form the background in-scene noise recolours."""

__all__ = [
    "IMAGE_SIZE_RANGE", "INSTRUCTION_MAX_LEN", "MW_STEP_HZ", "MetaWorldScene", "MetaWorldTask",
    "TABLE_BODIES", "image_shape", "mw_steps_per_tick",
]


def _make_metaworld(env_key: str) -> Any:
    """A Meta-World v3 env that draws a fresh layout per seed and never ends an episode itself."""
    mw = ALL_V3_ENVIRONMENTS[env_key]()
    mw._freeze_rand_vec = False
    mw.seeded_rand_vec = True
    mw._set_task_called = True
    mw._partially_observable = False  # only the expert reads the goal, never the policy
    mw.max_path_length = 1 << 30  # we keep time ourselves
    return mw


def _observation_space(image_hw: tuple[int, int], proprio: spaces.Box) -> spaces.Dict:
    """The task env's observation: camera image, proprioception, instruction (never the goal)."""
    h, w = image_hw
    return spaces.Dict(
        {
            "image": spaces.Box(0, 255, (h, w, 3), np.uint8),
            "proprio": proprio,
            "instruction": spaces.Text(INSTRUCTION_MAX_LEN, charset=_CHARSET),
        }
    )


class MetaWorldTask(gym.Env[dict[str, Any], np.ndarray]):
    """One MT10 task with camera, proprioception and an instruction.

    It implements the control loop's :class:`rapid_env.task.Task` protocol (structurally: the task
    layer does not import the core); ``mw``, ``model``, ``data``, ``n_mw`` and ``frame_skip`` are
    the privileged handles only the scripted expert reads.

    Example:
        >>> env = MetaWorldTask("reach", image_size=64)
        >>> obs, info = env.reset(seed=3)
        >>> obs["image"].shape
        (64, 64, 3)
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    action_space: spaces.Box

    def __init__(
        self,
        task: str = "reach",
        image_size: int | tuple[int, int] = 128,
        camera: str = DEFAULT_CAMERA,
        control_hz: float = 20.0,
        quality: str = "fast",
        max_episode_s: float = 10.0,
        render_mode: str | None = None,
        goal_markers: bool = True,
        proprio_capacity: int = 1024,
    ) -> None:
        self.spec_task: TaskSpec = get_task(task)
        self.image_hw = image_shape(image_size)
        self.camera = camera
        self.quality = quality
        self.control_hz = float(control_hz)
        self.n_mw = mw_steps_per_tick(control_hz)
        if max_episode_s <= 0:
            raise ValueError(f"max_episode_s must be > 0, got {max_episode_s!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; allowed: None, 'rgb_array'")
        self.render_mode = render_mode
        # a video of the task plays at the control rate (one frame per step), whatever control_hz
        hz = self.control_hz
        self.metadata = {**self.metadata, "render_fps": int(hz) if hz.is_integer() else hz}
        self.max_ticks = int(np.ceil(max_episode_s * control_hz))

        self.mw = mw = _make_metaworld(self.spec_task.env_key)
        self.model: mujoco.MjModel = mw.model
        self.data: mujoco.MjData = mw.data
        self.model.opt.jacobian = mujoco.mjtJacobian.mjJAC_DENSE  # efc_J rows read below
        if goal_markers:
            make_goal_visible(self.model, self.spec_task.env_key)
        self.frame_skip = int(mw.frame_skip)
        self.physics_dt = float(self.model.opt.timestep)
        self.tick_dt = 1.0 / self.control_hz
        self._renderer: CameraRenderer | None = None
        self._extra_renderers: dict[str, CameraRenderer] = {}
        self.proprio = ProprioBuffer(proprio_capacity)
        self._arm_qadr = np.array([self.model.jnt_qposadr[i] for i in range(N_ARM_JOINTS)])
        self._arm_dadr = np.array([self.model.jnt_dofadr[i] for i in range(N_ARM_JOINTS)])
        self._prev_qd = np.zeros(N_ARM_JOINTS)
        self.tick = 0
        self.success = False
        self.last_info: dict[str, Any] = {}
        self.ee_trace: list[np.ndarray] = []  # tool-centre xyz once per Meta-World step (80 Hz)
        # Visual-only scene edits applied to every rendered frame (rapid_env.noise.scene).
        self.scene_hook: Callable[[mujoco.MjvScene], None] | None = None

        self.scene = MetaWorldScene(self)

        self.proprio_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)
        self.observation_space = _observation_space(self.image_hw, self.proprio_space)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)

    # ------------------------------------------------------------------ lifecycle
    @property
    def instruction(self) -> str:
        """The task's instruction sentence."""
        return self.spec_task.instruction

    @property
    def sim_time(self) -> float:
        """Simulated seconds since reset, in whole ticks."""
        return self.tick * self.tick_dt

    @property
    def samples_per_tick(self) -> int:
        """Physics substeps per tick: ``n_mw`` Meta-World steps of ``frame_skip`` substeps."""
        return self.n_mw * self.frame_skip

    @property
    def ee_trace_hz(self) -> float:
        """``ee_trace`` holds one sample per Meta-World step (80 Hz)."""
        return MW_STEP_HZ

    @property
    def ee_samples_per_tick(self) -> int:
        """One ``ee_trace`` sample per Meta-World step: ``n_mw`` per tick."""
        return self.n_mw

    # ------------------------------------------------------------------ physics state
    def get_state(self) -> np.ndarray:
        """MuJoCo's integration state: positions, velocities, controls, mocap, warm start, time.

        The kinematic quantities a forward pass leaves are functions of it, so putting it back
        (:meth:`set_state`) makes the next step exactly the one it would have been, without a
        forward pass (which would rewrite the solver's warm start).
        """
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        return state

    def set_state(self, state: object) -> None:
        """Put back a state from :meth:`get_state`; ValueError for an array of another size."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        size = mujoco.mj_stateSize(self.model, spec)
        arr = np.asarray(state, dtype=np.float64)
        if arr.shape != (size,):
            raise ValueError(
                f"state of shape {arr.shape}; allowed: this task's get_state() shape ({size},)"
            )
        mujoco.mj_setState(self.model, self.data, arr, spec)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Draw a new layout (reproducible per ``seed``) and return the first observation."""
        super().reset(seed=seed)
        task_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        self.mw.seed(task_seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.mw.reset()
        # Meta-World moves the goal site after its last pose update: without this the first
        # frame shows the previous episode's goal.
        refresh_site_poses(self.model, self.data)
        self.tick = 0
        self.success = False
        self.proprio.clear()
        self.ee_trace = [self.end_effector_pos()]
        self._prev_qd = self.data.qvel[self._arm_dadr].copy()
        self._record(0.0)
        self.last_info = {"success": False, "sim_time_s": 0.0}
        return self._observation(), dict(self.last_info)

    def close(self) -> None:
        """Free the renderer's GL context, and Meta-World's own viewers if anything opened one."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        for r in self._extra_renderers.values():
            r.close()
        self._extra_renderers.clear()
        self.mw.close()

    # ------------------------------------------------------------------ stepping
    def advance(self, action: np.ndarray) -> dict[str, Any]:
        """Run one control tick with ``action`` held, without building an observation.

        Returns Meta-World's info dict for the end of the tick (with ``success`` and ``reward``).
        The controller calls this and renders a frame only when something reads it.

        Raises:
            ValueError: ``action`` is not an array of the action space's shape (4,) or holds a
                NaN or an infinity (checked before MuJoCo sees it: a NaN mocap target makes
                the simulation diverge a few steps later, far from its cause).
        """
        shape = self.action_space.shape
        a = np.clip(checked_action(action, shape, "xyz delta, gripper effort"), -1.0, 1.0)
        mw, m, d = self.mw, self.model, self.data
        t0 = self.tick * self.tick_dt
        k = 0
        for _ in range(self.n_mw):
            mw.set_xyz_action(a[:3])
            d.ctrl[0] = a[3]
            d.ctrl[1] = -a[3]
            for _ in range(self.frame_skip):
                mujoco.mj_step(m, d)
                k += 1
                self._record(t0 + k * self.physics_dt)
            for site in mw._target_site_config:
                mw._set_pos_site(*site)
            self.ee_trace.append(self.end_effector_pos())
        self.tick += 1
        mujoco.mj_forward(m, d)
        if not np.all(np.isfinite(d.qpos)):
            raise FloatingPointError("simulation diverged (non-finite qpos)")
        obs = mw._get_obs()
        reward, info = mw.evaluate_state(obs, a.astype(np.float32))
        self.success = self.success or bool(info["success"])
        info = dict(info)
        info["reward"] = float(reward)
        info["sim_time_s"] = self.sim_time
        self.last_info = info
        return info

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        """Gymnasium step: one control tick; terminates on success, truncates at the time limit."""
        info = self.advance(action)
        terminated = bool(info["success"])
        truncated = self.tick >= self.max_ticks and not terminated
        return self._observation(), float(info["reward"]), terminated, truncated, info

    def _record(self, t: float) -> None:
        d = self.data
        qd = d.qvel[self._arm_dadr]
        qdd = (qd - self._prev_qd) / self.physics_dt
        self._prev_qd = qd.copy()
        ne = d.ne
        if ne:
            nv = self.model.nv
            jac = d.efc_J[: ne * nv].reshape(ne, nv)[:, self._arm_dadr]
            tau = jac.T @ d.efc_force[:ne]
        else:
            tau = np.zeros(N_ARM_JOINTS)
        self.proprio.append(t, d.qpos[self._arm_qadr], qd, qdd, tau)

    # ------------------------------------------------------------------ observations
    def proprio_vector(self) -> np.ndarray:
        """End-effector xyz (m) and gripper opening (0 closed .. 1 open), float32."""
        d = self.data
        hand = d.body("hand").xpos
        right, left = d.body("rightclaw").xpos, d.body("leftclaw").xpos
        opening = float(np.clip(np.linalg.norm(right - left) / 0.1, 0.0, 1.0))
        return np.array([hand[0], hand[1], hand[2], opening], dtype=np.float32)

    def end_effector_pos(self) -> np.ndarray:
        """The tool centre point between the fingers, xyz in metres (copy)."""
        return np.asarray(self.mw.tcp_center, dtype=np.float64).copy()

    def render_image(self) -> np.ndarray:
        """Render the camera frame (uint8 HxWx3, right way up)."""
        if self._renderer is None:
            h, w = self.image_hw
            self._renderer = CameraRenderer(
                self.model, self.data, self.camera, w, h, quality=self.quality
            )
        return self._renderer.render(self.scene_hook)

    @property
    def camera_names(self) -> tuple[str, ...]:
        """The model's cameras, the main one first (a policy may read the others by name).

        Meta-World's scene has ``topview``, ``corner``..``corner4``, ``behindGripper`` and the
        wrist-mounted ``gripperPOV``, which sees the object large once the hand is near it; the
        last name, :data:`HAND_CROP`, is a zoomed crop of the main camera around the hand.
        """
        names = [self.model.camera(i).name for i in range(self.model.ncam)]
        return (self.camera, *(n for n in names if n != self.camera), HAND_CROP)

    def render_camera(self, name: str) -> np.ndarray:
        """Camera ``name``'s frame now (uint8, the task's image size, ``scene_hook`` applied)."""
        if name == self.camera:
            return self.render_image()
        if name == HAND_CROP:
            return self._hand_crop()
        if name not in self._extra_renderers:
            if name not in self.camera_names:
                raise ValueError(
                    f"unknown camera {name!r}; allowed: {', '.join(self.camera_names)}"
                )
            h, w = self.image_hw
            self._extra_renderers[name] = CameraRenderer(
                self.model, self.data, name, w, h, quality=self.quality
            )
        return self._extra_renderers[name].render(self.scene_hook)

    def _hand_crop(self) -> np.ndarray:
        """The main camera at ``HAND_CROP_ZOOM`` x resolution, cut around the tool centre."""
        h, w = self.image_hw
        zh, zw = h * HAND_CROP_ZOOM, w * HAND_CROP_ZOOM
        r = self._extra_renderers.get(HAND_CROP)
        if r is None:
            r = CameraRenderer(self.model, self.data, self.camera, zw, zh, quality=self.quality)
            self._extra_renderers[HAND_CROP] = r
        big = r.render(self.scene_hook)
        cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, self.camera)
        rel = np.asarray(self.data.cam_xmat[cid]).reshape(3, 3).T @ (
            self.end_effector_pos() - self.data.cam_xpos[cid]
        )  # camera frame: +x right, +y up, looking along -z
        f = 0.5 * zh / np.tan(np.radians(self.model.cam_fovy[cid]) / 2)
        depth = max(-rel[2], 1e-6)
        u, v = zw / 2 + f * rel[0] / depth, zh / 2 - f * rel[1] / depth
        if r.rotated:  # the renderer turned the image 180 degrees to put it right way up
            u, v = zw - u, zh - v
        top = int(np.clip(round(v - h / 2), 0, zh - h))
        left = int(np.clip(round(u - w / 2), 0, zw - w))
        return np.ascontiguousarray(big[top:top + h, left:left + w])

    def object_targets(self) -> np.ndarray:
        """Privileged object and goal positions, float32 (9,): training labels only.

        The first object's xyz, the second's (zeros when the task has one) and the goal's,
        as Meta-World's full observation holds them. A policy never sees these; trainers use
        them as an auxiliary localisation target.
        """
        obs = np.asarray(self.mw._get_obs(), dtype=np.float64)
        goal = np.asarray(self.mw._target_pos, dtype=np.float64)
        return np.concatenate([obs[4:7], obs[11:14], goal]).astype(np.float32)

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """Gymnasium render: the camera frame in ``rgb_array`` mode."""
        return self.render_image() if self.render_mode == "rgb_array" else None

    def _observation(self) -> dict[str, Any]:
        return {
            "image": self.render_image(),
            "proprio": self.proprio_vector(),
            "instruction": self.instruction,
        }


class MetaWorldScene:
    """What in-scene noise reads of a Meta-World task (:class:`rapid_env.task.SceneAccess`).

    The goal and object positions come from Meta-World's own (private) accessors here, in the
    task suite, so the noise never reaches into them.
    """

    def __init__(self, task: MetaWorldTask) -> None:
        self._task = task

    def camera_position(self) -> np.ndarray:
        """The rendering camera's position; a fixed front-right point if the model lacks it."""
        t = self._task
        cam_id = mujoco.mj_name2id(t.model, mujoco.mjtObj.mjOBJ_CAMERA, t.camera)
        return t.data.cam_xpos[cam_id].copy() if cam_id >= 0 else np.array([1.0, 0.0, 1.0])

    def keep_out_points(self) -> np.ndarray:
        """The goal, every object and the tool centre point, shape (k, 3)."""
        t = self._task
        goal = np.asarray(t.mw._target_pos, dtype=np.float64).reshape(-1)[:3]
        objs = np.asarray(t.mw._get_pos_objects(), dtype=np.float64).reshape(-1, 3)
        return np.vstack([goal, objs, t.end_effector_pos()])

    def background_geoms(self) -> frozenset[int]:
        """The geoms of the table bodies and of the world body (the floor)."""
        m = self._task.model
        table = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b) for b in TABLE_BODIES}
        return frozenset(
            i for i in range(m.ngeom) if m.geom_bodyid[i] in table or m.geom_bodyid[i] == 0
        )
