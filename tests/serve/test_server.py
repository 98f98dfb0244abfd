"""rapid-serve in a thread on 127.0.0.1: round trips, auth, validation, limits, concurrency."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from grpc_health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.split import SplitRunner
from rapid_env.policy import PolicyInput
from rapid_env.serve import model as model_mod
from rapid_env.serve import rapid_serve_pb2 as pb
from rapid_env.serve import rapid_serve_pb2_grpc as pb_grpc
from rapid_env.serve.boundary import read_header
from rapid_env.serve.client import (
    CorruptReply,
    DeadlineExceeded,
    PolicyClient,
    RequestRejected,
    ServerUnavailable,
    Unauthenticated,
    read_token,
)
from rapid_env.serve.config import UsageError
from rapid_env.serve.lifecycle import RunningServer
from rapid_env.serve.model import CloudModel
from rapid_env.serve.servicer import SERVICE_NAME
from tests.serve.conftest import TOKEN, make_input


def observe(policy: VLAPolicy, seed: int = 0) -> PolicyInput:
    """A random observation with a frame for every camera ``policy`` reads."""
    return make_input(seed, cameras=policy.cameras)


def edge_blob(policy: VLAPolicy, k: int, seed: int = 0, compression: str = "none") -> bytes:
    return SplitRunner(policy.model, k, compression).edge(policy.prepare(observe(policy, seed)))


def local_chunk(policy: VLAPolicy, k: int, seed: int = 0) -> np.ndarray:
    chunk, _ = policy.act_split(observe(policy, seed), k / policy.model.n_blocks)
    return chunk


def tokens_split(policy: VLAPolicy) -> int:
    """The split whose cloud part starts at the tokens block: the last with image features."""
    return policy.model.block_names().index("tokens")


def rebuild(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


@pytest.fixture
def decode_spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the server's calls to ``deserialise``: a rejected boundary must never reach it."""
    calls: list[int] = []
    real = model_mod.deserialise

    def spy(blob: bytes, layout: object = None) -> dict[str, torch.Tensor]:
        calls.append(len(blob))
        return real(blob, layout)  # type: ignore[arg-type]

    monkeypatch.setattr(model_mod, "deserialise", spy)
    return calls


@pytest.mark.parametrize("k", [2, 5])
def test_the_servers_chunk_is_act_splits_bit_for_bit(
    client: PolicyClient, policy: VLAPolicy, k: int
) -> None:
    assert policy.compression == "none"
    actions, server_ms, rtt_ms = client.infer("r1", k, "push", edge_blob(policy, k, seed=k))
    assert actions.dtype == np.float32 and actions.shape == (policy.chunk_size, 4)
    assert np.array_equal(actions, local_chunk(policy, k, seed=k))
    assert 0 < server_ms <= rtt_ms


def test_compressed_boundaries_give_the_split_runtimes_chunk(
    client: PolicyClient, policy: VLAPolicy
) -> None:
    for comp in ("fp16", "int8"):
        blob = edge_blob(policy, 3, compression=comp)
        actions, _, _ = client.infer(f"c-{comp}", 3, "", blob, comp)
        local = SplitRunner(policy.model, 3, comp).cloud(blob)[0, : policy.chunk_size]
        assert np.array_equal(actions, np.clip(local.numpy(), -1, 1))


def test_info_lists_the_splits_and_the_boundary_each_expects(
    client: PolicyClient, policy: VLAPolicy, policy_spec: str
) -> None:
    info = client.info()
    n = policy.model.n_blocks
    assert (info.policy, info.family, info.n_blocks) == (policy_spec, "chunk-regress", n)
    assert info.cameras == policy.model.cfg.cameras == ("main", *policy.cameras)
    assert info.splits == tuple(range(n)) and info.chunk_size == policy.chunk_size
    assert info.action_dim == 4 and info.compressions == ("none", "fp16", "int8")
    assert info.block_names == tuple(policy.model.block_names())
    for k in info.splits:
        layout = SplitRunner(policy.model, k).boundary_layout(1)
        shapes = {name: shape for name, _, shape in info.boundaries[k, "none"]}
        assert shapes == {name: shape for name, (shape, _) in layout.items()}
        assert info.nbytes[k, "none"] == len(edge_blob(policy, k))
    dtypes = {name: dtype for name, dtype, _ in info.boundaries[0, "int8"]}
    assert dtypes == {
        "image": "U8", "text_ids": "I64", "proprio": "I8", "proprio__scale__": "F32"
    }


def test_health_is_serving_without_a_token(shared_server: RunningServer) -> None:
    with PolicyClient(shared_server.address, "not-the-token") as c:
        assert c.health() == "SERVING"
        assert c.health("") == "SERVING"


def test_a_wrong_or_missing_token_is_refused_and_the_next_call_served(
    shared_server: RunningServer, client: PolicyClient, policy: VLAPolicy
) -> None:
    blob = edge_blob(policy, 4)
    with PolicyClient(shared_server.address, TOKEN[:-1] + "x") as bad:
        with pytest.raises(Unauthenticated):
            bad.infer("bad", 4, "", blob)
        with pytest.raises(Unauthenticated):
            bad.info()
    with grpc.insecure_channel(shared_server.address) as channel:
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.PolicyServerStub(channel).Info(pb.InfoRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    actions, _, _ = client.infer("good", 4, "", blob)
    assert np.array_equal(actions, local_chunk(policy, 4))


def reshaped(shape: list[int]) -> list[int]:
    """The same number of elements in another (B, C, H, W) shape: half the rows, twice as wide."""
    b, c, h, w = shape
    return [b, c, h // 2, w * 2]


def malformed(blob: bytes) -> dict[str, bytes]:
    header, start = read_header(blob)
    data = blob[start:]
    huge = json.loads(json.dumps(header))
    huge["h"] = {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}
    shape = json.loads(json.dumps(header))
    shape["h"]["shape"] = reshaped(shape["h"]["shape"])
    dtype = json.loads(json.dumps(header))
    dtype["h"]["dtype"] = "F64"
    extra = json.loads(json.dumps(header))
    extra["evil"] = {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}
    return {
        "garbage": b"\x93NUMPY not safetensors at all" * 4,
        "header claims 10^12 bytes": rebuild(huge, data),
        "wrong shape": rebuild(shape, data),
        "wrong dtype": rebuild(dtype, data),
        "extra tensor": rebuild(extra, data),
    }


def test_malformed_boundaries_are_refused_before_decoding_and_the_server_goes_on(
    client: PolicyClient, policy: VLAPolicy, cloud: CloudModel, decode_spy: list[int]
) -> None:
    blob = edge_blob(policy, 3)
    h = list(cloud.boundary(3, "none").tensors["h"][1])  # (B * cameras, C, H, W) features
    assert h[0] == len(policy.model.cfg.cameras)
    needles = {
        "garbage": "header length",
        "header claims 10^12 bytes": "'h': shape [1000000, 1000000]",
        "wrong shape": f"'h': shape {reshaped(h)}, expected {h}",
        "wrong dtype": "'h': dtype 'F64', expected 'F32'",
        "extra tensor": "unexpected tensor 'evil'",
    }
    for what, bad in malformed(blob).items():
        with pytest.raises(RequestRejected) as err:
            client.infer(what, 3, "", bad)
        assert err.value.code == "INVALID_ARGUMENT", what
        assert needles[what] in err.value.message, (what, err.value.message)
    assert decode_spy == []  # no rejected blob reached the decoder
    actions, _, _ = client.infer("after", 3, "", blob)
    assert decode_spy == [len(blob)]
    assert np.array_equal(actions, local_chunk(policy, 3))


def test_a_boundary_for_another_split_or_compression_is_refused(
    client: PolicyClient, policy: VLAPolicy, decode_spy: list[int]
) -> None:
    n, t = policy.model.n_blocks, tokens_split(policy)
    with pytest.raises(RequestRejected, match="'h': shape .* for split 2"):
        client.infer("r", 2, "", edge_blob(policy, 3))  # a k=3 state sent as k=2
    with pytest.raises(RequestRejected, match="missing tensor 'proprio'"):
        client.infer("r", 2, "", edge_blob(policy, t + 1))  # the tokens block took it in
    with pytest.raises(RequestRejected, match="written with compression 'int8'"):
        client.infer("r", 3, "", edge_blob(policy, 3, compression="int8"), "none")
    with pytest.raises(
        RequestRejected, match=rf"split {n} not served; accepted: 0\.\.{n - 1}"
    ) as err:
        client.infer("r", n, "", edge_blob(policy, 3))
    assert err.value.code == "INVALID_ARGUMENT"
    with pytest.raises(RequestRejected, match="unknown compression 'zstd'"):
        client.infer("r", 3, "", edge_blob(policy, 3), "zstd")
    assert decode_spy == []


def test_a_boundary_without_every_cameras_frame_is_refused_naming_the_cameras(
    client: PolicyClient, policy: VLAPolicy, policy_spec: str, decode_spy: list[int]
) -> None:
    cameras = policy.model.cfg.cameras
    if len(cameras) == 1:
        pytest.skip("a one-camera model has no camera to leave out")
    with pytest.raises(ValueError, match=f"needs the camera image {cameras[1]!r}"):
        policy.prepare(make_input(0))  # the edge itself refuses an observation without it
    state = policy.prepare(observe(policy))
    main_only = dict(state, image=state["image"][:1])  # the main camera's frame, no other
    with pytest.raises(RequestRejected) as err:
        client.infer("one-frame", 0, "", SplitRunner(policy.model, 0).edge(main_only))
    assert err.value.code == "INVALID_ARGUMENT"
    s = policy.model.cfg.image_size
    assert (
        f"'image': shape [1, {s}, {s}, 3], expected [{len(cameras)}, {s}, {s}, 3] for split 0 "
        f"with compression none; policy {policy_spec!r} reads {len(cameras)} cameras, one frame "
        f"each in this order: {', '.join(cameras)}"
    ) in err.value.message
    assert decode_spy == []


def test_non_finite_values_and_out_of_vocabulary_ids_are_invalid(
    client: PolicyClient, policy: VLAPolicy
) -> None:
    state = policy.prepare(observe(policy))
    bad = dict(state, proprio=torch.full_like(state["proprio"], float("nan")))
    blob = SplitRunner(policy.model, 0).edge(bad)  # k=0: the state is the input
    with pytest.raises(RequestRejected, match="'proprio' holds non-finite values"):
        client.infer("nan", 0, "", blob)
    ids = dict(state, text_ids=torch.full_like(state["text_ids"], 10**6))
    with pytest.raises(RequestRejected, match="outside the vocabulary"):
        client.infer("ids", 0, "", SplitRunner(policy.model, 0).edge(ids))


def test_an_oversized_request_gets_resource_exhausted_from_grpc(
    make_server, policy: VLAPolicy
) -> None:
    running = make_server(max_request_mb=0.05)  # 52 kB
    with PolicyClient(running.address, TOKEN) as c:
        with pytest.raises(RequestRejected) as err:
            c.infer("big", 3, "", bytes(100_000))
        assert err.value.code == "RESOURCE_EXHAUSTED"
        assert c.info().max_request_bytes == 52428
        actions, _, _ = c.infer("small", 3, "", edge_blob(policy, 3))  # 17 kB
        assert np.array_equal(actions, local_chunk(policy, 3))


def test_a_failing_forward_is_internal_and_the_server_keeps_serving(
    client: PolicyClient, cloud: CloudModel, policy: VLAPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = cloud._run, []

    def flaky(state, split, deadline):  # noqa: ANN001, ANN202
        calls.append(split)
        if len(calls) == 1:
            raise RuntimeError("simulated kernel failure")
        return real(state, split, deadline)

    monkeypatch.setattr(cloud, "_run", flaky)
    with pytest.raises(RequestRejected) as err:
        client.infer("boom", 5, "", edge_blob(policy, 5))
    assert err.value.code == "INTERNAL" and "simulated kernel failure" in err.value.message
    actions, _, _ = client.infer("fine", 5, "", edge_blob(policy, 5))
    assert np.array_equal(actions, local_chunk(policy, 5))


def test_deadlines_client_side_and_server_side(
    client: PolicyClient, make_server, policy: VLAPolicy
) -> None:
    blob = edge_blob(policy, 1)
    with pytest.raises(DeadlineExceeded):
        client.infer("hurry", 1, "", blob, deadline_s=1e-4)
    running = make_server(deadline_s=1e-6)  # the server's own budget runs out between blocks
    with PolicyClient(running.address, TOKEN) as c:
        with pytest.raises(DeadlineExceeded, match="passed before block"):
            c.infer("slow", 1, "", blob)
    actions, _, _ = client.infer("relaxed", 1, "", blob)
    assert np.array_equal(actions, local_chunk(policy, 1))


def test_four_clients_at_once_get_their_own_answers(
    shared_server: RunningServer, policy: VLAPolicy
) -> None:
    cases = [(k, seed) for k in (0, 2, 4, 6) for seed in (1, 2)]
    blobs = {c: edge_blob(policy, c[0], seed=c[1]) for c in cases}
    expected = {c: local_chunk(policy, c[0], seed=c[1]) for c in cases}
    failures: list[str] = []

    def work(worker: int) -> None:
        with PolicyClient(shared_server.address, TOKEN, timeout_s=20) as c:
            for i in range(6):
                case = cases[(worker * 3 + i) % len(cases)]
                try:
                    actions, _, _ = c.infer(f"{worker}-{i}", case[0], "", blobs[case])
                    if not np.array_equal(actions, expected[case]):
                        failures.append(f"{worker}-{i}: wrong chunk for {case}")
                except Exception as e:  # noqa: BLE001 - collected, asserted below
                    failures.append(f"{worker}-{i}: {e!r}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []


def test_max_requests_stops_the_server_by_itself(make_server, policy: VLAPolicy) -> None:
    running = make_server(max_requests=2)
    with PolicyClient(running.address, TOKEN, timeout_s=5) as c:
        c.info()
        c.infer("last", 6, "", edge_blob(policy, 6))
        assert running.wait(120)  # it stops by itself; the timeout only stops a hang
        status = running.health.Check(HealthCheckRequest(service=SERVICE_NAME), None).status
        assert status == HealthCheckResponse.NOT_SERVING  # set before the server stopped
        with pytest.raises(ServerUnavailable):
            c.health(deadline_s=1)


def test_a_second_server_cannot_share_a_bound_port(make_server) -> None:
    running = make_server()
    with pytest.raises(UsageError, match="cannot listen"):
        make_server(port=running.port)


def test_parallel_forward_gives_the_same_chunks(make_server, policy: VLAPolicy) -> None:
    parallel = CloudModel.from_policy("parallel", policy, parallel=True)
    running = make_server(model=parallel)
    with PolicyClient(running.address, TOKEN) as c:
        actions, _, _ = c.infer("p", 2, "", edge_blob(policy, 2))
    assert np.array_equal(actions, local_chunk(policy, 2))


def test_corrupt_replies_are_caught_by_the_client(client: PolicyClient) -> None:
    good = pb.InferReply(request_id="r", actions=[0.5] * 32, rows=8, cols=4, server_ms=1.0)
    assert client.check_reply(good, "r").shape == (8, 4)
    for reply, rid in [
        (pb.InferReply(request_id="r", actions=[0.5] * 31, rows=8, cols=4), "r"),
        (pb.InferReply(request_id="r", actions=[], rows=0, cols=4), "r"),
        (pb.InferReply(request_id="r", actions=[float("nan")] * 32, rows=8, cols=4), "r"),
        (pb.InferReply(request_id="r", actions=[1.5] * 32, rows=8, cols=4), "r"),
        (pb.InferReply(request_id="other", actions=[0.5] * 32, rows=8, cols=4), "r"),
    ]:
        with pytest.raises(CorruptReply):
            client.check_reply(reply, rid)
    shaped = PolicyClient("127.0.0.1:1", TOKEN, expect_shape=(4, 4))
    with pytest.raises(CorruptReply, match="expected"):
        shaped.check_reply(good, "r")
    shaped.close()


def test_read_token_prefers_the_file_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tok").write_text("  from-file \n")
    (tmp_path / "tok").chmod(0o600)
    monkeypatch.setenv("RAPID_SERVE_TOKEN", "from-env")
    assert read_token(tmp_path / "tok") == "from-file"
    assert read_token(None) == "from-env"
    monkeypatch.delenv("RAPID_SERVE_TOKEN")
    with pytest.raises(ValueError, match="RAPID_SERVE_TOKEN"):
        read_token(None)


def test_an_unreachable_server_is_unavailable() -> None:
    with PolicyClient("127.0.0.1:1", TOKEN, timeout_s=2) as c:
        with pytest.raises(ServerUnavailable):
            c.info()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_round_trip_and_a_plaintext_client_is_refused(
    make_server, policy: VLAPolicy, tmp_path: Path
) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )
    running = make_server(tls_cert=cert.read_bytes(), tls_key=key.read_bytes())
    with PolicyClient(running.address, TOKEN, tls_ca=cert) as c:
        actions, _, _ = c.infer("tls", 3, "", edge_blob(policy, 3))
        assert np.array_equal(actions, local_chunk(policy, 3))
    with PolicyClient(running.address, TOKEN, timeout_s=2) as plain:
        with pytest.raises(ServerUnavailable):
            plain.info()
