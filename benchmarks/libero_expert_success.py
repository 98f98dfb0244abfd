"""Success of the scripted LIBERO experts over the suites' fixed initial states.

Runs the per-tick controller closed-loop (no chunking, no latency) from each of a task's
initial states for at most the suite's step limit, and prints a per-task success table.
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

# The suites' step limits at 20 Hz, as the LIBERO papers evaluate them.
MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520}


def make_env(suite_name: str, task_id: int):  # noqa: ANN201 - LIBERO's ControlEnv
    """A state-only ``ControlEnv`` for one task, and the task's initial states."""
    from libero.libero import benchmark, get_libero_path
    from libero.libero.envs.env_wrapper import ControlEnv

    suites = benchmark.get_benchmark_dict()
    if suite_name not in suites:
        raise ValueError(f"unknown LIBERO suite {suite_name!r}; allowed: {', '.join(suites)}")
    suite = suites[suite_name]()
    task = suite.get_task(task_id)
    bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
    env = ControlEnv(
        bddl_file_name=bddl, has_renderer=False, has_offscreen_renderer=False,
        use_camera_obs=False,
    )
    return env, suite.get_task_init_states(task_id), task.language


def run_episode(env, init_state: np.ndarray, max_steps: int) -> tuple[bool, int]:  # noqa: ANN001
    """Run the controller from ``init_state``; (success, steps taken)."""
    from rapid_env.agents.libero_expert import LiberoScriptedController

    ctrl = LiberoScriptedController()
    env.reset()
    env.set_init_state(init_state)
    for t in range(max_steps):
        _, _, done, _ = env.step(ctrl.action(env.env))
        if done:
            return True, t + 1
    return False, max_steps


def main() -> None:
    """Print per-task success for the requested suites and initial states."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--suites", default="libero_object,libero_spatial")
    p.add_argument("--states", type=int, default=50, help="initial states per task")
    p.add_argument("--first-state", type=int, default=0)
    p.add_argument("--tasks", default="", help="comma-separated task ids (default: all)")
    p.add_argument("--verbose", action="store_true", help="print every episode")
    args = p.parse_args()
    print("command:", " ".join(shlex.quote(a) for a in ["python", *sys.argv]), flush=True)
    rows = []
    for suite_name in args.suites.split(","):
        if suite_name not in MAX_STEPS:
            raise ValueError(f"unknown suite {suite_name!r}; allowed: {', '.join(MAX_STEPS)}")
        task_ids = [int(t) for t in args.tasks.split(",")] if args.tasks else list(range(10))
        for tid in task_ids:
            env, inits, language = make_env(suite_name, tid)
            env.seed(0)
            wins, steps = 0, []
            states = range(args.first_state, min(args.first_state + args.states, len(inits)))
            t0 = time.time()
            for s in states:
                ok, n = run_episode(env, inits[s], MAX_STEPS[suite_name])
                wins += ok
                steps.append(n)
                if args.verbose:
                    print(f"  {suite_name}/{tid} state {s}: {'ok' if ok else 'FAIL'} {n}",
                          flush=True)
            env.close()
            rows.append((suite_name, tid, language, wins, len(states)))
            print(f"{suite_name:15s} {tid:2d} {wins:3d}/{len(states):<3d} "
                  f"mean steps {np.mean(steps):5.1f}  {time.time() - t0:5.0f}s  {language}",
                  flush=True)
    print("\n| suite | task | instruction | success |\n|---|---|---|---|")
    for suite_name, tid, language, wins, n in rows:
        print(f"| {suite_name} | {tid} | {language} | {wins}/{n} ({100 * wins / n:.0f} %) |")
    for suite_name in dict.fromkeys(r[0] for r in rows):
        w = sum(r[3] for r in rows if r[0] == suite_name)
        n = sum(r[4] for r in rows if r[0] == suite_name)
        print(f"{suite_name}: {w}/{n} = {100 * w / n:.1f} %")


if __name__ == "__main__":
    main()
