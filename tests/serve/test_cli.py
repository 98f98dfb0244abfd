"""``rapid-serve``'s command: refusals exit 2; as a process, SIGTERM stops it gracefully with 0."""

from __future__ import annotations

import signal
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import torch

from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.split import SplitRunner
from rapid_env.cli.serve import main
from rapid_env.serve.client import PolicyClient
from tests.serve.conftest import TOKEN, make_input, serving_process


def serve_main(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``rapid-serve ARGS`` in this process (a refusal returns before serving): code, stderr."""
    code = main(list(args))
    return code, capsys.readouterr().err


def test_the_console_script_is_registered() -> None:
    (ep,) = entry_points(group="console_scripts", name="rapid-serve")
    assert ep.value == "rapid_env.cli.serve:main"


def test_a_policy_without_a_split_runtime_is_refused_with_2(
    token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threads = torch.get_num_threads()
    code, err = serve_main("--policy", "expert", "--token-file", str(token_file), capsys=capsys)
    assert code == 2, err
    assert "'expert' has no split runtime" in err
    assert "chunk-regress, ar-token, flow, ckpt:<dir>" in err
    code, err = serve_main("--policy", "nope", "--token-file", str(token_file), capsys=capsys)
    assert code == 2 and "cannot load policy 'nope'" in err
    assert torch.get_num_threads() == threads  # a refusal changes nothing in this process


def test_unusable_token_files_and_flags_are_refused_with_2(
    tmp_path: Path, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    empty.chmod(0o600)
    code, err = serve_main("--token-file", str(empty), capsys=capsys)
    assert code == 2 and "is empty" in err
    code, err = serve_main("--token-file", str(tmp_path / "missing"), capsys=capsys)
    assert code == 2 and "cannot read token file" in err
    code, err = serve_main("--token-file", str(token_file), "--tls-cert", "c.pem", capsys=capsys)
    assert code == 2 and "go together" in err
    token_file.chmod(0o644)
    code, err = serve_main("--token-file", str(token_file), capsys=capsys)
    assert code == 2 and "chmod 600" in err


def test_sigterm_stops_a_serving_process_with_0(
    token_file: Path, policy: VLAPolicy, policy_spec: str
) -> None:
    """Runs on the shipped model and on a two-camera one: its start-up must warm up every camera."""
    with serving_process("--policy", policy_spec, "--token-file", str(token_file), "--port", "0",
                         "--max-seconds", "90", "--grace-s", "1") as served:
        assert f"cameras {', '.join(policy.model.cfg.cameras)}, splits" in served.serving, (
            served.serving)
        with PolicyClient(f"127.0.0.1:{served.port}", TOKEN, timeout_s=10) as c:
            c.wait_ready()
            assert c.health() == "SERVING"
            inp = make_input(7, cameras=policy.cameras)
            blob = SplitRunner(policy.model, 3).edge(policy.prepare(inp))
            actions, _, _ = c.infer("sub", 3, "", blob)
        local, _ = policy.act_split(inp, 3 / policy.model.n_blocks)
        # another process, maybe another torch thread count: equal up to the kernels' last bit
        np.testing.assert_allclose(actions, local, rtol=0, atol=1e-5)
        served.proc.send_signal(signal.SIGTERM)
        # it stops and exits 0; the timeout only stops a hang
        assert served.proc.wait(timeout=120) == 0
        served.reader.join(60)
        assert "rapid-serve: stopped\n" in list(served.lines.queue)


def test_help_loads_neither_torch_nor_grpc() -> None:
    code = (
        "import runpy, sys; sys.argv = ['rapid-serve', '--help']\n"
        "try:\n    runpy.run_module('rapid_env.cli.serve', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'grpc', 'mujoco') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--token-file" in out.stdout
