"""A sweep on an implausible trace says so once, from its preflight, however many workers run it."""

from __future__ import annotations

import json

import pytest

from rapid_env.cli.eval import main
from rapid_env.link import TraceWarning


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_a_dead_trace_warns_once_per_sweep_and_still_runs(tmp_path, capfd, workers):
    trace = tmp_path / f"far{workers}.mahi"
    trace.write_text("10000000000000\n")  # one packet after 317 years: ms read as something else
    out = tmp_path / "out"
    args = ["--tasks", "reach", "--agents", "cloud-only", "--links", f"trace:{trace}",
            "--episodes", "2", "--max-episode-s", "0.5", "--image-size", "16", "--policy",
            "expert", "--wandb", "disabled", "--quiet", "--no-report", "--workers", str(workers),
            "--out", str(out)]
    with pytest.warns(TraceWarning) as record:
        assert main(args) == 0
    said = [str(w.message) for w in record if issubclass(w.category, TraceWarning)]
    assert len(said) == 1 and str(trace) in said[0] and "spans 317 years" in said[0]
    assert "TraceWarning" not in capfd.readouterr().err  # the spawned workers stay quiet
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["latency_ms_mean"] is None for r in records)
