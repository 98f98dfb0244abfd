"""Invalid episodes: an infrastructure fault never passes as a result.

A policy fault (NaN after good chunks, an exception, a wrong shape) is data: the episode is
valid and counted. An infrastructure fault (the server gone, an ``episode_error``, a checkpoint
that is non-finite from its first call) makes the episode invalid: left out of success, latency
and pairs, counted in ``invalid``, ``rapid-eval`` exits 3, and the same command runs it again.
The sweeps here are real: MuJoCo episodes, a real ``rapid-serve`` killed by its own
``--max-requests`` and a fresh one on the same port.
"""

from __future__ import annotations

import json
import math
import socket
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rapid_env.eval.paired import paired_rows
from rapid_env.eval.summary import dedupe, summarize
from rapid_env.eval.table import format_table
from rapid_env.record import infrastructure_fault, invalid_reason
from tests.serve.test_remote_loop import Server

QUIET = ["--quiet", "--no-report", "--wandb", "disabled"]
TOKEN = "tok-invalid-3b1e55"


def records(out: Path) -> list[dict[str, Any]]:
    path = out / "episodes.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(out: Path) -> list[dict[str, Any]]:
    return json.loads((out / "summary.json").read_text())


# ----------------------------------------------------------------------------- the taxonomy


@pytest.mark.parametrize(("fault", "infra"), [
    ("remote_error: ServerUnavailable: UNAVAILABLE: failed to connect; connection refused", True),
    ("remote_error: Unauthenticated: UNAUTHENTICATED: missing or wrong bearer token", True),
    ("remote_error: DeadlineExceeded: DEADLINE_EXCEEDED: Deadline Exceeded", True),
    ("remote_error: TimeoutError: the edge part took 9.0 ms, the whole request_timeout_s", True),
    ("remote_error: RequestRejected: CANCELLED: the server is shutting down", True),
    ("remote_error: RequestRejected: INTERNAL: forward failed at split 2: boom", False),
    ("remote_error: RequestRejected: INVALID_ARGUMENT: boundary rejected: bad", False),
    ("remote_error: CorruptReply: CORRUPT_REPLY: reply is (3, 4), expected (8, 4)", False),
    ("episode_error: RuntimeError: worker process died 3 times running this episode", True),
    ("policy_error: ValueError: bad", False),
    ("policy_bad_shape: (8, 3)", False),
    ("policy_nonfinite_action", False),  # the controller decides: only before a finite chunk
    ("sim_diverged: nan in qacc", False),
])
def test_which_faults_are_the_infrastructures(fault: str, infra: bool) -> None:
    assert infrastructure_fault(fault) is infra


def test_an_old_record_is_valid_unless_it_is_an_episode_error() -> None:
    assert invalid_reason({"fault": "remote_error: ServerUnavailable: UNAVAILABLE: x"}) is None
    assert invalid_reason({"fault": "episode_error: OSError: x"}) == "episode_error: OSError: x"
    assert invalid_reason({"fault": None, "invalid": None}) is None
    assert invalid_reason({"fault": "x", "invalid": "remote_error: y"}) == "remote_error: y"


# ----------------------------------------------------------------------------- summaries


def rec(seed: int, agent: str = "a", success: bool = True, latency: float = 10.0,
        invalid: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"task": "reach", "agent": agent, "noise": "clean", "link": "wifi", "seed": seed,
            "episode_key": f"{agent}-{seed}", "success": success, "latency_ms_mean": latency,
            "rms_jerk": 1.0, "offloads": 2, "sim_time_s": 2.0,
            "fault": invalid, "invalid": invalid, **extra}


def test_summarize_leaves_invalid_episodes_out_of_success_and_latency() -> None:
    gone = "remote_error: ServerUnavailable: UNAVAILABLE: connection refused"
    rows = summarize([rec(0), rec(1, success=False, latency=30.0),
                      rec(2, success=False, latency=999.0, invalid=gone),
                      rec(3, success=False, latency=999.0, invalid=gone)])
    (row,) = rows
    assert (row["episodes"], row["valid"], row["invalid"]) == (4, 2, 2)
    assert row["successes"] == 1 and row["success_rate"] == 0.5
    assert row["latency_ms_mean"] == 20.0  # the invalid 999s are not in it
    assert row["latency_ms_mean_nan"] == 2  # so episodes - nan values make the mean
    assert row["faults"] == 0  # faults count valid episodes only: theirs are in invalid
    table = format_table(rows)
    assert "2 valid of 4" in table and "2 valid of 4 episodes" in table.splitlines()[-1]


def test_a_cell_with_only_invalid_episodes_has_no_success_rate() -> None:
    (row,) = summarize([rec(0, invalid="episode_error: OSError: x")])
    assert (row["episodes"], row["valid"], row["invalid"]) == (1, 0, 1)
    assert math.isnan(row["success_rate"]) and math.isnan(row["success_ci_low"])


def test_dedupe_keeps_a_valid_record_over_invalid_tries() -> None:
    bad1 = rec(0, success=False, invalid="remote_error: ServerUnavailable: UNAVAILABLE: 1")
    bad2 = rec(0, success=False, invalid="remote_error: ServerUnavailable: UNAVAILABLE: 2")
    good, other = rec(0), rec(1)
    unique, dropped = dedupe([bad1, other, good, bad2])
    assert unique == [good, other] and dropped == 1  # the invalid try after it is dropped
    unique, dropped = dedupe([bad1, other, bad2])
    assert unique == [bad2, other] and dropped == 0  # the latest invalid try says why
    (row,) = summarize(dedupe([bad1, rec(1), good])[0])
    assert (row["episodes"], row["valid"], row["successes"]) == (2, 2, 2)


def test_paired_comparison_drops_pairs_with_an_invalid_side() -> None:
    gone = "remote_error: ServerUnavailable: UNAVAILABLE: x"
    recs = [rec(0, "base", success=False), rec(1, "base", success=False),
            rec(2, "base", success=False, invalid=gone),
            rec(0, "new"), rec(1, "new", invalid=gone), rec(2, "new")]
    (row,) = paired_rows(recs, baseline="base")
    assert row["n_pairs"] == 1 and row["unpaired"] == 2
    assert row["agent_success"] == 1.0 and row["baseline_success"] == 0.0


# ----------------------------------------------------------------------------- policies


class NaNPolicy:
    """Finite zero chunks for the first ``good`` calls, NaN after: a checkpoint gone bad."""

    needs_image = False

    def __init__(self, name: str, good: int, chunk_size: int = 8) -> None:
        self.name, self.good, self.chunk_size = name, good, chunk_size
        self.calls = 0

    def reset(self, rng: np.random.Generator) -> None:
        self.calls = 0

    def act(self, inp: Any) -> np.ndarray:
        self.calls += 1
        value = 0.0 if self.calls <= self.good else math.nan
        return np.full((self.chunk_size, 4), value, dtype=np.float32)


@pytest.fixture(scope="module")
def nan_policies() -> dict[str, str]:
    from rapid_env.plugins import register_policy

    tag = uuid.uuid4().hex[:8]
    names = {"first": f"nan-first-{tag}", "later": f"nan-later-{tag}"}
    for kind, good in (("first", 0), ("later", 2)):
        name = names[kind]
        register_policy(name, lambda task, chunk_size=8, _n=name, _g=good, **kw:
                        NaNPolicy(_n, _g, chunk_size))
    return names


def nan_sweep(policy: str, out: Path) -> list[str]:
    return ["--policy", policy, "--tasks", "reach", "--agents", "rapid", "--links", "ideal",
            "--episodes", "1", "--max-episode-s", "1", "--image-size", "32", "--out", str(out),
            *QUIET]


def test_a_policy_nan_from_its_first_call_is_invalid_and_runs_again(
    nan_policies: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rapid_env.cli.eval import main

    out = tmp_path / "out"
    assert main(nan_sweep(nan_policies["first"], out)) == 3
    err = capsys.readouterr().err
    assert ("1 episode(s) invalid (infrastructure: nonfinite_first_call: "
            "policy_nonfinite_action); rerun the same command to run them again") in err
    (r,) = records(out)
    assert r["invalid"] == "nonfinite_first_call: policy_nonfinite_action"
    assert r["faults"] > 0 and r["fault"] == "policy_nonfinite_action"
    (row,) = summary(out)
    assert (row["episodes"], row["valid"], row["invalid"]) == (1, 0, 1)
    assert row["success_rate"] is None  # NaN: no valid episode to rate
    # the same command runs it again (still broken: still invalid), and counts it once
    assert main(nan_sweep(nan_policies["first"], out)) == 3
    assert "running 1 invalid episode(s) again" in capsys.readouterr().err
    assert len(records(out)) == 2
    (row,) = summary(out)
    assert (row["episodes"], row["invalid"]) == (1, 1)


def test_a_policy_that_goes_nan_after_good_chunks_is_a_valid_episode_with_faults(
    nan_policies: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rapid_env.cli.eval import main

    out = tmp_path / "out"
    assert main(nan_sweep(nan_policies["later"], out)) == 0, capsys.readouterr().err
    (r,) = records(out)
    assert r["invalid"] is None and r["faults"] > 0 and r["fault"] == "policy_nonfinite_action"
    (row,) = summary(out)
    assert (row["episodes"], row["valid"], row["invalid"]) == (1, 1, 0)


# ----------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_dying_mid_sweep_makes_episodes_invalid_and_a_rerun_completes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rapid_env.cli.eval import main

    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    port = free_port()
    out = tmp_path / "out"
    args = ["--links", f"remote:127.0.0.1:{port}", "--tasks", "reach", "--agents", "cloud-only",
            "--episodes", "3", "--policy", "chunk-regress", "--max-episode-s", "1",
            "--token-file", str(token), "--out", str(out), *QUIET]
    # 3 probe calls when the cell's controller is built, then about 3 requests per 1 s episode:
    # the server stops during the second episode
    doomed = Server(token, tmp_path / "serve1.log", max_requests=7, port=port, max_seconds=240)
    try:
        code = main(args)
    finally:
        doomed.stop()
    err = capsys.readouterr().err
    assert code == 3, err
    first = records(out)
    invalid = [r for r in first if r["invalid"] is not None]
    assert invalid, "the server outlived the sweep: nothing to rerun"
    assert all(r["invalid"].startswith("remote_error: ") and infrastructure_fault(r["invalid"])
               for r in invalid)
    assert f"{len(invalid)} episode(s) invalid (infrastructure: remote_error: " in err
    assert "rerun the same command to run them again" in err
    (row,) = summary(out)
    assert (row["episodes"], row["invalid"], row["valid"]) == (3, len(invalid), 3 - len(invalid))
    valid = [r for r in first if r["invalid"] is None]
    assert row["successes"] == sum(r["success"] for r in valid)  # the invalid ones are not in it

    fresh = Server(token, tmp_path / "serve2.log", max_requests=2000, port=port, max_seconds=240)
    try:
        code = main(args)
    finally:
        fresh.stop()
    assert code == 0, capsys.readouterr().err
    lines = records(out)
    assert len(lines) == 3 + len(invalid)  # the reruns appended, nothing rewritten
    (row,) = summary(out)
    assert (row["episodes"], row["valid"], row["invalid"], row["seeds"]) == (3, 3, 0, 3)
    latest = {r["episode_key"]: r for r in lines if r["invalid"] is None}
    assert sorted(latest) == sorted({r["episode_key"] for r in first})  # each key once, valid
    for r in valid:  # the episodes that were valid did not run again
        assert latest[r["episode_key"]]["record_digest"] == r["record_digest"]


def test_the_report_says_how_many_episodes_its_numbers_rest_on() -> None:
    from rapid_env.eval.report_tables import summary_table, validity_line
    from rapid_env.eval.wandb_tables import cell_summary

    gone = "remote_error: ServerUnavailable: UNAVAILABLE: x"
    recs = [rec(0), rec(1, invalid=gone), rec(2, invalid="episode_error: OSError: y")]
    line = validity_line(recs)
    assert "1 valid of 3 episodes" in line and "<code>remote_error</code>" in line
    assert "<code>episode_error</code>" in line
    assert validity_line([rec(0)]) == ""
    rows = summarize(recs)
    assert "1 valid of 3" in summary_table(rows)
    values = cell_summary(rows[0])
    assert (values["episodes"], values["valid"], values["invalid"]) == (3, 1, 2)
