"""``openpi:ws://host:port``: the observation sent, the reply mapped, and every fault's kind.

Real servers (``rapid_policy_server`` on 127.0.0.1, free ports) serving small numpy policies, so
each way a served policy can answer or fail is exercised over a real websocket.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from rapid_policy_server import PolicyServer

from rapid_env.agents.openpi_policy import OpenPIPolicy, server_url
from rapid_env.agents.registry import POLICIES
from rapid_env.policy import PolicyInput, run_policy
from rapid_env.record import infrastructure_fault

FRAME = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
WRIST = FRAME[::-1].copy()
INP = PolicyInput(FRAME, np.array([0.1, 0.2, 0.3, 1.0], np.float32), "reach the goal",
                  images={"gripperPOV": WRIST})


class Predict:
    """A policy whose chunk comes from ``make(obs)``; it keeps what it was sent."""

    def __init__(self, make: Callable[[dict[str, Any]], Any]) -> None:
        self.make = make
        self.seen: list[dict[str, Any]] = []

    def predict(self, obs: dict[str, Any]) -> Any:
        self.seen.append(obs)
        return self.make(obs)


@contextmanager
def served(make: Callable[[dict[str, Any]], Any], **kw: Any) -> Iterator[PolicyServer]:
    with PolicyServer(Predict(make), port=0, metadata={"policy": "test"}, **kw) as server:
        yield server


def chunk(rows: int = 8, cols: int = 4, value: float = 0.5) -> Callable[[Any], np.ndarray]:
    return lambda obs: np.full((rows, cols), value, np.float32)


@pytest.mark.parametrize("bad", ["openpi:http://127.0.0.1:8000", "openpi:ws://127.0.0.1",
                                 "openpi:ws://:8000", "openpi:127.0.0.1:8000",
                                 "openpi:ws://127.0.0.1:99999"])
def test_malformed_urls_are_refused_naming_the_form(bad: str) -> None:
    with pytest.raises(ValueError, match=r"expected openpi:ws://<host>:<port>") as err:
        server_url(bad)
    assert "\n" not in str(err.value)


def test_no_server_is_one_line_value_error() -> None:
    with served(chunk()) as server:
        url = server.url
    with pytest.raises(ValueError, match="no openpi server reachable") as err:
        POLICIES.create(f"openpi:{url}", "reach", chunk_size=8)
    assert "\n" not in str(err.value)


def test_sends_openpi_keys_and_maps_the_reply() -> None:
    with served(chunk(rows=10)) as server:
        policy = POLICIES.create(f"openpi:{server.url}", "reach", chunk_size=8)
        assert isinstance(policy, OpenPIPolicy)
        assert policy.cameras == ("gripperPOV",) and policy.metadata == {"policy": "test"}
        result = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
        sent = server.policy.seen[0]
    assert result.fault is None and result.chunk is not None
    assert result.chunk.shape == (8, 4)  # the first chunk_size rows of the reply's 10
    assert set(sent) == {"observation/image", "observation/wrist_image", "observation/state",
                         "prompt"}
    np.testing.assert_array_equal(sent["observation/image"], FRAME)
    np.testing.assert_array_equal(sent["observation/wrist_image"], WRIST)
    np.testing.assert_array_equal(sent["observation/state"], INP.proprio)
    assert sent["prompt"] == "reach the goal"
    assert result.measured_rtt_s is not None and result.measured_rtt_s > 0
    assert result.server_s is not None and 0 <= result.server_s


def test_libero_tasks_send_the_eye_in_hand_camera_and_take_7d_actions() -> None:
    with served(chunk(cols=7)) as server:
        policy = POLICIES.create(f"openpi:{server.url}", "libero_object_0", chunk_size=4)
        assert policy.cameras == ("eye_in_hand",)
        inp = PolicyInput(FRAME, np.zeros(8, np.float32), "pick", images={"eye_in_hand": WRIST})
        result = run_policy(policy, inp, 0, 1, action_dim=7)
        policy.close()
    assert result.chunk is not None and result.chunk.shape == (4, 7)


@pytest.mark.parametrize(("make", "fault"), [
    (chunk(cols=7), "policy_bad_shape: (8, 7)"),
    (chunk(value=float("nan")), "policy_nonfinite_action"),
])
def test_wrong_shapes_and_nan_are_policy_faults(make: Any, fault: str) -> None:
    with served(make) as server:
        policy = POLICIES.create(f"openpi:{server.url}", "reach", chunk_size=8)
        result = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert result.chunk is None and result.fault == fault
    assert not infrastructure_fault(fault)


def test_a_failing_served_model_is_a_policy_fault_and_the_next_call_reconnects() -> None:
    calls = []

    def flaky(obs: dict[str, Any]) -> np.ndarray:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        return np.zeros((8, 4), np.float32)

    with served(flaky) as server:
        policy = POLICIES.create(f"openpi:{server.url}", "reach", chunk_size=8)
        first = run_policy(policy, INP, 0, 1, action_dim=4)
        second = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert first.fault == "remote_error: RequestRejected: INTERNAL: RuntimeError: model exploded"
    assert not infrastructure_fault(first.fault)
    assert second.fault is None and second.chunk is not None


def test_a_server_gone_mid_episode_is_an_infrastructure_fault() -> None:
    with served(chunk(), max_requests=1) as server:
        policy = POLICIES.create(f"openpi:{server.url}", "reach", chunk_size=8)
        assert run_policy(policy, INP, 0, 1, action_dim=4).fault is None
        assert server.wait(10.0)  # it stopped itself after its one reply
        gone = run_policy(policy, INP, 0, 1, action_dim=4)
        refused = run_policy(policy, INP, 0, 1, action_dim=4)  # connects again: nobody there
        policy.close()
    for result in (gone, refused):
        assert result.chunk is None and result.fault is not None
        assert result.fault.startswith("remote_error: ServerUnavailable: UNAVAILABLE: ")
        assert infrastructure_fault(result.fault)
        assert result.measured_rtt_s is None


def test_a_reply_that_does_not_come_in_time_is_deadline_exceeded() -> None:
    def slow(obs: dict[str, Any]) -> np.ndarray:
        time.sleep(1.0)
        return np.zeros((8, 4), np.float32)

    with served(slow) as server:
        policy = OpenPIPolicy(f"openpi:{server.url}", "reach", timeout_s=0.1)
        result = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert result.fault is not None
    assert result.fault.startswith("remote_error: DeadlineExceeded: DEADLINE_EXCEEDED: ")
    assert infrastructure_fault(result.fault)


DYING_SERVER = """
import os, sys
import numpy as np
from rapid_policy_server import PolicyServer

class DiesOnSecondCall:
    calls = 0
    def predict(self, obs):
        self.calls += 1
        if self.calls == 2:
            os._exit(1)  # the process dies mid-request: no reply, no close frame
        return np.zeros((8, 4), np.float32)

server = PolicyServer(DiesOnSecondCall(), port=0).start()
print(server.port, flush=True)
server.wait()
"""


def test_a_server_process_that_dies_mid_request_is_an_infrastructure_fault() -> None:
    proc = subprocess.Popen([sys.executable, "-c", DYING_SERVER], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        policy = OpenPIPolicy(f"openpi:ws://127.0.0.1:{port}", "reach")
        assert run_policy(policy, INP, 0, 1, action_dim=4).fault is None
        died = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
        assert proc.wait(timeout=30) == 1
    finally:
        proc.kill()
        proc.wait()
    assert died.fault is not None and infrastructure_fault(died.fault)
    assert died.fault.startswith("remote_error: ServerUnavailable: UNAVAILABLE: ConnectionClosed")
