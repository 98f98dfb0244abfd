"""The served models, each loaded once, and in-thread servers on free local ports.

Every server test runs twice: on the shipped ``chunk-regress`` and on a random-weight
``chunk-regress`` that reads two cameras (``main`` and Meta-World's ``gripperPOV``, a 4x4
feature grid each), so the multi-camera path is covered whichever checkpoint ships.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rapid_env.agents.vla.checkpoint import save_checkpoint
from rapid_env.agents.vla.families import build_model, default_config
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.tokenizer import build_tokenizer
from rapid_env.compose import build_policy
from rapid_env.config import EnvConfig
from rapid_env.policy import PolicyInput
from rapid_env.serve.client import PolicyClient
from rapid_env.serve.config import ServeConfig
from rapid_env.serve.lifecycle import RunningServer, start
from rapid_env.serve.model import CloudModel
from tests.agents.vla.test_models import TINY

TOKEN = "test-token-0123456789abcdef0123"

SERVE = [sys.executable, "-m", "rapid_env.cli.serve"]
"""``rapid-serve`` as a process of this interpreter."""

TWO_CAMERAS = ("main", "gripperPOV")


def save_two_camera_checkpoint(path: Path) -> Path:
    """A random-weight two-camera ``chunk-regress`` checkpoint (the shipped one's layout, tiny)."""
    tok = build_tokenizer()
    torch.manual_seed(0)
    cfg = default_config("chunk-regress", **{
        **TINY, "vocab_size": len(tok), "image_size": 64, "chunk_size": 8,
        "cameras": TWO_CAMERAS, "vision_layers": 3, "aux_dim": 9,
    })
    return save_checkpoint(path, build_model(cfg), tok, {})


def make_input(
    seed: int, instruction: str = "push the puck to the goal", cameras: Sequence[str] = ()
) -> PolicyInput:
    """A random observation with a frame for the main camera and for each of ``cameras``."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    proprio = np.array([0.0, 0.6, 0.15, 0.5], dtype=np.float32) + rng.normal(0, 0.02, 4)
    images = {cam: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for cam in cameras}
    return PolicyInput(image=image, proprio=proprio, instruction=instruction, images=images)


@pytest.fixture(scope="session")
def two_camera_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_two_camera_checkpoint(tmp_path_factory.mktemp("two-camera"))


@pytest.fixture(scope="session", params=["chunk-regress", "two-camera"])
def policy_spec(request: pytest.FixtureRequest) -> str:
    """The ``--policy`` the server runs: the shipped model, or the two-camera checkpoint."""
    if request.param == "two-camera":
        return f"ckpt:{request.getfixturevalue('two_camera_dir')}"
    return str(request.param)


@pytest.fixture(scope="session")
def policy(policy_spec: str) -> VLAPolicy:
    built = build_policy(EnvConfig(policy=policy_spec))
    assert isinstance(built, VLAPolicy)
    return built


@pytest.fixture(scope="session")
def cloud(policy_spec: str, policy: VLAPolicy) -> CloudModel:
    return CloudModel.from_policy(policy_spec, policy)


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


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    """A token file as ``rapid-serve --token-file`` wants it (owner-only)."""
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


@dataclass
class ServingProcess:
    """A ``rapid-serve`` process that has printed its port, and every line it printed so far."""

    proc: subprocess.Popen[str]
    port: int
    serving: str
    """Its ``rapid-serve: serving ...`` start-up line ("" when it printed none before its port)."""
    lines: queue.Queue[str]
    reader: threading.Thread


@contextmanager
def serving_process(*args: str, wait_s: float = 60) -> Iterator[ServingProcess]:
    """``rapid-serve ARGS`` as a process, once it printed its port; killed on exit if still up."""
    proc = subprocess.Popen([*SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        port, serving = None, ""
        deadline = time.monotonic() + wait_s
        while port is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                continue
            if line.startswith("rapid-serve: port "):
                port = int(line.split()[-1])
            if line.startswith("rapid-serve: serving "):
                serving = line
        assert port, "the server never printed its port"
        yield ServingProcess(proc, port, serving, lines, reader)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
