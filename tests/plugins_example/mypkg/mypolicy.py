"""A goal-seeking policy and a refill decider, registered by importing this module.

``go-to-goal`` steers the end effector straight at the task's goal with a proportional gain, the
simplest controller that solves ``reach``. It reads the goal through the privileged simulator
handle (``PolicyInput.sim``), as the scripted expert does: it is a stand-in for a model, not a
learned policy. ``refill-at`` asks for a new chunk when ``threshold`` cached actions are left.

Use it with ``rapid-eval --import mypkg.mypolicy --policy go-to-goal --agents refill-at`` (the
folder that holds ``mypkg`` on ``PYTHONPATH``), or through the entry points of a package's
``pyproject.toml`` (:func:`register`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rapid_env.decision import KEEP, DeciderBase, DeciderObservation, Decision
from rapid_env.plugins import POLICIES, register_decider, register_policy
from rapid_env.policy import PolicyInput


class GoToGoal:
    """Moves the hand toward the goal: action = clip(gain * (goal - hand)), the same for a chunk.

    Args:
        chunk_size: actions per chunk.
        gain: action units per metre of distance (Meta-World's actions move the hand ~1 cm per
            unit per step; clipped to [-1, 1]).
    """

    needs_image = False

    def __init__(self, chunk_size: int = 8, gain: float = 10.0) -> None:
        self.name = "go-to-goal"
        self.chunk_size = chunk_size
        self.gain = gain

    def reset(self, rng: np.random.Generator) -> None:
        """Deterministic: nothing to draw."""

    def act(self, inp: PolicyInput) -> np.ndarray:
        """One chunk: the clipped proportional step toward the goal, repeated."""
        if inp.sim is None:
            raise ValueError("go-to-goal needs the simulator handle (PolicyInput.sim)")
        goal = np.asarray(inp.sim.mw._target_pos, dtype=np.float64)
        hand = np.asarray(inp.proprio[:3], dtype=np.float64)
        step = np.clip(self.gain * (goal - hand), -1.0, 1.0)
        action = np.append(step, -1.0).astype(np.float32)  # gripper open
        return np.tile(action, (self.chunk_size, 1))


@dataclass(frozen=True)
class RefillAtConfig:
    """``refill-at(threshold=N)``: request when at most ``threshold`` actions are cached."""

    threshold: int = 2

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise ValueError(f"threshold={self.threshold}; allowed: >= 0")


class RefillAt(DeciderBase):
    """Infers when the cache runs low and nothing is in flight; otherwise keeps executing."""

    def __init__(self, config: RefillAtConfig, name: str = "refill-at") -> None:
        self.config = config
        self.name = name

    def decide(self, obs: DeciderObservation) -> Decision:
        """Refill at the threshold (at most one request in flight)."""
        if obs.in_flight == 0 and obs.chunk_remaining <= self.config.threshold:
            return Decision("infer")
        return KEEP


def _policy(task: str, chunk_size: int = 8, **_: object) -> GoToGoal:
    return GoToGoal(chunk_size)


def register() -> None:
    """Register the names (idempotent: an entry point and ``--import`` may both run it)."""
    if "go-to-goal" in POLICIES.names():
        return
    register_policy("go-to-goal", _policy)
    register_decider("refill-at", RefillAt, config=RefillAtConfig)


register()
