"""What a training run is made of: its seed ranges, default tasks, PPO settings, eval metrics.

Only numpy here, so ``rapid-train-decider --help`` can show these defaults without loading torch,
stable-baselines3 or MuJoCo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN_SEEDS = 1000  # training and tuning seeds are 0 .. TRAIN_SEEDS - 1; evaluation uses the rest
DEFAULT_TASKS = ("reach", "drawer-close", "drawer-open", "door-open", "window-close")
EVAL_METRICS = (
    "success",
    "latency_ms_mean",
    "inferences",
    "preemptions",
    "stall_steps",
    "rms_jerk",
    "megabytes",
    "time_to_success_s",
    "decision_cpu_us_mean",
)


@dataclass(frozen=True)
class PPOSettings:
    """PPO hyper-parameters (SB3 names); small on purpose: two shared CPU cores.

    ``n_steps`` is per environment: with one environment per task, a rollout holds
    ``n_steps * len(tasks)`` ticks, a couple of full episodes per task.
    """

    n_steps: int = 256
    batch_size: int = 256
    n_epochs: int = 5
    learning_rate: float = 3e-4
    gamma: float = 0.98
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = (64, 64)

    def __post_init__(self) -> None:
        if self.n_steps < 2 or self.batch_size < 2 or self.n_epochs < 1:
            raise ValueError(f"need n_steps, batch_size >= 2 and n_epochs >= 1, got {self}")
        if not self.net_arch or min(self.net_arch) < 1:
            raise ValueError(f"net_arch must be non-empty positive widths, got {self.net_arch}")


class TrainSeeds:
    """Hands out training episode seeds from 0-999, never from the evaluation range."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self) -> int:
        """The next training seed."""
        return int(self.rng.integers(0, TRAIN_SEEDS))
