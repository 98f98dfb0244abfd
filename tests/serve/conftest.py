"""A shipped ``chunk-regress`` model loaded once, and in-thread servers on free local ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.compose import build_policy
from rapid_env.config import EnvConfig
from rapid_env.policy import PolicyInput
from rapid_env.serve.client import PolicyClient
from rapid_env.serve.config import ServeConfig
from rapid_env.serve.lifecycle import RunningServer, start
from rapid_env.serve.model import CloudModel

TOKEN = "test-token-0123456789abcdef0123"


def make_input(seed: int, instruction: str = "push the puck to the goal") -> PolicyInput:
    rng = np.random.default_rng(seed)
    return PolicyInput(
        image=rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
        proprio=np.array([0.0, 0.6, 0.15, 0.5], dtype=np.float32) + rng.normal(0, 0.02, 4),
        instruction=instruction,
    )


@pytest.fixture(scope="session")
def policy() -> VLAPolicy:
    built = build_policy(EnvConfig(policy="chunk-regress"))
    assert isinstance(built, VLAPolicy)
    return built


@pytest.fixture(scope="session")
def cloud(policy: VLAPolicy) -> CloudModel:
    return CloudModel.from_policy("chunk-regress", policy)


@pytest.fixture
def make_server(cloud: CloudModel) -> Iterator[Callable[..., RunningServer]]:
    """Start a server on 127.0.0.1:<free port> with overrides; every one is stopped after."""
    started: list[RunningServer] = []

    def make(model: CloudModel | None = None, **overrides: Any) -> RunningServer:
        cfg = ServeConfig(token=TOKEN, host="127.0.0.1", port=0, max_seconds=120, grace_s=0.5)
        for key, value in overrides.items():
            assert hasattr(cfg, key), key
            setattr(cfg, key, value)
        running = start(cfg, model or cloud)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture(scope="module")
def shared_server(cloud: CloudModel) -> Iterator[RunningServer]:
    running = start(
        ServeConfig(token=TOKEN, host="127.0.0.1", port=0, max_seconds=300, grace_s=0.5), cloud
    )
    yield running
    running.stop()


@pytest.fixture
def client(shared_server: RunningServer) -> Iterator[PolicyClient]:
    with PolicyClient(shared_server.address, TOKEN, timeout_s=10.0) as c:
        c.wait_ready()
        yield c
