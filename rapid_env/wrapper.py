"""The RAPID env: a Gymnasium environment whose agent *is* the partition decider.

Action: ``MultiDiscrete([3, n_splits])``: the first entry is 0 keep executing, 1 infer, 2 infer and
preempt the cached chunk; the second is the split point (blocks before it run on the edge).
Observation: the kinematic and buffer features of :data:`rapid_env.features.FEATURE_NAMES`.
Reward (per tick, weights in :class:`RewardConfig`), read only from the tick's
:class:`~rapid_env.recorder.TickDelta`::

    r = success * [task succeeded this tick]
        - latency * (seconds of latency of the chunks delivered this tick)
        - jerk * (mean squared end-effector jerk over the tick, (m/s^3)^2)
        - megabytes * (MB sent on the link this tick)
        - stall * [robot held this tick because the chunk had run out]

Info carries per-tick timing and events (requests, arrivals, preemptions, faults). The final
step's info carries the episode's record under ``info["rapid"]`` (:data:`RECORD_INFO_KEY`), never
under ``info["episode"]``: Gymnasium's ``RecordEpisodeStatistics`` and stable-baselines3's
``Monitor`` and ``VecMonitor`` own that key (return ``r``, length ``l``, time ``t``), assert it is
free, and SB3's PPO reads ``r`` from it. With a
``decider`` (a :class:`~rapid_env.decision.Decider`), ``info["decider_action"]`` is the action that
decider would take on the returned observation: feed it back and the episode is the one
``rapid-eval`` records for that decider; use it as a teacher, a baseline or a residual.

The env is built around a ready controller; :func:`rapid_env.compose.make_rapid_env` (what
``gym.make("rapid_env/Rapid-v0", ...)`` calls) builds one from names.

Example:
    >>> import gymnasium as gym, rapid_env
    >>> env = gym.make("rapid_env/Rapid-v0", task="reach", link="constant:20:40")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rapid_env.config import EnvConfig
from rapid_env.controller import PartitionedController, TickOutcome
from rapid_env.decision import KEEP, Decider, Decision
from rapid_env.features import FEATURE_NAMES, feature_vector
from rapid_env.seeding import episode_streams, layout_seed

RECORD_INFO_KEY = "rapid"
"""The ``info`` key of the episode's record (a dict of the record's metrics) on the final step.

Not ``"episode"``: that key belongs to Gymnasium's and stable-baselines3's episode statistics.
"""


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the RAPID env's reward terms (see the module docstring)."""

    success: float = 10.0
    latency: float = 1.0
    jerk: float = 1e-5
    megabytes: float = 0.01
    stall: float = 0.05

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value
            ):
                raise ValueError(f"reward weight {f.name}={value!r}; allowed: a finite number")


def as_reward_config(reward: RewardConfig | Mapping[str, Any] | None) -> RewardConfig:
    """``reward=`` of ``gym.make``: a :class:`RewardConfig`, a mapping of its fields, or None.

    Raises:
        ValueError: another type, an unknown weight (the allowed ones named) or a weight that is
            not a finite number.
    """
    if reward is None:
        return RewardConfig()
    if isinstance(reward, RewardConfig):
        return reward
    allowed = [f.name for f in fields(RewardConfig)]
    if not isinstance(reward, Mapping):
        raise ValueError(f"reward={reward!r}; allowed: a RewardConfig or a dict of "
                         f"{', '.join(allowed)}")
    unknown = sorted(set(map(str, reward)) - set(allowed))
    if unknown:
        raise ValueError(f"unknown reward weight(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(allowed)}")
    return RewardConfig(**reward)


def _shown(action: object) -> str:
    """``repr`` of a bad action for an error message, cut to a readable length."""
    text = " ".join(repr(action).split())
    return text if len(text) <= 60 else text[:57] + "..."


def action_to_decision(action: Any, n_splits: int | None = None) -> Decision:
    """Map a ``MultiDiscrete([3, n_splits])`` action to a :class:`Decision`.

    Anything not in that space is a ValueError naming the space and what was expected: another
    shape or a non-integer type (``step(1)``, ``[1.5, 0]``), a kind outside 0-2, and, when
    ``n_splits`` is given, a split outside ``0..n_splits - 1`` (never silently clipped).
    """
    try:
        arr: np.ndarray | None = np.asarray(action)
    except (TypeError, ValueError):  # ragged nesting, objects numpy cannot hold
        arr = None
    hi = "n_splits - 1" if n_splits is None else str(n_splits - 1)
    space = f"MultiDiscrete([3 {'n_splits' if n_splits is None else n_splits}])"

    def bad(why: str) -> ValueError:
        return ValueError(
            f"action {_shown(action)} is not in {space}; {why}expected an integer array of "
            f"shape (2,): [kind 0-2 (0 keep, 1 infer, 2 infer+preempt), split 0-{hi}]"
        )

    if arr is None or arr.shape != (2,) or not np.issubdtype(arr.dtype, np.integer):
        raise bad("")
    kind, split = int(arr[0]), int(arr[1])
    if kind not in (0, 1, 2):
        raise bad(f"kind {kind} is out of range; ")
    if split < 0 or (n_splits is not None and split >= n_splits):
        raise bad(f"split {split} is out of range; ")
    if kind == 0:
        return KEEP
    return Decision("infer", split=split, preempt=kind == 2)


class RapidEnv(gym.Env[np.ndarray, np.ndarray]):
    """Partitioned VLA control of one Meta-World task, seen from the decider's seat.

    Args:
        controller: the control loop to drive (built by :mod:`rapid_env.compose` or
            :func:`rapid_env.build.assemble_controller`).
        config: the configuration the controller was built from (kept for ``env.spec`` readers
            and records; not re-read).
        reward: reward weights.
        render_mode: ``rgb_array`` renders the policy's noisy camera frame.
        decider: a decider whose action on each observation goes into ``info["decider_action"]``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        controller: PartitionedController,
        config: EnvConfig | None = None,
        reward: RewardConfig | Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        decider: Decider | None = None,
    ) -> None:
        self.controller = controller
        self.config = config or EnvConfig()
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; allowed: None, 'rgb_array'")
        self.reward_config = as_reward_config(reward)
        self.render_mode = render_mode
        self.decider = decider
        # a video of the env plays at the control rate, whatever --control-hz is
        self.metadata = {**self.metadata, "render_fps": round(1.0 / controller.task.tick_dt)}
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
        task = self.controller.task
        obs = self.controller.reset(layout_seed(task, ep_seed, s), s.noise, s.link, s.policy)
        self._was_success = False
        info: dict[str, Any] = {"seed": ep_seed}
        if self.decider is not None:
            self.decider.reset(s.decider)
            self.decider.bind(self.controller.context())
            info["decider_action"] = self.action_for(self.decider.decide(obs))
        return feature_vector(obs), info

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply the decider's action for one control tick.

        Raises:
            ValueError: ``action`` is not in :attr:`action_space` (wrong shape or type, or an
                entry out of range); the message names the space. The tick does not run.
        """
        decision = action_to_decision(action, self.controller.n_splits)
        out = self.controller.step(decision)
        new_success = out.success and not self._was_success
        self._was_success = out.success
        info = dict(out.info)
        info["success"] = out.success
        info["delivered_latency_s"] = out.delta.delivered_latency_s
        if out.terminated or out.truncated:
            info[RECORD_INFO_KEY] = self.controller.episode_metrics()
            info["link_timeline"] = self.controller.link_timeline  # every transfer, for plots
        elif self.decider is not None:
            info["decider_action"] = self.action_for(self.decider.decide(out.obs))
        reward = tick_reward(out, new_success, self.reward_config)
        return feature_vector(out.obs), reward, out.terminated, out.truncated, info

    def action_for(self, decision: Decision) -> np.ndarray:
        """The action that applies ``decision`` now.

        A decision without a split (``split=None``) gets the planner's split for the current link
        estimate (or the fixed partition), exactly what the controller would resolve it to on this
        tick. The action space has no early exit (``Decision.escalate=False``): an escalating
        decider's calm requests map to plain requests at the same split, so its records come from
        ``rapid-eval`` / ``run_episode``, not from feeding ``decider_action`` back.
        """
        if decision.kind == "keep":
            return np.array([0, 0], dtype=np.int64)
        split = self.controller.default_split() if decision.split is None else decision.split
        return np.array([2 if decision.preempt else 1, split], dtype=np.int64)

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The noisy camera frame the policy would see now (rendering never changes the episode)."""
        return self.controller.camera.peek() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        """Release the renderer."""
        self.controller.task.close()


def tick_reward(out: TickOutcome, new_success: bool, rc: RewardConfig) -> float:
    """The reward of one tick, from the tick's deltas only (see the module docstring)."""
    d = out.delta
    return float(
        rc.success * float(new_success)
        - rc.latency * d.delivered_latency_s
        - rc.jerk * d.jerk_sq
        - rc.megabytes * d.bytes_sent / 1e6
        - rc.stall * float(d.stalled)
    )


COMPACT_ACTIONS: tuple[str, ...] = ("keep", "infer", "infer-preempt", "infer-edge", "infer-cloud")
"""The compact decider action space of :class:`CompactActions`, by index.

``infer`` and ``infer-preempt`` split where the cost planner puts the latency optimum for the
current link estimate (``Decision.split=None``); ``infer-edge`` and ``infer-cloud`` force the two
ends. Five choices instead of ``3 x n_splits`` (114 for OpenVLA-7B) keep a learned decider's
problem the one that matters, *when* to ask, while the planner answers *where*.
"""

_COMPACT_SPACE = f"Discrete({len(COMPACT_ACTIONS)})"
_COMPACT = ", ".join(f"{i} {a}" for i, a in enumerate(COMPACT_ACTIONS))
_CHUNK_FRACTION = FEATURE_NAMES.index("chunk_fraction")
_IN_FLIGHT = FEATURE_NAMES.index("in_flight")


def compact_index(action: Any) -> int:
    """The index a :data:`COMPACT_ACTIONS` action holds, or ValueError naming the space.

    Accepted: a Python or numpy integer, or an integer array holding one value (what
    stable-baselines3 hands a ``Discrete`` env). A float (even ``1.0``), a bool, or anything
    else is refused rather than truncated; so is an index outside 0-4.
    """
    arr = np.asarray(action) if isinstance(action, (np.ndarray, np.generic)) else None
    if isinstance(action, int) and not isinstance(action, bool):
        index = int(action)
    elif arr is not None and arr.size == 1 and np.issubdtype(arr.dtype, np.integer):
        index = int(arr.reshape(()))
    else:
        raise ValueError(
            f"compact action {_shown(action)} is not in {_COMPACT_SPACE}; expected an integer "
            f"0-{len(COMPACT_ACTIONS) - 1}: {_COMPACT}"
        )
    if not 0 <= index < len(COMPACT_ACTIONS):
        raise ValueError(f"compact action {index} is not in {_COMPACT_SPACE}; allowed: {_COMPACT}")
    return index


def compact_decision(index: int, n_splits: int) -> Decision:
    """Map an index of :data:`COMPACT_ACTIONS` to a :class:`Decision`."""
    if not 0 <= index < len(COMPACT_ACTIONS):
        raise ValueError(f"compact action {index} is not in {_COMPACT_SPACE}; allowed: {_COMPACT}")
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
    gym.ActionWrapper[np.ndarray, np.int64, np.ndarray], gym.utils.RecordConstructorArgs
):
    """A ``Discrete(5)`` action space over :data:`COMPACT_ACTIONS`; one job: the action mapping.

    ``infer`` and ``infer-preempt`` ask the RAPID env for the planner's split now
    (:meth:`RapidEnv.action_for`), so the rule for "the planner's split" lives in one place.
    Wrap the result in :class:`SafetyRefill` for a learned decider's training.

    Example:
        >>> env = SafetyRefill(CompactActions(make_rapid_env(task="reach")))  # doctest: +SKIP
        >>> env.action_space
        Discrete(5)
    """

    def __init__(self, env: gym.Env[np.ndarray, np.ndarray]) -> None:
        if not isinstance(env.unwrapped, RapidEnv):
            raise ValueError(
                f"CompactActions wraps a RapidEnv; got {type(env.unwrapped).__name__}"
            )
        gym.utils.RecordConstructorArgs.__init__(self)
        # gymnasium annotates ActionWrapper.__init__'s env with the *outer* types; ours differ.
        gym.ActionWrapper.__init__(self, env)  # type: ignore[arg-type]
        self.action_space = spaces.Discrete(len(COMPACT_ACTIONS))
        self._n_splits = int(env.unwrapped.action_space.nvec[1])  # type: ignore[attr-defined]

    def action(self, action: np.int64) -> np.ndarray:
        """The RAPID env's action for compact action ``action``.

        Raises:
            ValueError: ``action`` is not in ``Discrete(5)`` (:func:`compact_index`).
        """
        decision = compact_decision(compact_index(action), self._n_splits)
        action_for = self.env.get_wrapper_attr("action_for")
        return np.asarray(action_for(decision), dtype=np.int64)


class SafetyRefill(
    gym.Wrapper[np.ndarray, np.int64, np.ndarray, np.int64], gym.utils.RecordConstructorArgs
):
    """Turns a ``keep`` into ``infer`` when the robot is :func:`starved`; one job: the refill.

    Without it, an untrained policy that mostly keeps never gets a chunk, and learning first has
    to discover that the robot needs one at all. ``info["safety_refill"]`` says when it acted.
    Wraps an env whose actions are :data:`COMPACT_ACTIONS` indices (:class:`CompactActions`).
    """

    _KEEP = COMPACT_ACTIONS.index("keep")
    _INFER = COMPACT_ACTIONS.index("infer")

    def __init__(self, env: gym.Env[np.ndarray, np.int64]) -> None:
        if not isinstance(env.action_space, spaces.Discrete) or env.action_space.n != len(
            COMPACT_ACTIONS
        ):
            raise ValueError(
                f"SafetyRefill wraps a Discrete({len(COMPACT_ACTIONS)}) CompactActions env; "
                f"got action space {env.action_space}"
            )
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self._obs: np.ndarray | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset and remember the observation the rule reads."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        return obs, info

    def step(
        self, action: np.int64
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply the rule, then the action."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        forced = compact_index(action) == self._KEEP and starved(self._obs)
        if forced:
            action = np.int64(self._INFER)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._obs = obs
        info["safety_refill"] = forced
        return obs, reward, terminated, truncated, info
