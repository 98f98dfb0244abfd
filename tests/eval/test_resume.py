"""kill -9 in the middle of a sweep, then the same command: the uninterrupted run's records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rapid_env.episode import WALL_CLOCK_FIELDS

ARGS = ["--tasks", "reach,push", "--agents", "cloud-only,rapid", "--episodes", "3",
        "--policy", "expert", "--max-episode-s", "1.5", "--image-size", "16",
        "--wandb", "disabled", "--quiet"]


def rapid_eval(out: Path, *extra: str) -> subprocess.Popen[bytes]:
    # A shell running `make test` in the background starts it with SIGINT ignored, and Python
    # installs no KeyboardInterrupt handler for an ignored signal: put Ctrl-C's default back.
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from rapid_env.cli.eval import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.Popen([sys.executable, "-c", code, *ARGS, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "MUJOCO_GL": "egl"})


def records(out: Path) -> dict[str, dict]:
    lines = (out / "episodes.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    by_key = {r["episode_key"]: {k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS}
              for r in recs}
    assert len(by_key) == len(recs), "a key was stored twice"
    return by_key


def wait_for_lines(path: Path, n: int, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists() and len(path.read_bytes().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_sweep_resumes_to_the_uninterrupted_records(tmp_path: Path, signum: int):
    whole = tmp_path / "whole"
    assert rapid_eval(whole).wait(timeout=300) == 0
    expected = records(whole)
    assert len(expected) == 12

    cut = tmp_path / "cut"
    proc = rapid_eval(cut)
    wait_for_lines(cut / "episodes.jsonl", 5)
    proc.send_signal(signum)
    rc = proc.wait(timeout=60)
    assert rc == (-signal.SIGKILL if signum == signal.SIGKILL else 130)
    if signum == signal.SIGINT:
        assert b"rerun the same command to resume" in proc.stderr.read()  # type: ignore[union-attr]
    partial = records(cut)
    assert 5 <= len(partial) < 12

    again = rapid_eval(cut)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err.decode()
    assert f"resuming: {len(partial)} of 12 episodes done".encode() in err
    assert records(cut) == expected
    summary = json.loads((cut / "summary.json").read_text())
    assert sum(row["episodes"] for row in summary) == 12
