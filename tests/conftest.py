"""Shared fakes: a cost model with a chosen latency, and policies with known chunks."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

from rapid_env.cost.model import InferencePlan, Stage  # noqa: E402
from rapid_env.policy import PolicyInput  # noqa: E402


@dataclass
class FakeCost:
    """A cost model whose every split takes ``latency_s`` of edge compute and sends nothing."""

    latency_s: float = 0.0
    n_blocks: int = 2

    def plan(self, k: int) -> InferencePlan:
        return InferencePlan(k, (Stage("edge", self.latency_s, 0),))

    def best_split(self, bandwidth_bps: float, rtt_s: float) -> int:
        return self.n_blocks

    def edge_memory_bytes(self, k: int) -> float:
        return 0.0


class CountingPolicy:
    """Chunk i of request r is [r, i, 0, 0] scaled small: actions identify where they came from."""

    name = "counting"
    needs_image = False

    def __init__(self, chunk_size: int = 4) -> None:
        self.chunk_size = chunk_size
        self.requests = 0

    def reset(self, rng: np.random.Generator) -> None:
        self.requests = 0

    def act(self, inp: PolicyInput) -> np.ndarray:
        self.requests += 1
        chunk = np.zeros((self.chunk_size, 4), dtype=np.float32)
        chunk[:, 0] = self.requests / 100.0
        chunk[:, 1] = np.arange(self.chunk_size) / 100.0
        return chunk


class NaNPolicy(CountingPolicy):
    """Emits a chunk with a NaN in it."""

    def act(self, inp: PolicyInput) -> np.ndarray:
        chunk = super().act(inp)
        chunk[0, 0] = np.nan
        return chunk


@pytest.fixture(scope="session")
def reach_task():
    from rapid_env.tasks.metaworld_task import MetaWorldTask

    task = MetaWorldTask("reach", image_size=32)
    yield task
    task.close()
