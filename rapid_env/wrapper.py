"""The RAPID env: a Gymnasium environment whose agent *is* the partition decider.

Action: ``MultiDiscrete([3, n_splits])``: the first entry is 0 keep executing, 1 infer, 2 infer and
preempt the cached chunk; the second is the split point (blocks before it run on the edge).
Observation: the kinematic and buffer features of :data:`rapid_env.features.FEATURE_NAMES`.
Reward (per tick, weights in :class:`RewardConfig`)::

    r = success * [task succeeded this tick]
        - latency * (seconds of latency of the chunks delivered this tick)
        - jerk * (mean squared end-effector jerk over the tick, (m/s^3)^2)
        - megabytes * (MB sent on the link this tick)
        - stall * [robot held this tick because the chunk had run out]

Info carries per-tick timing and events (requests, arrivals, preemptions, faults).

Example:
    >>> import gymnasium as gym, rapid_env
    >>> env = gym.make("rapid_env/Rapid-v0", task="reach", link="constant:20:40")
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rapid_env.config import EnvConfig, build_controller
from rapid_env.decision import KEEP, Decision
from rapid_env.features import FEATURE_NAMES, feature_vector
from rapid_env.seeding import episode_streams
from rapid_env.tasks.metaworld_task import MW_STEP_HZ


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the RAPID env's reward terms (see the module docstring)."""

    success: float = 10.0
    latency: float = 1.0
    jerk: float = 1e-5
    megabytes: float = 0.01
    stall: float = 0.05


def action_to_decision(action: np.ndarray) -> Decision:
    """Map a ``MultiDiscrete([3, n_splits])`` action to a :class:`Decision`."""
    kind, split = int(action[0]), int(action[1])
    if kind == 0:
        return KEEP
    if kind not in (1, 2):
        raise ValueError(f"action kind {kind}; allowed: 0 keep, 1 infer, 2 infer+preempt")
    return Decision("infer", split=split, preempt=kind == 2)


class RapidEnv(gym.Env[np.ndarray, np.ndarray]):
    """Partitioned VLA control of one Meta-World task, seen from the decider's seat."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        config: EnvConfig | None = None,
        reward: RewardConfig | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        self.config = replace(config or EnvConfig(), **overrides)
        self.reward_config = reward or RewardConfig()
        self.render_mode = render_mode
        self.controller = build_controller(self.config)
        n = self.controller.n_splits
        self.action_space = spaces.MultiDiscrete([3, n])
        self.observation_space = spaces.Box(-np.inf, np.inf, (len(FEATURE_NAMES),), np.float32)
        self._was_success = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``seed`` fixes layout, noise and link draws (separate streams)."""
        super().reset(seed=seed)
        ep_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        s = episode_streams(ep_seed)
        obs = self.controller.reset(s.task_seed, s.noise, s.link, s.policy)
        self._was_success = False
        return feature_vector(obs), {"seed": ep_seed}

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply the decider's action for one control tick."""
        ctrl = self.controller
        n_lat, n_bytes = len(ctrl.latencies_s), ctrl.bytes_total
        out = ctrl.step(action_to_decision(np.asarray(action)))
        rc = self.reward_config
        new_success = out.success and not self._was_success
        self._was_success = out.success
        latency = float(sum(ctrl.latencies_s[n_lat:]))
        reward = (
            rc.success * float(new_success)
            - rc.latency * latency
            - rc.jerk * _tick_jerk_sq(ctrl.task.ee_trace, ctrl.task.n_mw)
            - rc.megabytes * (ctrl.bytes_total - n_bytes) / 1e6
            - rc.stall * float(out.info["stalled"])
        )
        info = dict(out.info)
        info["success"] = out.success
        info["delivered_latency_s"] = latency
        if out.terminated or out.truncated:
            info["episode"] = ctrl.episode_metrics()
            info["link_timeline"] = ctrl.link_timeline  # every transfer, for plots
        return feature_vector(out.obs), float(reward), out.terminated, out.truncated, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The noisy camera frame the policy would see now."""
        return self.controller.frame() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        """Release the renderer."""
        self.controller.task.close()


COMPACT_ACTIONS: tuple[str, ...] = ("keep", "infer", "infer-preempt", "infer-edge", "infer-cloud")
"""The compact decider action space of :class:`CompactActions`, by index.

``infer`` and ``infer-preempt`` split where the cost planner puts the latency optimum for the
current link estimate (``Decision.split=None``); ``infer-edge`` and ``infer-cloud`` force the two
ends. Five choices instead of ``3 x n_splits`` (114 for OpenVLA-7B) keep a learned decider's
problem the one that matters, *when* to ask, while the planner answers *where*.
"""

_CHUNK_FRACTION = FEATURE_NAMES.index("chunk_fraction")
_IN_FLIGHT = FEATURE_NAMES.index("in_flight")


def compact_decision(index: int, n_splits: int) -> Decision:
    """Map an index of :data:`COMPACT_ACTIONS` to a :class:`Decision`."""
    if not 0 <= index < len(COMPACT_ACTIONS):
        raise ValueError(
            f"compact action {index}; allowed: "
            + ", ".join(f"{i} {a}" for i, a in enumerate(COMPACT_ACTIONS))
        )
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    name = COMPACT_ACTIONS[index]
    if name == "keep":
        return KEEP
    if name == "infer":
        return Decision("infer")
    if name == "infer-preempt":
        return Decision("infer", preempt=True)
    return Decision("infer", split=n_splits - 1 if name == "infer-edge" else 0)


def starved(features: np.ndarray) -> bool:
    """Whether the chunk buffer is empty with nothing in flight (the robot would hold forever).

    Read from the observation vector itself, so the training wrapper and a deployed decider apply
    the same rule to the same numbers.
    """
    return bool(features[_CHUNK_FRACTION] <= 0.0 and features[_IN_FLIGHT] <= 0.0)


class CompactActions(
    gym.Wrapper[np.ndarray, np.int64, np.ndarray, np.ndarray], gym.utils.RecordConstructorArgs
):
    """A ``Discrete(5)`` action space over :data:`COMPACT_ACTIONS`, with an optional safety refill.

    With ``safety_refill`` a ``keep`` while :func:`starved` becomes an ``infer`` at the planner's
    split (``info["safety_refill"]`` says when). Without it, an untrained policy that mostly keeps
    never gets a chunk, and learning first has to discover that the robot needs one at all.

    Example:
        >>> env = CompactActions(RapidEnv(task="reach"))  # doctest: +SKIP
        >>> env.action_space
        Discrete(5)
    """

    def __init__(self, env: gym.Env[np.ndarray, np.ndarray], safety_refill: bool = True) -> None:
        if not isinstance(env.unwrapped, RapidEnv):
            raise ValueError(
                f"CompactActions wraps a RapidEnv; got {type(env.unwrapped).__name__}"
            )
        gym.utils.RecordConstructorArgs.__init__(self, safety_refill=safety_refill)
        # gymnasium annotates Wrapper.__init__'s env with the *outer* types; ours differ.
        gym.Wrapper.__init__(self, env)  # type: ignore[misc]
        self.safety_refill = safety_refill
        self.action_space = spaces.Discrete(len(COMPACT_ACTIONS))
        self._obs: np.ndarray | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the RAPID env and remember the observation for the safety rule."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        return obs, info

    def step(
        self, action: np.int64
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Translate the compact action (and the safety rule) into the RAPID env's action."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        controller = self.unwrapped.controller  # type: ignore[attr-defined]
        decision = compact_decision(int(action), controller.n_splits)
        forced = self.safety_refill and decision.kind == "keep" and starved(self._obs)
        if forced:
            decision = Decision("infer")
        if decision.kind == "keep":
            inner = np.array([0, 0], dtype=np.int64)
        else:
            # None means the planner's split *now*, exactly what the controller would resolve.
            split = controller.default_split() if decision.split is None else decision.split
            inner = np.array([2 if decision.preempt else 1, split], dtype=np.int64)
        obs, reward, terminated, truncated, info = self.env.step(inner)  # type: ignore[arg-type]
        self._obs = obs
        info["safety_refill"] = forced
        return obs, reward, terminated, truncated, info


def _tick_jerk_sq(trace: list[np.ndarray], n_new: int) -> float:
    """Mean squared jerk of the end-effector over the last tick's samples."""
    if len(trace) < 4:
        return 0.0
    p = np.asarray(trace[-(n_new + 3) :])
    j = np.diff(p, n=3, axis=0) * MW_STEP_HZ**3
    return float(np.mean(np.sum(j * j, axis=1)))
