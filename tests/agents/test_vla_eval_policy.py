"""``vla-eval:ws://host:port``: vla-eval's wire format, its episode messages, and every fault.

The codec is checked byte for byte against vla-eval's own (``vla_eval.protocol``); the client
against vla-eval's own model server (``serve_async`` with a ``PredictModelServer``) on
127.0.0.1, so each way such a server answers or fails is exercised over a real websocket.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import msgpack
import numpy as np
import pytest
from PIL import Image
from rapid_policy_server import PolicyServer
from vla_eval.protocol import messages, numpy_codec
from websockets.sync.server import serve

from rapid_env.agents.openpi_transport import OpenPITransport
from rapid_env.agents.registry import MEASURED_TIMING_EXTRA, POLICIES
from rapid_env.agents.vla_eval_policy import VLAEvalPolicy
from rapid_env.agents.vla_eval_wire import pack_message, png_bytes, unpack_message
from rapid_env.policy import PolicyInput, run_policy
from rapid_env.record import infrastructure_fault
from tests.agents.vla_eval_servers import Recording, vla_eval_serving

FRAME = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
WRIST = FRAME[::-1].copy()
STATE = np.array([0.1, 0.2, 0.3, 1.0], np.float32)
INP = PolicyInput(FRAME, STATE, "reach the goal", images={"gripperPOV": WRIST})
BOTH = {"send_wrist_image": True, "send_state": True}


def chunk(rows: int = 8, cols: int = 4, value: float = 0.5) -> Any:
    return lambda obs: np.full((rows, cols), value, np.float32)


# ------------------------------------------------------------------ the wire, against vla-eval's
def test_raw_messages_are_byte_for_byte_vla_evals() -> None:
    payload = {"images": {"agentview": FRAME}, "states": STATE, "task_description": "reach",
               "n": np.int64(3), "x": np.float32(0.5), "flag": np.bool_(True)}
    ours = pack_message("observation", payload, 7, "raw", timestamp=12.5)
    numpy_codec.set_image_format("raw")
    try:
        theirs = messages.pack_message(messages.Message(
            messages.MessageType.OBSERVATION, payload, seq=7, timestamp=12.5))
    finally:
        numpy_codec.set_image_format("png")
    assert ours == theirs


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_images_decode_to_the_same_pixels_in_vla_eval(channels: int) -> None:
    img = np.random.default_rng(channels).integers(0, 256, (5, 7, channels), dtype=np.uint8)
    decoded = np.array(Image.open(io.BytesIO(png_bytes(img))))
    np.testing.assert_array_equal(decoded.reshape(img.shape), img)
    if channels == 3:  # what vla-eval's server decodes an observation to (its default: PNG)
        msg = messages.unpack_message(pack_message("observation", {"images": {"a": img}}, 1))
        np.testing.assert_array_equal(msg.payload["images"]["a"], img)
        assert msg.type == messages.MessageType.OBSERVATION and msg.seq == 1


def test_vla_evals_replies_decode() -> None:
    actions = np.linspace(-1, 1, 28, dtype=np.float32).reshape(7, 4)
    frame = messages.pack_message(messages.Message(
        messages.MessageType.ACTION, {"actions": actions}, seq=4))
    kind, payload, seq = unpack_message(frame)
    assert (kind, seq) == ("action", 4)
    np.testing.assert_array_equal(payload["actions"], actions)
    for bad, match in [(b"\x01", "not a vla-eval message"),
                       (msgpack.packb({"type": "nope", "payload": {}, "seq": 1}),
                        "unknown message type 'nope'")]:
        with pytest.raises(ValueError, match=match):
            unpack_message(bad)
    with pytest.raises(ValueError, match="dtype object cannot be sent"):
        pack_message("observation", {"x": np.array([None])}, 1)


# ------------------------------------------------------------------ names
@pytest.mark.parametrize("bad", ["vla-eval:http://127.0.0.1:8000", "vla-eval:ws://127.0.0.1",
                                 "vla-eval:127.0.0.1:8000"])
def test_malformed_urls_are_refused_naming_the_form(bad: str) -> None:
    with pytest.raises(ValueError, match=r"expected vla-eval:ws://<host>:<port>") as err:
        POLICIES.create(bad, "reach", chunk_size=8)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("query", "match"), [
    ("?images=jpeg", r"images='jpeg'; allowed: png, raw"),
    ("?image=raw", r"unknown query parameter 'image'; allowed: actions, images"),
])
def test_bad_queries_are_refused_before_connecting(query: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        POLICIES.create(f"vla-eval:ws://127.0.0.1:9{query}", "reach", chunk_size=8)


def test_no_server_is_one_line_value_error() -> None:
    with vla_eval_serving(Recording(chunk())) as url:
        pass
    with pytest.raises(ValueError, match="no vla-eval server reachable") as err:
        POLICIES.create(f"vla-eval:{url}", "reach", chunk_size=8)
    assert "\n" not in str(err.value)


def test_an_openpi_server_is_refused_as_not_vla_eval() -> None:
    class Zero:
        def predict(self, obs: dict[str, Any]) -> np.ndarray:
            return np.zeros((8, 4), np.float32)

    with PolicyServer(Zero(), port=0) as server, pytest.raises(
            ValueError, match="does not speak vla-eval's protocol") as err:
        POLICIES.create(f"vla-eval:{server.url}", "reach", chunk_size=8)
    assert "\n" not in str(err.value)


def test_another_protocol_version_is_refused() -> None:
    def hello_v2(ws: Any) -> None:
        ws.recv()
        ws.send(msgpack.packb({"type": "hello", "payload": {"protocol_version": 2}, "seq": 1,
                               "timestamp": 0.0}))
        ws.recv()

    with serve(hello_v2, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.socket.getsockname()[1]
        try:
            with pytest.raises(ValueError, match=r"protocol_version 2; allowed: 1"):
                POLICIES.create(f"vla-eval:ws://127.0.0.1:{port}", "reach", chunk_size=8)
        finally:
            server.shutdown()
            thread.join(10)


# ------------------------------------------------------------------ what is sent
@pytest.mark.parametrize("images", ["png", "raw"])
def test_sends_vla_evals_libero_keys_and_reads_hello(images: str) -> None:
    model = Recording(chunk(rows=10), observation_params=BOTH)
    with vla_eval_serving(model) as url:
        policy = POLICIES.create(f"vla-eval:{url}?images={images}", "reach", chunk_size=8)
        assert isinstance(policy, VLAEvalPolicy) and policy.cameras == ("gripperPOV",)
        assert policy.server_info["model_server"] == "Recording"
        assert policy.server_info["observation_params"] == BOTH
        assert set(policy.server_info["action_spec"]) == {"actions"}
        result = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert result.fault is None and result.chunk is not None
    assert result.chunk.shape == (8, 4)  # the first chunk_size rows of the reply's 10
    assert result.measured_rtt_s is not None and result.measured_rtt_s > 0
    assert result.server_s is None  # vla-eval's replies carry no server timing
    (sent,) = model.seen
    assert set(sent) == {"images", "states", "task_description"}
    assert list(sent["images"]) == ["agentview", "wrist"]
    np.testing.assert_array_equal(sent["images"]["agentview"], FRAME)
    np.testing.assert_array_equal(sent["images"]["wrist"], WRIST)
    np.testing.assert_array_equal(sent["states"], STATE)
    assert sent["task_description"] == "reach the goal"


def test_only_what_the_server_asks_for_is_sent() -> None:
    model = Recording(chunk())
    with vla_eval_serving(model) as url:
        policy = POLICIES.create(f"vla-eval:{url}", "reach", chunk_size=8)
        assert policy.cameras == ()  # no wrist camera rendered for a server that reads none
        assert run_policy(policy, INP, 0, 1, action_dim=4).fault is None
        policy.close()
    assert set(model.seen[0]) == {"images", "task_description"}
    assert list(model.seen[0]["images"]) == ["agentview"]


def test_libero_tasks_send_the_eye_in_hand_camera_and_8d_state() -> None:
    model = Recording(chunk(cols=7), observation_params=BOTH)
    inp = PolicyInput(FRAME, np.arange(8, dtype=np.float32), "pick",
                      images={"eye_in_hand": WRIST})
    with vla_eval_serving(model) as url:
        policy = POLICIES.create(f"vla-eval:{url}", "libero_object_0", chunk_size=4)
        assert policy.cameras == ("eye_in_hand",)
        result = run_policy(policy, inp, 0, 1, action_dim=7)
        policy.close()
    assert result.chunk is not None and result.chunk.shape == (4, 7)
    np.testing.assert_array_equal(model.seen[0]["images"]["wrist"], WRIST)
    assert model.starts[0]["task"] == {"name": "pick", "task_id": "libero_object_0",
                                       "suite": "libero"}


def test_a_server_with_a_chunk_size_answers_one_action_a_one_row_chunk() -> None:
    model = Recording(chunk(rows=5), chunk_size=5)  # vla-eval buffers, sends one at a time
    with vla_eval_serving(model) as url:
        policy = POLICIES.create(f"vla-eval:{url}", "reach", chunk_size=8)
        result = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert result.chunk is not None and result.chunk.shape == (1, 4)


def test_an_action_map_maps_the_reply() -> None:
    libero = np.tile(np.array([0.04, -0.02, 0.5, 0.3, -0.2, 0.1, 1.0], np.float32), (8, 1))
    with vla_eval_serving(Recording(lambda obs: libero)) as url:
        policy = POLICIES.create(f"vla-eval:{url}?actions=libero7-to-metaworld&images=raw",
                                 "reach", chunk_size=8)
        result = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert result.fault is None and result.chunk is not None
    np.testing.assert_allclose(result.chunk[0], [0.05, -0.025, 0.625, 1.0], rtol=1e-6)


# ------------------------------------------------------------------ the episode messages
def test_episode_start_once_per_episode_with_a_seed_from_its_rng() -> None:
    model = Recording(chunk())
    with vla_eval_serving(model) as url:
        policy = POLICIES.create(f"vla-eval:{url}", "reach", chunk_size=8)
        seeds = []
        for episode in range(2):
            rng = np.random.default_rng(100 + episode)
            seeds.append(int(np.random.default_rng(100 + episode).integers(2**31)))
            policy.reset(rng)
            for _ in range(3):
                assert run_policy(policy, INP, 0, 1, action_dim=4).fault is None
        policy.close()
        _until(lambda: len(model.ends) == 2)
    assert model.starts == [
        {"task": {"name": "reach the goal", "task_id": "reach", "suite": "metaworld"},
         "seed": seed} for seed in seeds]
    # EPISODE_END closes each episode: the first before the second's start, the last on close
    assert model.ends == [{"requests": 3}, {"requests": 3}]
    assert len(model.seen) == 6 and len(model.sessions) == 1


def test_a_failing_model_is_a_policy_fault_on_the_same_connection() -> None:
    calls = []

    def flaky(obs: dict[str, Any]) -> np.ndarray:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        return np.zeros((8, 4), np.float32)

    model = Recording(flaky)
    with vla_eval_serving(model) as url:
        policy = POLICIES.create(f"vla-eval:{url}", "reach", chunk_size=8)
        policy.reset(np.random.default_rng(0))
        first = run_policy(policy, INP, 0, 1, action_dim=4)
        second = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert first.fault == ("remote_error: RequestRejected: INTERNAL: observation_failed: "
                           "RuntimeError: model exploded")
    assert not infrastructure_fault(first.fault)
    assert second.fault is None and second.chunk is not None
    assert len(model.starts) == 1 and len(model.sessions) == 1  # the connection was kept


def test_a_model_that_fails_to_start_the_episode_is_a_policy_fault_once() -> None:
    class NoReset(Recording):
        async def on_episode_start(self, config: dict[str, Any], ctx: Any) -> None:
            raise RuntimeError("cannot reset")

    model = NoReset(chunk())
    with vla_eval_serving(model) as url:
        policy = POLICIES.create(f"vla-eval:{url}", "reach", chunk_size=8)
        policy.reset(np.random.default_rng(0))
        first = run_policy(policy, INP, 0, 1, action_dim=4)
        second = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert first.fault == ("remote_error: RequestRejected: INTERNAL: episode_start_failed: "
                           "RuntimeError: cannot reset")
    assert second.fault is None and second.chunk is not None  # its reply was read: in step
    assert len(model.seen) == 2 and len(model.sessions) == 1


@pytest.mark.parametrize(("make", "fault"), [
    (chunk(cols=7), "policy_bad_shape: (8, 7)"),
    (chunk(value=float("nan")), "policy_nonfinite_action"),
])
def test_wrong_shapes_and_nan_are_policy_faults(make: Any, fault: str) -> None:
    with vla_eval_serving(Recording(make)) as url:
        policy = POLICIES.create(f"vla-eval:{url}", "reach", chunk_size=8)
        result = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert result.chunk is None and result.fault == fault


def test_a_server_gone_is_an_infrastructure_fault_and_a_new_one_gets_the_episode_again() -> None:
    model = Recording(chunk(), stop_after=1)
    with vla_eval_serving(model) as url:
        policy = POLICIES.create(f"vla-eval:{url}", "reach", chunk_size=8)
        policy.reset(np.random.default_rng(0))
        assert run_policy(policy, INP, 0, 1, action_dim=4).fault is None
        gone = run_policy(policy, INP, 0, 1, action_dim=4)  # the server stops on this one
    refused = run_policy(policy, INP, 0, 1, action_dim=4)  # connects again: nobody there
    for result in (gone, refused):
        assert result.chunk is None and result.fault is not None
        assert result.fault.startswith("remote_error: ServerUnavailable: UNAVAILABLE: ")
        assert infrastructure_fault(result.fault)
    back = Recording(chunk())
    with vla_eval_serving(back) as url2:
        policy.url = url2  # the same episode, on a new server: it is told the episode again
        assert run_policy(policy, INP, 0, 1, action_dim=4).fault is None
        policy.close()
    assert back.starts == model.starts and len(back.starts) == 1


def test_a_reply_that_does_not_come_in_time_is_deadline_exceeded() -> None:
    def slow(obs: dict[str, Any]) -> np.ndarray:
        time.sleep(1.0)
        return np.zeros((8, 4), np.float32)

    with vla_eval_serving(Recording(slow)) as url:
        policy = VLAEvalPolicy(f"vla-eval:{url}", "reach", timeout_s=0.1)
        result = run_policy(policy, INP, 0, 1, action_dim=4)
        policy.close()
    assert result.fault is not None
    assert result.fault.startswith("remote_error: DeadlineExceeded: DEADLINE_EXCEEDED: ")
    assert infrastructure_fault(result.fault)


# ------------------------------------------------------------------ measured timing
def test_measured_timing_counts_the_frames_on_the_wire() -> None:
    assert POLICIES.extra("vla-eval:ws://127.0.0.1:1", MEASURED_TIMING_EXTRA) is not None
    with vla_eval_serving(Recording(chunk())) as url:
        policy = POLICIES.create(f"vla-eval:{url}", "reach", chunk_size=8)
        transport = POLICIES.extra(policy.name, MEASURED_TIMING_EXTRA)(policy, 4)
        assert isinstance(transport, OpenPITransport)
        result, timed = transport.request(policy, INP, 0, 10.0)
        policy.close()
    assert result.chunk is not None and timed.arrival is not None
    assert timed.measured_rtt_s is not None and timed.arrival == 10.0 + timed.measured_rtt_s
    assert timed.server_s is None and timed.cloud_s == timed.measured_rtt_s  # no server timing
    observation = pack_message("observation", policy.observation(INP), 0)
    assert timed.bytes_up == len(observation) and timed.bytes_down > 8 * 4 * 4


def _until(done: Any, timeout_s: float = 10.0) -> None:
    """Wait for the server thread to have handled what was sent (no assertion on time)."""
    end = time.monotonic() + timeout_s
    while not done() and time.monotonic() < end:
        time.sleep(0.01)
