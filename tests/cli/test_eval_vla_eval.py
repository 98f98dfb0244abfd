"""``rapid-eval --policy vla-eval:ws://...`` against vla-eval's *own* model server (vla-eval 0.8.0).

vla-eval's ``serve_async`` (in a thread, on a free local port, stopped by the test) serving the
shipped ``chunk-regress`` through a ``PredictModelServer`` that reads vla-eval's LIBERO keys
(:mod:`tests.agents.vla_eval_servers`). It must give the in-process records but for the policy's
name (and what derives from it) and the fields a real network measures; each episode is one
EPISODE_START with its instruction; a model that raises is the policy's fault; a server that goes
away makes the episode invalid (exit 3); a bad URL or no server is one line and exit 2;
``--policy-timing measured`` times it by its round trips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rapid_env.cli.eval import main
from rapid_env.cli.policy_server import build_adapter
from rapid_env.record import infrastructure_fault
from rapid_env.tasks.suite import get_task
from tests.agents.vla_eval_servers import Recording, ServedRapidPolicy, vla_eval_serving
from tests.cli.test_eval_openpi import _records, served_as_in_process
from tests.cli.test_eval_openpi_reference_server import FAST

SHORT = ["--tasks", "reach", "--agents", "cloud-only", "--episodes", "1", "--max-episode-s", "1",
         "--wandb", "disabled", "--quiet", "--no-report"]


def _served(task: str = "reach", **kw: object) -> ServedRapidPolicy:
    adapter, _ = build_adapter("chunk-regress", task, 8, 0)
    return ServedRapidPolicy(adapter, **kw)


@pytest.mark.slow
def test_vla_evals_server_gives_the_in_process_records(tmp_path: Path) -> None:
    model = _served()
    with vla_eval_serving(model) as url:
        code = main(["--tasks", "reach,push", *FAST, "--policy", f"vla-eval:{url}",
                     "--out", str(tmp_path / "served")])
    assert code == 0
    pairs = served_as_in_process(tmp_path / "served", ["--tasks", "reach,push", *FAST],
                                 tmp_path / "local")
    assert len(pairs) == 4
    served = [s for s, _ in pairs]
    for s, loc in pairs:
        assert s["policy"] == f"vla-eval:{url}" and loc["policy"] == "chunk-regress"
        assert s["fault"] is None and s["invalid"] is None and s["inferences"]
        assert s["latency_timing"] == "profile" and s["measured_rtt_ms_mean"] > 0
    # one EPISODE_START per episode, each with its task's instruction and a seed
    names = sorted(start["task"]["name"] for start in model.starts)
    assert names == sorted(2 * [get_task("reach").instruction, get_task("push").instruction])
    assert all(isinstance(start["seed"], int) for start in model.starts)
    assert sum(int(r["inferences"]) for r in served) == len(model.seen)


def test_a_model_that_raises_is_the_policys_fault(tmp_path: Path) -> None:
    def broken(obs: dict[str, object]) -> object:
        raise RuntimeError("CUDA out of memory (a model's own failure)")

    with vla_eval_serving(Recording(broken)) as url:
        code = main([*SHORT, "--max-episode-s", "0.3", "--policy", f"vla-eval:{url}",
                     "--out", str(tmp_path / "b")])
    (rec,) = _records(tmp_path / "b")
    assert code == 0 and rec["invalid"] is None  # the model's fault: a valid, failed episode
    assert str(rec["fault"]).startswith("remote_error: RequestRejected: INTERNAL: "
                                        "observation_failed: RuntimeError: CUDA out of memory")


def test_server_gone_mid_episode_is_invalid_and_exits_3(tmp_path: Path) -> None:
    with vla_eval_serving(_served(stop_after=1)) as url:  # stops on its second observation
        code = main([*SHORT, "--policy", f"vla-eval:{url}", "--out", str(tmp_path / "r")])
    assert code == 3
    (rec,) = _records(tmp_path / "r")
    assert str(rec["invalid"]).startswith("remote_error: ServerUnavailable: UNAVAILABLE: ")
    assert infrastructure_fault(str(rec["invalid"])) and rec["inferences"] >= 2


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "ws://127.0.0.1", "free"])
def test_malformed_url_or_no_server_is_one_line_and_exit_2(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if url == "free":
        with vla_eval_serving(Recording(lambda obs: None)) as free:
            url = free  # a port that was free a moment ago: nothing listens there now
    assert main([*SHORT, "--policy", f"vla-eval:{url}", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rapid-eval: error: ") and err.count("\n") == 1, err
    assert ("expected vla-eval:ws://<host>:<port>" in err
            or "no vla-eval server reachable at" in err)


def test_measured_timing_follows_the_round_trips(tmp_path: Path) -> None:
    with vla_eval_serving(_served()) as url:
        code = main([*SHORT, "--policy", f"vla-eval:{url}", "--policy-timing", "measured",
                     "--out", str(tmp_path / "m")])
    assert code == 0
    (rec,) = _records(tmp_path / "m")
    assert rec["latency_timing"] == "measured"
    assert rec["fault"] is None and rec["invalid"] is None and rec["lost_requests"] == 0
    assert rec["inferences"] >= 2 and rec["latency_n"] >= 1 and rec["latency_ms_mean"] > 0
    assert rec["measured_rtt_ms_mean"] > 0 and rec["server_ms_mean"] is None
    assert rec["edge_ms_mean"] == 0.0 and rec["bytes_up"] > 0
