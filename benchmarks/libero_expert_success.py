"""Success of the scripted LIBERO experts over the suites' fixed initial states.

Runs the per-tick controller closed-loop (no chunking, no latency) in the harness's
``LiberoTask`` from each of a task's fixed initial states (evaluation seed ``s`` picks state
``s``; the task lets the objects settle first) for at most the suite's step limit at 20 Hz
(spatial 220, object 280, goal 300), and prints a per-task success table.
Usage: ``python benchmarks/libero_expert_success.py --suites libero_object,libero_spatial
--states 50 [--tasks 0,3] [--first-state 0]``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from rapid_env.agents.libero_expert import LiberoScriptedController  # noqa: E402
from rapid_env.tasks.libero_suite import suite_tasks, suite_ticks  # noqa: E402
from rapid_env.tasks.libero_task import LiberoTask  # noqa: E402

SUITES = ("libero_object", "libero_spatial", "libero_goal")


def run_episode(task: LiberoTask, seed: int, max_ticks: int) -> tuple[bool, int]:
    """Run the controller closed-loop from the initial state ``seed`` picks; (success, ticks)."""
    ctrl = LiberoScriptedController()
    task.reset(seed=seed)
    for t in range(max_ticks):
        task.simulate_tick(ctrl.action(task.env))
        if task.env._check_success():
            return True, t + 1
    return False, max_ticks


def main() -> None:
    """Print per-task success for the requested suites and initial states."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--suites", default="libero_object,libero_spatial,libero_goal")
    p.add_argument("--states", type=int, default=50, help="initial states per task")
    p.add_argument("--first-state", type=int, default=0)
    p.add_argument("--tasks", default="", help="comma-separated task ids (default: all)")
    p.add_argument("--verbose", action="store_true", help="print every episode")
    args = p.parse_args()
    print("command:", " ".join(shlex.quote(a) for a in ["python", *sys.argv]), flush=True)
    rows = []
    for suite_name in args.suites.split(","):
        if suite_name not in SUITES:
            raise ValueError(f"unknown suite {suite_name!r}; allowed: {', '.join(SUITES)}")
        names = suite_tasks(suite_name)
        ids = [int(t) for t in args.tasks.split(",")] if args.tasks else range(len(names))
        for tid in ids:
            name = names[tid]
            task = LiberoTask(name, image_size=16)
            max_ticks = suite_ticks(name, 20)
            wins, steps = 0, []
            seeds = range(args.first_state, args.first_state + args.states)
            t0 = time.time()
            for s in seeds:
                ok, n = run_episode(task, s, max_ticks)
                wins += ok
                steps.append(n)
                if args.verbose:
                    print(f"  {name} state {s}: {'ok' if ok else 'FAIL'} {n}", flush=True)
            task.close()
            rows.append((suite_name, tid, task.instruction, wins, len(seeds)))
            print(f"{name:18s} {wins:3d}/{len(seeds):<3d} mean ticks {np.mean(steps):5.1f} "
                  f"{time.time() - t0:5.0f}s  {task.instruction}", flush=True)
    print("\n| suite | task | instruction | success |\n|---|---|---|---|")
    for suite_name, tid, language, wins, n in rows:
        print(f"| {suite_name} | {tid} | {language} | {wins}/{n} ({100 * wins / n:.0f} %) |")
    for suite_name in dict.fromkeys(r[0] for r in rows):
        w = sum(r[3] for r in rows if r[0] == suite_name)
        n = sum(r[4] for r in rows if r[0] == suite_name)
        print(f"{suite_name}: {w}/{n} = {100 * w / n:.1f} %")


if __name__ == "__main__":
    main()
