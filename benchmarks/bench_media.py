"""What charts, the report and videos cost a sweep, side by side in one run.

Runs one small sweep (default policy, wifi) four ways in this process, interleaved over
``--repeats`` rounds, and prints the median wall time of each and its ratio to the first:

1. ``episodes only``: the episodes through the in-process backend, no store, no media (the work
   a sweep cannot avoid); every variant shares that backend, so its controllers are warm;
2. ``run_sweep, --videos 0``: the same through the results store (what ``rapid-eval`` does with
   videos off) — the ratio to (1) is what recording costs when it is off;
3. ``+ report``: (2) and then ``write_report`` (charts rendered with matplotlib, HTML written);
4. ``--videos all``: every episode traced, its frames rendered, the MP4 / series / still written.

Usage::

    python benchmarks/bench_media.py [--episodes 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rapid_env.config import EnvConfig
from rapid_env.eval.backends.serial import SerialBackend
from rapid_env.eval.jobs import SweepSpec, plan
from rapid_env.eval.report import write_report
from rapid_env.eval.runner import run_sweep


def main() -> None:
    """Time the four variants and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    spec = SweepSpec(tasks=("reach", "push"), agents=("rapid", "cloud-only"), links=("wifi",),
                     episodes=a.episodes, seed=1000, base=EnvConfig())
    root = Path(tempfile.mkdtemp(prefix="bench-media-"))
    backend = SerialBackend()  # one backend for every variant: the same warm controllers
    list(backend.run(plan(spec)[:1]))  # build and warm them once, outside the timings
    times: dict[str, list[float]] = {k: [] for k in
                                     ("episodes only", "run_sweep, --videos 0", "+ report",
                                      "--videos all")}
    try:
        for r in range(a.repeats):
            t0 = time.perf_counter()
            list(backend.run(plan(spec)))
            times["episodes only"].append(time.perf_counter() - t0)
            for name, videos, report in (("run_sweep, --videos 0", 0, False),
                                         ("+ report", 0, True),
                                         ("--videos all", a.episodes, False)):
                out = root / f"{name.replace(' ', '_').replace(',', '')}-{r}"
                t0 = time.perf_counter()
                run_sweep(spec, out, backend=backend, videos=videos)
                if report:
                    write_report(out)
                times[name].append(time.perf_counter() - t0)
    finally:
        backend.close()
        shutil.rmtree(root, ignore_errors=True)
    base = statistics.median(times["episodes only"])
    n = len(plan(spec))
    print(f"sweep: {n} episodes (reach, push x rapid, cloud-only, wifi, default policy), "
          f"median of {a.repeats} interleaved rounds\n")
    print(f"{'variant':<24} {'median s':>9} {'ratio':>7}   runs")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<24} {med:>9.2f} {med / base:>7.2f}   "
              + ", ".join(f"{t:.2f}" for t in ts))


if __name__ == "__main__":
    main()
