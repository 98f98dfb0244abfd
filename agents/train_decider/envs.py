"""The environments PPO trains in: one monitored ``RapidEnv`` per task, seeded from 0-999."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rapid_env.agents.train_decider.settings import TrainSeeds
from rapid_env.build import assemble_controller
from rapid_env.config import EnvConfig
from rapid_env.controller import PartitionedController
from rapid_env.wrapper import CompactActions, RapidEnv, RewardConfig, SafetyRefill

if TYPE_CHECKING:
    import gymnasium as gym


def build_controller(cfg: EnvConfig) -> PartitionedController:
    """The control loop ``cfg`` names, with the policy from the agents' own registry."""
    from rapid_env.agents.registry import POLICIES

    policy = POLICIES.create(cfg.policy, cfg.task, chunk_size=cfg.chunk_size)
    return assemble_controller(cfg, policy)


def make_env(
    cfg: EnvConfig, reward: RewardConfig, seeds: TrainSeeds, safety_refill: bool
) -> gym.Env[np.ndarray, np.int64]:
    """One monitored training environment whose resets draw seeds from ``seeds``."""
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor

    class _SeededReset(gym.Wrapper[np.ndarray, np.int64, np.ndarray, np.int64]):
        """SB3 auto-resets without a seed; RapidEnv would then draw one outside 0-999."""

        def reset(
            self, *, seed: int | None = None, options: dict[str, Any] | None = None
        ) -> tuple[np.ndarray, dict[str, Any]]:
            return self.env.reset(seed=seeds() if seed is None else seed, options=options)

    compact = CompactActions(RapidEnv(build_controller(cfg), cfg, reward))
    env = SafetyRefill(compact) if safety_refill else compact
    return Monitor(_SeededReset(env), info_keywords=("success",))
