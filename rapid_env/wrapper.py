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
        return feature_vector(out.obs), float(reward), out.terminated, out.truncated, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The noisy camera frame the policy would see now."""
        return self.controller.frame() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        """Release the renderer."""
        self.controller.task.close()


def _tick_jerk_sq(trace: list[np.ndarray], n_new: int) -> float:
    """Mean squared jerk of the end-effector over the last tick's samples."""
    if len(trace) < 4:
        return 0.0
    p = np.asarray(trace[-(n_new + 3) :])
    j = np.diff(p, n=3, axis=0) * MW_STEP_HZ**3
    return float(np.mean(np.sum(j * j, axis=1)))
