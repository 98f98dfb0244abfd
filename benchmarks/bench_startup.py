"""How fast the commands answer: ``--help`` of every console script, and rapid-eval's first episode.

Targets: every ``--help`` under 1 s (median of 3 runs), and ``rapid-eval``'s first episode
recorded under 3 s after the process starts. Each figure is a whole process, started the way a
user starts it (the console script in the venv's ``bin/``), timed with ``time.perf_counter`` from
``Popen`` to exit (``--help``) or to the first line in ``episodes.jsonl`` (first episode). The
first episode runs one task, one agent and a 1 s episode on the default link, serial backend, no
W&B, no report: once with the default policy (``chunk-regress``: a torch model, so torch and
transformers load first) and once with the scripted expert (no torch), which shows what the
harness itself costs.

Usage: ``python benchmarks/bench_startup.py [--runs 3]``. Prints a table with the median, min and
max of each figure beside its target, so a loaded machine shows as a wide min-max spread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HELP_TARGET_S = 1.0
FIRST_EPISODE_TARGET_S = 3.0


def time_help(script: str) -> float:
    """Seconds from start to exit of ``<script> --help``."""
    t0 = time.perf_counter()
    subprocess.run([str(BIN / script), "--help"], check=True, capture_output=True)
    return time.perf_counter() - t0


def time_first_episode(policy: str = "chunk-regress") -> float:
    """Seconds from start of ``rapid-eval`` to its first stored record, driven by ``policy``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        episodes = out / "episodes.jsonl"
        cmd = [str(BIN / "rapid-eval"), "--tasks", "reach", "--agents", "cloud-only",
               "--episodes", "1", "--max-episode-s", "1", "--policy", policy,
               "--wandb", "disabled", "--no-report", "--quiet", "--out", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "WANDB_MODE": "disabled"})
        while proc.poll() is None:
            if episodes.exists() and episodes.stat().st_size > 0:
                break
            time.sleep(0.01)
        took = time.perf_counter() - t0
        proc.wait()
        if not episodes.exists() or episodes.stat().st_size == 0:
            raise RuntimeError(f"rapid-eval wrote no record (exit {proc.returncode})")
        return took


def main() -> None:
    """Time every console script's --help and rapid-eval's first episode; print the table."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    scripts = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
    rows: list[tuple[str, list[float], float]] = []
    for script in scripts:
        rows.append((f"{script} --help", [time_help(script) for _ in range(a.runs)],
                     HELP_TARGET_S))
    for policy in ("chunk-regress", "expert"):
        rows.append((f"rapid-eval first episode, {policy}",
                     [time_first_episode(policy) for _ in range(a.runs)], FIRST_EPISODE_TARGET_S))
    print(f"{'command':<40} {'median s':>9} {'min':>6} {'max':>6} {'target':>7}  met")
    for name, times, target in rows:
        med = statistics.median(times)
        print(f"{name:<40} {med:9.2f} {min(times):6.2f} {max(times):6.2f} {target:7.1f}  "
              f"{'yes' if med < target else 'NO'}")


if __name__ == "__main__":
    main()
