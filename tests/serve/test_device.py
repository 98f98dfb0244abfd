"""``rapid-serve --device/--dtype``: an absent device exits 2; a bfloat16 cloud half really serves.

The edge stays the float32 CPU policy of the other server tests: the server takes its expected
boundaries from the model as loaded, then places it, so the same bytes are accepted whatever the
server computes in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from rapid_env.agents.torch_device import available_devices
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.split import SplitRunner
from rapid_env.cli.serve import config_from, main, parser
from rapid_env.compose import build_policy
from rapid_env.config import EnvConfig
from rapid_env.serve.client import PolicyClient
from rapid_env.serve.config import UsageError
from rapid_env.serve.lifecycle import RunningServer
from rapid_env.serve.model import CloudModel, load_cloud_model
from tests.serve.conftest import TOKEN, make_input, serving_process

BF16_ATOL = 0.05
"""Largest gap allowed between a bfloat16 cloud half's chunk and the float32 one (measured: at
most 0.027 for the shipped ``chunk-regress``, 0.006 for the random two-camera model, over every
split and five observations)."""


@pytest.fixture(scope="module")
def bf16_cloud(policy_spec: str, policy: VLAPolicy) -> CloudModel:
    return load_cloud_model(policy_spec, policy.chunk_size, dtype="bfloat16")


def chunks(client: PolicyClient, policy: VLAPolicy, k: int, seed: int) -> tuple[np.ndarray, ...]:
    """The server's chunk for one observation at split ``k``, and the local float32 one."""
    inp = make_input(seed, cameras=policy.cameras)
    blob = SplitRunner(policy.model, k).edge(policy.prepare(inp))
    served, _, _ = client.infer(f"s{k}-{seed}", k, inp.instruction, blob)
    local, _ = policy.act_split(make_input(seed, cameras=policy.cameras), k / policy.model.n_blocks)
    return served, local


def connect(server: RunningServer) -> PolicyClient:
    client = PolicyClient(server.address, TOKEN, timeout_s=10.0)
    client.wait_ready()
    return client


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_an_absent_device_exits_2_with_one_line_naming_what_is_here(
    token_file: Path, capsys: pytest.CaptureFixture[str], device: str
) -> None:
    here = available_devices()
    if device == "mps" and "mps" in here or device == "cuda" and "cuda:0" in here:
        pytest.skip(f"{device} is available on this machine")
    assert main(["--token-file", str(token_file), "--device", device]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err == (
        f"rapid-serve: device={device!r} is not available on this machine; available: "
        f"{', '.join(here)}"
    )
    with pytest.raises(UsageError, match=f"device={device!r} is not available"):
        load_cloud_model("chunk-regress", 8, device=device)  # the programmatic path too


def test_an_unknown_dtype_is_refused_naming_the_allowed_ones(
    token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--token-file", str(token_file), "--dtype", "float64"])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--dtype" in last and "'float64'" in last, last
    assert all(name in last for name in ("float32", "bfloat16", "float16")), last


def test_the_flags_reach_the_config(token_file: Path) -> None:
    args = parser().parse_args(["--token-file", str(token_file), "--dtype", "bfloat16"])
    config = config_from(args)
    assert (config.device, config.dtype) == ("cpu", "bfloat16")
    default = config_from(parser().parse_args(["--token-file", str(token_file)]))
    assert (default.device, default.dtype) == ("cpu", "float32")


def test_a_bfloat16_cloud_half_serves_float32_chunks_close_to_the_float32_ones(
    make_server: Callable[..., RunningServer], bf16_cloud: CloudModel, cloud: CloudModel,
    policy: VLAPolicy,
) -> None:
    assert {p.dtype for p in bf16_cloud.model.parameters()} == {torch.bfloat16}
    assert next(policy.model.parameters()).dtype == torch.float32  # the edge's model untouched
    assert bf16_cloud.table == cloud.table  # the edge writes the same float32 boundaries
    with connect(make_server(model=bf16_cloud)) as client:
        info = client.info()
        assert (info.device, info.dtype) == ("cpu", "bfloat16")
        assert info.boundaries[1, "none"] == tuple(
            (name, dtype, shape) for name, (dtype, shape) in cloud.table[1, "none"].tensors.items()
        )
        for k in (0, 1, policy.model.block_names().index("tokens"), policy.model.n_blocks - 1):
            served, local = chunks(client, policy, k, seed=k)
            assert served.dtype == np.float32 and served.shape == (policy.chunk_size, 4)
            assert np.isfinite(served).all() and np.abs(served).max() <= 1.0
            np.testing.assert_allclose(served, local, rtol=0, atol=BF16_ATOL)
            assert not np.array_equal(served, local)  # it really ran in bfloat16


def test_a_bfloat16_batch_gives_each_request_its_own_chunk(
    bf16_cloud: CloudModel, policy: VLAPolicy
) -> None:
    k = 2
    edge = SplitRunner(policy.model, k)
    states = [
        bf16_cloud.decode(edge.edge(policy.prepare(make_input(s, cameras=policy.cameras))),
                          k, "none")
        for s in (3, 4)
    ]
    batch = bf16_cloud.forward_batch(states, k)
    for state, chunk in zip(states, batch, strict=True):
        alone = bf16_cloud.forward(state, k)
        assert chunk.dtype == np.float32 and chunk.shape == alone.shape
        np.testing.assert_allclose(chunk, alone, rtol=0, atol=BF16_ATOL)
    assert not np.allclose(batch[0], batch[1])  # two observations, two chunks


def test_float32_named_is_the_default_path_bit_for_bit(
    make_server: Callable[..., RunningServer], client: PolicyClient, policy_spec: str,
    policy: VLAPolicy,
) -> None:
    explicit = load_cloud_model(policy_spec, policy.chunk_size, device="cpu", dtype="float32")
    assert (explicit.device, explicit.dtype) == ("cpu", "float32")
    info = client.info()  # the shared default server
    assert (info.device, info.dtype) == ("cpu", "float32")
    with connect(make_server(model=explicit)) as named:
        for k in (0, 3):
            by_name, local = chunks(named, policy, k, seed=10 + k)
            by_default, _ = chunks(client, policy, k, seed=10 + k)
            assert np.array_equal(by_name, by_default) and np.array_equal(by_name, local)


def test_rapid_serve_dtype_bfloat16_as_a_process(token_file: Path) -> None:
    """The command end to end: its start-up line names the dtype, a client gets a float32 chunk."""
    edge = build_policy(EnvConfig(policy="chunk-regress"))
    assert isinstance(edge, VLAPolicy)
    with serving_process("--token-file", str(token_file), "--port", "0", "--dtype", "bfloat16",
                         "--max-requests", "2", "--max-seconds", "90", "--grace-s", "1") as served:
        assert "device cpu, dtype bfloat16" in served.serving, served.serving
        with PolicyClient(f"127.0.0.1:{served.port}", TOKEN, timeout_s=10) as c:
            c.wait_ready()
            assert c.info().dtype == "bfloat16"  # call 1 of --max-requests 2
            inp = make_input(5, cameras=edge.cameras)
            actions, _, _ = c.infer("p", 3, "", SplitRunner(edge.model, 3).edge(edge.prepare(inp)))
        assert actions.dtype == np.float32 and actions.shape == (edge.chunk_size, 4)
        local, _ = edge.act_split(inp, 3 / edge.model.n_blocks)
        np.testing.assert_allclose(actions, local, rtol=0, atol=BF16_ATOL)
        # --max-requests stops it; the timeout stops a hang
        assert served.proc.wait(timeout=120) == 0
