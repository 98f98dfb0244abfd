"""What a fleet costs to simulate: per robot-tick closed loop, per request replayed.

Runs, in one process and one go (this machine is shared and noisy, so the figures are
side by side, not against a stored number):

1. a closed-loop fleet of ``--robots`` robots (Meta-World, ``--policy``, 10 s episodes unless a
   robot succeeds first) on one GPU, timed on the wall clock: seconds per robot-tick, and the
   fleet's wall time against its simulated time;
2. the same robots one after another as ``rapid-eval`` runs them (each alone), for the ratio:
   what the fleet's lockstep loop, its shared cloud and its bookkeeping add per robot-tick;
3. a trace-driven replay of the closed-loop fleet's recorded requests at ``--replay-robots``
   robots: seconds per request.

Usage::

    python benchmarks/bench_fleet.py                       # 8 robots, a few minutes
    python benchmarks/bench_fleet.py --robots 32 --replay-robots 10000
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")


def main(argv: Sequence[str] | None = None) -> int:
    """Time the three runs and print them side by side."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--robots", type=int, default=8)
    ap.add_argument("--replay-robots", type=int, default=1000)
    ap.add_argument("--tasks", default="mt10")
    ap.add_argument("--agent", default="rapid")
    ap.add_argument("--policy", default="chunk-regress")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2,
                    help="timed rounds of each, alternating (after one untimed warm-up fleet)")
    args = ap.parse_args(argv)

    from rapid_env.compose import build_controller, build_decider
    from rapid_env.config import EnvConfig
    from rapid_env.cost import build_cost_model
    from rapid_env.episode import run_episode
    from rapid_env.eval.fleet import FleetJob, robot_jobs, run_fleet_job
    from rapid_env.eval.jobs import SweepSpec
    from rapid_env.fleet.queue import BatchPolicy
    from rapid_env.fleet.replay import replay
    from rapid_env.tasks.suite import expand_tasks

    tasks = expand_tasks((args.tasks,)) if "," not in args.tasks else tuple(
        args.tasks.split(","))
    sweep = SweepSpec(tasks=tasks, agents=(args.agent,), links=("lab-wifi6",), episodes=1,
                      seed=args.seed, base=EnvConfig(task=tasks[0], policy=args.policy))
    job = FleetJob(args.agent, "lab-wifi6", args.robots, BatchPolicy(1), sweep)

    def fleet() -> tuple[float, int, Any]:
        t0 = time.perf_counter()
        records, result = run_fleet_job(job)
        return time.perf_counter() - t0, sum(r["steps"] for r in records), result

    def alone() -> tuple[float, int]:
        t0 = time.perf_counter()
        ticks = 0
        for ej in robot_jobs(job):  # each robot alone, built and run as rapid-eval would
            decider = build_decider(ej.agent)
            controller = build_controller(ej.config, bool(decider.needs_image))
            ticks += run_episode(controller, decider, ej.seed)["steps"]
        return time.perf_counter() - t0, ticks

    fleet()  # warm-up: imports, the policy's first load, MuJoCo's and EGL's first contexts
    runs_fleet, runs_alone = [], []
    for i in range(args.rounds):  # alternating, so a change in the machine's load hits both
        if i % 2 == 0:
            runs_alone.append(alone())
            runs_fleet.append(fleet())
        else:
            runs_fleet.append(fleet())
            runs_alone.append(alone())
    fleet_s = statistics.median(r[0] for r in runs_fleet)
    ticks = runs_fleet[0][1]
    result = runs_fleet[0][2]
    alone_s = statistics.median(r[0] for r in runs_alone)
    alone_ticks = runs_alone[0][1]

    model = build_cost_model(sweep.base.profile, sweep.base.edge, sweep.base.cloud)
    gpus = max(1, args.replay_robots // 8)
    t0 = time.perf_counter()
    rep = replay(result.timelines, args.replay_robots, BatchPolicy(gpus), model,
                 result.sim_time_s, seed=args.seed)
    replay_s = time.perf_counter() - t0
    n_req = rep.latencies_s.size

    print(f"closed-loop fleet: {args.robots} robots ({args.agent}, {args.policy}, "
          f"{', '.join(tasks[:3])}{' ...' if len(tasks) > 3 else ''}), one GPU")
    print(f"median of {args.rounds} alternating rounds after a warm-up")
    print("| run | robot-ticks | wall s | ms per robot-tick | simulated s | wall / simulated |")
    print("|---|---|---|---|---|---|")
    print(f"| fleet, lockstep, shared cloud | {ticks} | {fleet_s:.1f} | "
          f"{1e3 * fleet_s / ticks:.2f} | {result.sim_time_s:.1f} | "
          f"{fleet_s / result.sim_time_s:.1f} |")
    print(f"| the same robots alone, one after another | {alone_ticks} | {alone_s:.1f} | "
          f"{1e3 * alone_s / alone_ticks:.2f} | - | - |")
    print(f"fleet / alone, per robot-tick: {(fleet_s / ticks) / (alone_s / alone_ticks):.2f}x")
    print(f"replay: {args.replay_robots} robots on {gpus} GPUs, {n_req} requests in "
          f"{replay_s:.2f} s wall = {1e6 * replay_s / max(n_req, 1):.1f} us per request "
          f"(p95 {rep.p(95):.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
