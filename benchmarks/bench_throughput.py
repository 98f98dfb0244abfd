"""Sweep throughput, side by side in one run: serial, ``--workers 2`` and the Ray backend.

For each backend it runs the same ``rapid-eval`` sweep (the default agents and policy over a few
MT10 tasks) as a subprocess into a fresh folder and prints:

* episodes per hour per core and the real-time factor per core (simulated seconds per wall second,
  divided by the cores used), over the sweep's wall time from the first record to the last;
* the scaling efficiency from 1 to 2 workers (throughput ratio / 2);
* the start-up time: from launching ``rapid-eval`` to the start of its first episode (the first
  record's arrival minus that episode's own ``wall_time_s``): imports, preflight (loading the
  policy and every agent), building the first controller.

The machines this runs on are shared, so the three runs are taken back to back in one process and
printed together; compare ratios, not absolute numbers across runs. Usage::

    python benchmarks/bench_throughput.py [--tasks reach,push,drawer-close] [--episodes 2]
    python benchmarks/bench_throughput.py --tasks libero_object/0,libero_spatial/0 \
        --policy chunk-regress-libero      # the LIBERO suite (episodes at each suite's limit)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run(out: Path, args: list[str]) -> dict[str, Any]:
    """Run rapid-eval into ``out``; time its start-up and its episodes."""
    exe = Path(sys.executable).with_name("rapid-eval")
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    path = out / "episodes.jsonl"
    t0 = time.monotonic()
    proc = subprocess.Popen([str(exe), *args, "--out", str(out), "--wandb", "disabled", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    first_at = None
    while proc.poll() is None:
        if first_at is None and path.exists() and path.stat().st_size:
            first_at = time.monotonic() - t0
        time.sleep(0.02)
    total = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"rapid-eval failed ({proc.returncode}): {proc.stderr.read().decode()}")
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    first_at = first_at if first_at is not None else total
    startup = first_at - float(recs[0]["wall_time_s"])
    return {"episodes": len(recs), "sim_s": sum(r["sim_time_s"] for r in recs),
            "episode_wall_s": total - startup, "startup_s": startup, "total_s": total,
            "success": sum(bool(r["success"]) for r in recs)}


def main() -> None:
    """Run the three backends and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--tasks", default="reach,push,drawer-close")
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--policy", default="chunk-regress")
    p.add_argument("--max-episode-s", type=float, default=None,
                   help="episode length (default: each suite's own)")
    p.add_argument("--skip-ray", action="store_true")
    a = p.parse_args()
    sweep = ["--tasks", a.tasks, "--episodes", str(a.episodes), "--policy", a.policy]
    if a.max_episode_s is not None:
        sweep += ["--max-episode-s", f"{a.max_episode_s:g}"]
    variants = [("serial", 1, []), ("--workers 2", 2, ["--workers", "2"])]
    if not a.skip_ray:
        variants.append(("--backend ray (2 CPUs)", 2, ["--backend", "ray", "--workers", "2"]))
    root = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    rows = []
    try:
        for name, cores, extra in variants:
            res = run(root / name.replace(" ", "_").replace("-", ""), [*sweep, *extra])
            per_core = res["episode_wall_s"] * cores
            rows.append((name, cores, res, 3600 * res["episodes"] / per_core,
                         res["sim_s"] / per_core))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"sweep: rapid-eval {' '.join(sweep)} (default agents rapid,edge-only,cloud-only; "
          f"policy {a.policy}; {os.cpu_count()} cores on this machine)\n")
    print(f"{'backend':<24} {'cores':>5} {'episodes':>8} {'sim s':>7} {'wall s':>7} "
          f"{'ep/h/core':>10} {'RTF/core':>9} {'start-up s':>10}")
    for name, cores, res, eph, rtf in rows:
        print(f"{name:<24} {cores:>5} {res['episodes']:>8} {res['sim_s']:>7.1f} "
              f"{res['episode_wall_s']:>7.1f} {eph:>10.0f} {rtf:>9.2f} {res['startup_s']:>10.2f}")
    serial_rate = rows[0][2]["episodes"] / rows[0][2]["episode_wall_s"]
    two_rate = rows[1][2]["episodes"] / rows[1][2]["episode_wall_s"]
    print(f"\nscaling efficiency 1 -> 2 workers: {two_rate / serial_rate / 2:.2f} "
          f"(throughput x{two_rate / serial_rate:.2f})")


if __name__ == "__main__":
    main()
