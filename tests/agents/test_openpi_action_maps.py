"""``openpi:ws://host:port?actions=...``: a served policy's native actions mapped to the suite's.

Real servers (``rapid_policy_server`` on 127.0.0.1, free ports) serving small numpy policies that
answer in another suite's action space; the last test runs a real Meta-World episode through one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rapid_policy_server import PolicyServer

from rapid_env.agents.openpi_policy import OpenPIPolicy, query_params, server_url
from rapid_env.agents.registry import POLICIES
from rapid_env.compose import build_controller, build_decider
from rapid_env.config import EnvConfig
from rapid_env.episode import run_episode
from rapid_env.policy import PolicyActionFault, PolicyInput, run_policy
from rapid_env.record import infrastructure_fault

FRAME = np.zeros((4, 4, 3), np.uint8)
INP = PolicyInput(FRAME, np.zeros(4, np.float32), "reach the goal")

LIBERO_CHUNK = np.array([[0.04 * (k + 1), -0.02 * (k + 1), 0.5, 0.3, -0.2, 0.1, 1.0 - 2 * (k % 2)]
                         for k in range(8)], np.float32)
"""Eight LIBERO-style actions: xyz, axis-angle, gripper (+1 close, -1 open), all distinct."""
MAPPED = np.concatenate([LIBERO_CHUNK[:, :3] * 1.25, LIBERO_CHUNK[:, 6:]], axis=1)
"""What ``libero7-to-metaworld`` makes of them: xyz times 0.05 m / (4 x 0.01 m), no rotation."""


class Fixed:
    """A policy object that answers every observation with ``make()``; counts its calls."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make
        self.calls = 0

    def predict(self, obs: dict[str, Any]) -> Any:
        self.calls += 1
        return self.make()


@contextmanager
def served(make: Callable[[], Any]) -> Iterator[PolicyServer]:
    with PolicyServer(Fixed(make), port=0) as server:
        yield server


def test_the_query_is_the_clients_and_names_the_allowed_keys() -> None:
    name = "openpi:ws://127.0.0.1:8000?actions=a+b.json"
    assert server_url(name) == "ws://127.0.0.1:8000"
    assert query_params(name) == {"actions": "a+b.json"}  # taken verbatim: a path reads as is
    assert query_params("openpi:ws://127.0.0.1:8000") == {}
    for bad, match in [("?action=x", r"unknown query parameter 'action'; allowed: actions"),
                       ("?actions=", "actions= must be given once with a value"),
                       ("?actions=a&actions=b", "must be given once")]:
        with pytest.raises(ValueError, match=match) as err:
            query_params(f"openpi:ws://127.0.0.1:8000{bad}")
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(("query", "task", "match"), [
    ("nope", "reach", r"allowed: a preset for metaworld tasks \(libero7-to-metaworld\)"),
    ("libero7-to-metaworld", "libero_object_0", "maps to metaworld actions, the task is a libero"),
])
def test_a_bad_map_is_refused_before_connecting(query: str, task: str, match: str) -> None:
    # port 9 (discard): nothing is connected to, the map is checked first
    with pytest.raises(ValueError, match=match) as err:
        POLICIES.create(f"openpi:ws://127.0.0.1:9?actions={query}", task, chunk_size=8)
    message = str(err.value)
    assert "\n" not in message and message.startswith("policy 'openpi:ws://127.0.0.1:9?actions=")


def test_7d_replies_are_mapped_padded_and_timed() -> None:
    with served(lambda: LIBERO_CHUNK[:3]) as server:  # a 3-row chunk: padded to chunk_size
        policy = POLICIES.create(f"openpi:{server.url}?actions=libero7-to-metaworld", "reach",
                                 chunk_size=5)
        assert isinstance(policy, OpenPIPolicy) and policy.action_map is not None
        result = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert result.fault is None and result.chunk is not None
    np.testing.assert_allclose(result.chunk, MAPPED[[0, 1, 2, 2, 2]], atol=1e-6)
    assert result.measured_rtt_s is not None and result.measured_rtt_s > 0


def test_a_4d_policy_drives_libero_through_a_mean_std_json_map(tmp_path: Path) -> None:
    path = tmp_path / "mw_to_libero.json"
    path.write_text(json.dumps({"native_mean": [0.1, 0, 0, 0], "native_std": [0.5, 0.5, 0.5, 1],
                                "rot_scale": 2.0}))
    with served(lambda: np.array([[1.0, -1.0, 0.4, 0.5]] * 10, np.float32)) as server:
        policy = POLICIES.create(f"openpi:{server.url}?actions={path}", "libero_object_0",
                                 chunk_size=4)
        inp = PolicyInput(FRAME, np.zeros(8, np.float32), "pick")
        result = run_policy(policy, inp, 0, 1, action_dim=7)
        policy.close()
    assert result.fault is None and result.chunk is not None
    np.testing.assert_allclose(result.chunk, [[0.6, -0.5, 0.2, 0, 0, 0, 0.5]] * 4, atol=1e-6)


@pytest.mark.parametrize(("make", "fault"), [
    # a 4-D reply would pass the loop's width check unmapped: the map's width refuses it
    (lambda: np.zeros((8, 4), np.float32), "policy_bad_shape: (8, 4)"),
    (lambda: np.zeros((8, 6), np.float32), "policy_bad_shape: (8, 6)"),
    (lambda: np.zeros((2, 3, 7), np.float32), "policy_bad_shape: (2, 3, 7)"),
    # NaN in a rotation dim the map drops is still the policy's non-finite action
    (lambda: np.where(np.arange(7) == 4, np.nan, LIBERO_CHUNK), "policy_nonfinite_action"),
])
def test_replies_the_map_cannot_take_are_policy_faults(make: Any, fault: str) -> None:
    with served(make) as server:
        policy = POLICIES.create(f"openpi:{server.url}?actions=libero7-to-metaworld", "reach",
                                 chunk_size=8)
        result = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert result.chunk is None and result.fault == fault
    assert not infrastructure_fault(fault)
    assert result.measured_rtt_s is not None  # the call itself worked


def test_policy_action_fault_takes_only_the_loops_fault_names() -> None:
    assert PolicyActionFault("policy_nonfinite_action").fault == "policy_nonfinite_action"
    with pytest.raises(ValueError, match="allowed: 'policy_bad_shape: <shape>'"):
        PolicyActionFault("policy_error: boom")


def test_a_meta_world_episode_runs_on_a_served_libero_policy() -> None:
    """End to end: real MuJoCo reach, a 7-D LIBERO-style server, ``?actions=libero7-to-...``."""
    with served(lambda: LIBERO_CHUNK) as server:
        name = f"openpi:{server.url}?actions=libero7-to-metaworld"
        cfg = EnvConfig(task="reach", policy=name, image_size=16, max_episode_s=1.0,
                        link="constant:100:5")
        controller = build_controller(cfg)
        received: list[np.ndarray] = []
        advance = controller.task.advance

        def spy(action: np.ndarray, *args: Any, **kw: Any) -> Any:
            received.append(np.array(action, dtype=np.float32, copy=True))
            return advance(action, *args, **kw)

        controller.task.advance = spy  # type: ignore[method-assign]
        try:
            record = run_episode(controller, build_decider("cloud-only"), 1000)
        finally:
            controller.policy.close()  # type: ignore[attr-defined]
            controller.task.close()
        calls = server.policy.calls
    assert record["fault"] is None and record["invalid"] is None
    assert record["faults"] == 0 and record["inferences"] >= 1 and calls >= record["inferences"]
    assert len(received) == 20  # 1 s at 20 Hz
    moved = [a for a in received if np.any(a[:3] != 0)]  # the rest hold still (stall)
    assert moved, "no mapped action reached the env"
    for action in received:
        assert action.shape == (4,)
        if np.any(action[:3] != 0):  # a chunk row: exactly one of the mapped actions
            assert np.min(np.abs(MAPPED - action).max(axis=1)) < 1e-6, action
    np.testing.assert_allclose(moved[0], MAPPED[0], atol=1e-6)  # a chunk starts at its first row
