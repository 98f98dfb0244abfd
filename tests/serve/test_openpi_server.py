"""rapid-policy-server: openpi's own client against our server, wrapping the shipped checkpoint.

``openpi_client`` (openpi-client 0.1.2) is the reference for the wire format: its
``WebsocketClientPolicy`` must read our metadata and replies, and its ``msgpack_numpy`` must read
what ``rapid_policy_server.wire`` writes and the other way round.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from openpi_client import msgpack_numpy
from openpi_client.websocket_client_policy import WebsocketClientPolicy
from rapid_policy_server import PolicyServer, packb, unpackb
from rapid_policy_server.cli import build_server, main, parser

from rapid_env.compose import build_policy
from rapid_env.config import EnvConfig
from rapid_env.policy import PolicyInput


def observation(seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    return {
        "observation/image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        "observation/wrist_image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        "observation/state": rng.uniform(-0.5, 0.5, 4).astype(np.float32),
        "prompt": "reach the red goal",
    }


@pytest.fixture(scope="module")
def server() -> Iterator[PolicyServer]:
    srv, _ = build_server(parser().parse_args(["--policy", "chunk-regress", "--port", "0"]))
    with srv.start():
        yield srv


def test_openpi_client_reads_metadata_and_a_chunk(server: PolicyServer) -> None:
    client = WebsocketClientPolicy(server.url)
    meta = client.get_server_metadata()
    assert meta == {"server": "rapid-policy-server", "policy": "chunk-regress", "chunk_size": 8,
                    "cameras": ["gripperPOV"]}
    first = client.infer(observation())
    second = client.infer(observation(1))
    client._ws.close()
    assert first["actions"].shape == (8, 4) and first["actions"].dtype == np.float32
    assert first["server_timing"]["infer_ms"] > 0 and "prev_total_ms" not in first["server_timing"]
    assert second["server_timing"]["prev_total_ms"] > 0  # openpi's: the previous cycle's time


def test_served_chunk_is_the_in_process_one(server: PolicyServer) -> None:
    obs = observation(2)
    client = WebsocketClientPolicy(server.url)
    served = client.infer(obs)["actions"]
    client._ws.close()
    policy = build_policy(EnvConfig(policy="chunk-regress"))
    policy.reset(np.random.default_rng(0))
    local = policy.act(PolicyInput(obs["observation/image"], obs["observation/state"],
                                   "reach the red goal",
                                   images={"gripperPOV": obs["observation/wrist_image"]}))
    np.testing.assert_array_equal(served, local)


def test_a_bad_observation_gets_openpi_s_error_reply(server: PolicyServer) -> None:
    client = WebsocketClientPolicy(server.url)
    with pytest.raises(RuntimeError, match="Error in inference server") as err:
        client.infer({"prompt": "no image"})
    assert "observation without observation/image, observation/state" in str(err.value)
    client._ws.close()


def test_health_check_answers_without_a_websocket(server: PolicyServer) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as r:
        assert r.status == 200 and r.read() == b"OK\n"


def test_wire_format_is_openpi_s_both_ways() -> None:
    msg = {"actions": np.arange(12, dtype=np.float32).reshape(3, 4), "n": np.int64(3),
           "image": np.zeros((2, 2, 3), np.uint8), "prompt": "x", "nested": {"t": [1.5]}}
    for theirs in (msgpack_numpy.unpackb(packb(msg)), unpackb(msgpack_numpy.packb(msg))):
        np.testing.assert_array_equal(theirs["actions"], msg["actions"])
        assert theirs["actions"].dtype == np.float32 and theirs["image"].dtype == np.uint8
        assert theirs["n"] == 3 and isinstance(theirs["n"], np.int64)
        assert theirs["prompt"] == "x" and theirs["nested"] == {"t": [1.5]}
    assert packb(msg) == msgpack_numpy.packb(msg)
    with pytest.raises(ValueError, match="cannot be sent"):
        packb(np.array([object()]))


def test_a_bounded_server_stops_itself() -> None:
    class Zeros:
        def predict(self, obs: dict[str, object]) -> np.ndarray:
            return np.zeros((2, 4), np.float32)

    with PolicyServer(Zeros(), port=0, max_requests=2) as srv:
        client = WebsocketClientPolicy(srv.url)
        assert client.get_server_metadata() == {}
        for _ in range(2):
            assert client.infer({"prompt": "x"})["actions"].shape == (2, 4)
        assert srv.wait(10.0)
        assert srv.requests == 2


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "70000"], "--port 70000; allowed: 0..65535"),
    (["--max-requests", "0"], "--max-requests 0; allowed: an int >= 1"),
    (["--policy", "no-such-policy"], "no-such-policy"),
])
def test_bad_flags_exit_2_with_one_line(argv: list[str], message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
