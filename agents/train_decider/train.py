"""PPO over one environment per training task, with progress on stderr and, optionally, W&B."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rapid_env.agents.train_decider.envs import make_env
from rapid_env.agents.train_decider.settings import PPOSettings, TrainSeeds
from rapid_env.agents.train_decider.wandb_log import wandb_writer
from rapid_env.config import EnvConfig
from rapid_env.progress import Progress
from rapid_env.wrapper import RECORD_INFO_KEY, RewardConfig

if TYPE_CHECKING:
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecNormalize


def train(
    cfg: EnvConfig,
    tasks: Sequence[str],
    reward: RewardConfig,
    ppo: PPOSettings,
    timesteps: int,
    seed: int,
    safety_refill: bool,
    log: Callable[[str], None] | None = None,
    quiet: bool = False,
    wandb_run: Any = None,
) -> tuple[PPO, VecNormalize, float]:
    """Train PPO on one environment per task; return the model, the normaliser and seconds.

    Progress over the PPO ticks (a bar on a terminal, a line every 10 s elsewhere; ``ok``:
    training episodes solved) goes to stderr and one line per rollout (steps, speed, recent
    return, success and length) to ``log``, by default printed above the bar; ``quiet`` silences
    both (unless ``log`` is given).

    With ``wandb_run`` (a W&B run, see :func:`~.wandb_log.start_wandb`) SB3's logger also writes
    every rollout's metrics (``train/*``, ``rollout/*`` with the training success rate,
    ``time/*``) to it, against ``global_step`` (PPO ticks).
    """
    import torch

    torch.set_num_threads(1)
    venv = vec_env(cfg, tasks, reward, ppo, seed, safety_refill)
    model = make_ppo(venv, ppo, seed)
    if wandb_run is not None:
        from stable_baselines3.common.logger import Logger

        model.set_logger(Logger(folder=None, output_formats=[wandb_writer(wandb_run)]))
    t0 = time.perf_counter()
    # PPO collects whole rollouts: it stops at the first multiple of one rollout >= timesteps
    rollout = ppo.n_steps * len(tasks)
    bar = Progress(total=math.ceil(timesteps / rollout) * rollout, desc="rapid-train-decider",
                   unit="tick", quiet=quiet)
    say = log if log is not None else bar.write
    with bar:
        model.learn(total_timesteps=timesteps, callback=progress_callback(bar, say, t0))
    if wandb_run is not None:  # the last update's train/* values: SB3 dumps only before updates
        model.logger.dump(model.num_timesteps)
    return model, venv, time.perf_counter() - t0


def vec_env(
    cfg: EnvConfig,
    tasks: Sequence[str],
    reward: RewardConfig,
    ppo: PPOSettings,
    seed: int,
    safety_refill: bool,
) -> VecNormalize:
    """One environment per task, each with its own seed stream, under a normaliser."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    children = np.random.SeedSequence(seed).spawn(len(tasks))

    def factory(task: str, child: np.random.SeedSequence) -> Callable[[], gym.Env[Any, Any]]:
        seeds = TrainSeeds(np.random.default_rng(child))
        return lambda: make_env(replace(cfg, task=task), reward, seeds, safety_refill)

    fns = [factory(t, c) for t, c in zip(tasks, children, strict=True)]
    return VecNormalize(
        DummyVecEnv(fns), norm_obs=True, norm_reward=True, clip_obs=10.0, gamma=ppo.gamma
    )


def make_ppo(venv: VecNormalize, ppo: PPOSettings, seed: int) -> PPO:
    """SB3's PPO with an MLP actor and critic of ``ppo.net_arch``, on the CPU."""
    from stable_baselines3 import PPO

    return PPO(
        "MlpPolicy",
        venv,
        n_steps=ppo.n_steps,
        batch_size=ppo.batch_size,
        n_epochs=ppo.n_epochs,
        learning_rate=ppo.learning_rate,
        gamma=ppo.gamma,
        gae_lambda=ppo.gae_lambda,
        ent_coef=ppo.ent_coef,
        clip_range=ppo.clip_range,
        policy_kwargs={"net_arch": {"pi": list(ppo.net_arch), "vf": list(ppo.net_arch)}},
        seed=seed,
        device="cpu",
        verbose=0,
    )


def progress_callback(bar: Progress, say: Callable[[str], None], t0: float) -> BaseCallback:
    """The bar over PPO ticks; one line per rollout: steps, speed, recent return, success."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _Progress(BaseCallback):
        episodes = 0

        def _on_step(self) -> bool:
            # the env's own record (Monitor's info["episode"] holds only return, length, success)
            infos = self.locals.get("infos", ())
            ends = [i[RECORD_INFO_KEY] for i in infos if RECORD_INFO_KEY in i]
            self.episodes += len(ends)
            if ends:
                bar.record(successes=sum(bool(e.get("success")) for e in ends))
            bar.update(self.num_timesteps - bar.done, episodes=self.episodes)
            return True

        def _on_rollout_end(self) -> None:
            eps = list(self.model.ep_info_buffer or ())
            ret = np.mean([e["r"] for e in eps]) if eps else math.nan
            succ = np.mean([float(e["success"]) for e in eps]) if eps else math.nan
            length = np.mean([e["l"] for e in eps]) if eps else math.nan
            if eps:  # SB3 logs return and length itself; training success goes with them
                self.logger.record("rollout/success_rate", float(succ))
            dt = time.perf_counter() - t0
            say(
                f"  {self.num_timesteps:>8d} steps  {self.num_timesteps / dt:6.0f} steps/s  "
                f"return {ret:7.2f}  success {succ:.2f}  length {length:5.1f}"
            )

    return _Progress()
