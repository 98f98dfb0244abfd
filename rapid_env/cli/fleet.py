"""``rapid-fleet``: many robots sharing one cloud (and a wireless cell), in one virtual clock.

For every fleet size in ``--robots``, link in ``--links`` and decider in ``--agents``, runs one
fleet: N robots drawn from the tasks and noises (robot i: task i mod T, seed + i, the same for
every decider), each on its own instance of the link, all sending to one cloud of ``--gpus``
GPUs that queues and batches (``--max-batch``, ``--max-wait-ms``), optionally through one
wireless cell (``--cell``). Writes into ``OUT/``: ``episodes.jsonl`` (every robot's record: the
single-robot record plus ``queue_ms_mean``, ``queue_ms_p95``, ``batch_size_mean``,
``airtime_share`` ...), ``fleets.jsonl`` and ``fleet_summary.json`` / ``.csv`` (per fleet:
requests/s, GPU utilisation, latency p50/p95/p99, success, stall share, time to success), and
``requests.jsonl`` (each robot's request times). The same command resumes: finished fleets are
skipped.

``--capacity --slo-p95-ms X`` instead finds, per decider and link, the most robots the cloud
serves with chunk latency p95 <= X ms (and success >= ``--min-success``), by doubling then
bisecting the fleet size; it writes ``OUT/capacity.json`` and ``OUT/capacity.md`` and prints the
table.

Exit codes: 0 every fleet ran; 2 bad input; 3 a fleet could not run (its error is printed and in
``fleet_summary.json``); 130 interrupted (finished fleets are kept).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rapid_env.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_EPISODE_ERRORS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    make_parser,
)
from rapid_env.cli.eval import _agent_specs, _csv, _model_flags, _out_dir, controller_cap

if TYPE_CHECKING:
    from rapid_env.eval.fleet import FleetJob, FleetSpec
    from rapid_env.eval.fleet_replay import Recording
    from rapid_env.eval.fleet_store import FleetStore
    from rapid_env.fleet.queue import BatchPolicy
    from rapid_env.fleet.replay import ReplayMode

__all__ = ["build_parser", "main", "parse"]

EXAMPLES = (
    "rapid-fleet --robots 8 --agents rapid,cloud-only --tasks push,reach --out runs/fleet8",
    "rapid-fleet --robots 1,8,32 --links lab-wifi6 --cell link --out runs/fleet-cell",
    "rapid-fleet --capacity --slo-p95-ms 200 --agents rapid,cloud-only --max-robots 64 "
    "--out runs/capacity",
)


def _gpus(text: str) -> int | None:
    if text in ("unbounded", "inf", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}; allowed: an int >= 1, or 'unbounded' (a GPU per request)")
    return value


def _robots(text: str) -> tuple[int, ...]:
    from rapid_env.eval.fleet_replay import MAX_REPLAY_ROBOTS as MAX_ROBOTS

    out = []
    for part in _csv(text):
        try:
            n = int(part)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_ROBOTS:
            raise argparse.ArgumentTypeError(f"{part!r}; allowed: ints in 1..{MAX_ROBOTS}")
        out.append(n)
    return tuple(dict.fromkeys(out))


def build_parser() -> argparse.ArgumentParser:
    """The command line: the fleet, the cloud it shares, the model, the output."""
    from rapid_env.link import LINKS

    p = make_parser("rapid-fleet", (__doc__ or "").splitlines()[0].replace("``", ""), EXAMPLES)
    g = p.add_argument_group("the fleet")
    g.add_argument("--robots", type=_robots, default=(8,),
                   help="comma-separated fleet sizes; one fleet per size, link and decider")
    g.add_argument("--tasks", type=_csv, default=("push", "pick-place", "peg-insert-side"),
                   help="tasks the robots run, robot i the (i mod T)-th (a suite name such as "
                        "mt10 expands)")
    g.add_argument("--agents", type=_agent_specs, default=("rapid", "cloud-only"),
                   help="comma-separated deciders; each gets its own fleet on the same robots")
    g.add_argument("--noise", type=_csv, default=("clean",),
                   help="comma-separated noise specs, robot i the ((i // T) mod K)-th")
    g.add_argument("--links", type=_csv, default=("lab-wifi6",),
                   help="comma-separated link specs (" + ", ".join(LINKS.names()) + "); every "
                        "robot gets its own instance")
    g.add_argument("--seed", type=int, default=1000, help="robot i runs seed + i")
    g.add_argument("--stagger-s", type=float, default=1.0,
                   help="robots start at a tick drawn in [0, S) (the first at 0); 0: together")
    g.add_argument("--import", dest="imports", type=_csv, action="append", default=[],
                   metavar="MODULE", help="import MODULE first (it registers names)")
    c = p.add_argument_group("the cloud and the cell they share")
    c.add_argument("--gpus", type=_gpus, default=1,
                   help="GPUs serving the queue, or 'unbounded' (a GPU per request: no queue)")
    c.add_argument("--max-batch", type=int, default=1, help="most requests per batch (B)")
    c.add_argument("--max-wait-ms", type=float, default=0.0,
                   help="longest a batch's head waits for the batch to fill (W)")
    c.add_argument("--cell", default=None, metavar="SPEC",
                   help="one wireless cell shared by the robots' transfers: 'link' (the link's "
                        "mean bandwidth as the cell's capacity), or UP:DOWN in Mbit/s; "
                        "default: none, every robot's link is its own")
    _model_flags(p.add_argument_group("the policy, its cost model and the robot"))
    o = p.add_argument_group("output, capacity")
    o.add_argument("--out", type=_out_dir, default=None,
                   help="output folder; the same command resumes it (default: runs/fleet-<time>)")
    o.add_argument("--overwrite", action="store_true", help="start afresh in --out")
    o.add_argument("--capacity", action="store_true",
                   help="find the most robots within --slo-p95-ms per decider and link")
    o.add_argument("--slo-p95-ms", type=float, default=None,
                   help="--capacity: the chunk-latency p95 a fleet must stay within")
    o.add_argument("--min-success", type=float, default=None,
                   help="--capacity: and the success rate it must keep (0..1)")
    o.add_argument("--max-robots", type=int, default=64,
                   help="--capacity: the largest fleet probed")
    r = p.add_argument_group("trace-driven: recorded requests replayed, no physics")
    r.add_argument("--replay", type=Path, default=None, metavar="RUN",
                   help="replay the request timelines a rapid-fleet run recorded in RUN (best "
                        "recorded with --gpus unbounded) at the --robots sizes, into the cloud "
                        "the flags above describe; with --capacity, bisect N the same way")
    r.add_argument("--replay-mode", choices=("fixed", "reactive"), default="fixed",
                   help="fixed: every request at its recorded time; reactive: a robot's next "
                        "request waits as long after its chunk as it did when recorded (later "
                        "chunks, later requests; docs/fleet.md compares the two)")
    r.add_argument("--gpus-needed", action="store_true",
                   help="with --replay and --slo-p95-ms: the fewest GPUs per --robots size "
                        "that keep chunk latency p95 within the SLO (OUT/gpus_needed.json, .md)")
    o.add_argument("--backend", choices=("serial", "ray"), default="serial",
                   help="run the fleets here one after another, or as Ray tasks (one fleet per "
                        "task; --capacity and --replay run here)")
    o.add_argument("--workers", type=int, default=1,
                   help="--backend ray: CPUs of the local Ray cluster it starts")
    o.add_argument("--address", default=None,
                   help="--backend ray: a running cluster's address instead of a local one")
    o.add_argument("--wandb", default=None, choices=("online", "offline", "disabled"),
                   help="W&B mode (default: offline unless an API key is configured)")
    o.add_argument("--project", default=None, help="W&B project")
    o.add_argument("--quiet", action="store_true", help="no line per finished fleet")
    return p


@dataclass(frozen=True)
class FleetInvocation:
    """A parsed and checked ``rapid-fleet`` command."""

    spec: FleetSpec
    out: Path
    overwrite: bool
    capacity: bool
    slo_p95_ms: float | None
    min_success: float | None
    max_robots: int
    wandb: str | None
    project: str | None
    quiet: bool
    command: str
    replay: Path | None = None
    gpus_needed: bool = False
    backend: str = "serial"
    workers: int = 1
    address: str | None = None
    replay_mode: str = "fixed"


def parse(argv: Sequence[str] | None) -> FleetInvocation:
    """Parse and check the flags; ValueError names the bad value and the allowed ones."""
    args = build_parser().parse_args(argv)
    from rapid_env.config import ControlConfig, EnvConfig
    from rapid_env.eval.fleet import MAX_ROBOTS, FleetSpec
    from rapid_env.eval.jobs import SweepSpec
    from rapid_env.fleet.queue import BatchPolicy
    from rapid_env.plugins import import_modules, load_plugins
    from rapid_env.tasks.suite import expand_tasks

    load_plugins()
    import_modules(tuple(dict.fromkeys(m for group in args.imports for m in group)))
    tasks = expand_tasks(args.tasks)
    if args.max_batch < 1:
        raise ValueError(f"--max-batch {args.max_batch}; allowed: an int >= 1")
    if not (math.isfinite(args.max_wait_ms) and args.max_wait_ms >= 0):
        raise ValueError(f"--max-wait-ms {args.max_wait_ms}; allowed: a finite number >= 0")
    if not (math.isfinite(args.stagger_s) and 0 <= args.stagger_s <= 60):
        raise ValueError(f"--stagger-s {args.stagger_s}; allowed: 0..60 seconds")
    if args.replay is None and max(args.robots) > MAX_ROBOTS:
        raise ValueError(f"--robots {max(args.robots)}; allowed: 1..{MAX_ROBOTS} for a "
                         "closed-loop fleet (more with --replay, which runs no physics)")
    if args.backend == "ray" and args.address is None:
        from rapid_env.eval.backends.ray_backend import check_local_cpus

        check_local_cpus(args.workers)
    if args.gpus_needed and args.replay is None:
        raise ValueError("--gpus-needed replays recorded requests; give --replay RUN")
    if args.replay is not None and not (args.replay / "requests.jsonl").exists():
        raise ValueError(f"--replay {str(args.replay)!r} has no requests.jsonl; allowed: the "
                         "--out folder of a rapid-fleet run")
    if args.capacity or args.gpus_needed:
        what = "--capacity" if args.capacity else "--gpus-needed"
        if args.slo_p95_ms is None or not args.slo_p95_ms > 0:
            raise ValueError(f"{what} needs --slo-p95-ms > 0; got {args.slo_p95_ms}")
        if not 1 <= args.max_robots <= MAX_ROBOTS:
            raise ValueError(f"--max-robots {args.max_robots}; allowed: 1..{MAX_ROBOTS}")
    if args.min_success is not None and not 0 <= args.min_success <= 1:
        raise ValueError(f"--min-success {args.min_success}; allowed: 0..1")
    if args.cell is not None:
        from rapid_env.fleet.cell import parse_cell

        parse_cell(args.cell, 1.0)  # its form; 'link' takes the link's bandwidth per fleet
    base = EnvConfig(
        task=tasks[0], policy=args.policy, profile=args.profile, edge=args.edge,
        cloud=args.cloud, image_size=args.image_size, control_hz=args.control_hz,
        chunk_size=args.chunk_size,
        max_episode_s=10.0 if args.max_episode_s is None else args.max_episode_s,
        control=ControlConfig(hold_policy=args.hold_policy, align=args.align,
                              max_in_flight=controller_cap(args.agents, None)),
        trust_checkpoint_code=args.trust_checkpoint_code, edge_budget_gib=args.edge_budget_gib,
        placement=args.placement, loop_cost=args.loop_cost,
        action_contract=args.action_contract,
    )
    sweep = SweepSpec(tasks=tasks, agents=args.agents, noises=args.noise, links=args.links,
                      episodes=1, seed=args.seed, base=base)
    from rapid_env.eval.preflight import preflight
    from rapid_env.link import link_transport

    for link in args.links:
        if link_transport(link) is not None:
            raise ValueError(f"link {link!r} runs on a real server; a fleet shares a simulated "
                             "cloud: allowed: a simulated link (a preset, trace or constant:)")
    preflight(sweep)
    cloud = BatchPolicy(args.gpus, args.max_batch, args.max_wait_ms / 1e3)
    spec = FleetSpec(sweep, args.robots, cloud, args.cell, args.stagger_s)
    out = args.out or Path("runs") / datetime.now().strftime("fleet-%Y%m%d-%H%M%S")
    command = shlex.join(["rapid-fleet", *(sys.argv[1:] if argv is None else argv)])
    return FleetInvocation(spec, out, args.overwrite, args.capacity, args.slo_p95_ms,
                           args.min_success, args.max_robots, args.wandb, args.project,
                           args.quiet, command, args.replay, args.gpus_needed, args.backend,
                           args.workers, args.address, args.replay_mode)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-fleet``."""
    try:
        inv = parse(argv)
    except ValueError as exc:
        print(f"rapid-fleet: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from rapid_env.eval.fleet_store import FleetStore

    store = FleetStore(inv.out, inv.overwrite)
    failed: list[str] = []
    try:
        if inv.replay is not None:
            rows = _replay(inv)
        elif inv.capacity:
            rows = _capacity(inv, store, failed)
        else:
            jobs = _jobs(inv)
            if inv.backend == "ray":
                _on_ray(inv, store, [j for j in jobs if store.done(j) is None], failed)
            rows = [_fleet(inv, store, job, failed) for job in jobs]
            store.write_summary(rows)
            print(_table(rows))
    except KeyboardInterrupt:
        print("rapid-fleet: interrupted; finished fleets are kept, the same command resumes",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as exc:  # a recording that does not hold what --replay asks for, ...
        print(f"rapid-fleet: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _log_wandb(inv, rows)
    if failed:
        for line in failed:
            print(f"rapid-fleet: {line}", file=sys.stderr)
        return EXIT_EPISODE_ERRORS
    return EXIT_OK


def _jobs(inv: FleetInvocation) -> list[FleetJob]:
    from rapid_env.eval.fleet import fleet_jobs

    return fleet_jobs(inv.spec)


def _fleet(
    inv: FleetInvocation, store: FleetStore, job: FleetJob, failed: list[str]
) -> dict[str, Any]:
    """One fleet's row: stored, or run now (a fleet that cannot run is a row with its error)."""
    from rapid_env.eval.fleet import fleet_summary, run_fleet_job

    done = store.done(job)
    if done is not None:
        return done
    try:
        records, result = run_fleet_job(job)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a fleet that cannot run: say so, keep the others
        why = f"{type(exc).__name__}: {exc}"
        failed.append(f"fleet {job.agent} x {job.link} x {job.robots} robots failed: {why}")
        return {**job.fleet_fields(), "error": why}
    row = store.add(job, fleet_summary(job, records, result), records, result.timelines,
                    result.sim_time_s)
    if not inv.quiet:
        print(_line(row), file=sys.stderr)
    return row


def _on_ray(
    inv: FleetInvocation, store: FleetStore, jobs: Sequence[FleetJob], failed: list[str]
) -> None:
    """Run ``jobs`` as Ray tasks, one fleet each; store each as it finishes."""
    from rapid_env.eval.backends.ray_backend import RayBackend
    from rapid_env.eval.fleet import fleet_task

    if not jobs:
        return
    backend = RayBackend(inv.address, inv.workers)
    try:
        for index, (records, row, timelines, sim_s) in backend.map(fleet_task, jobs):
            stored = store.add(jobs[index], row, records, timelines, sim_s)
            if not inv.quiet:
                print(_line(stored), file=sys.stderr)
    finally:
        backend.close()


def _capacity(
    inv: FleetInvocation, store: FleetStore, failed: list[str]
) -> list[dict[str, Any]]:
    from rapid_env.eval.capacity import find_capacity, markdown_table
    from rapid_env.eval.fleet import FleetJob

    assert inv.slo_p95_ms is not None
    spec = inv.spec
    rows = []
    for link in spec.sweep.links:
        for agent in spec.sweep.agents:
            template = FleetJob(agent, link, 1, spec.cloud, spec.sweep, spec.cell, spec.stagger_s)

            def probe(n: int, template: FleetJob = template) -> dict[str, Any]:
                row = _fleet(inv, store, replace(template, robots=n), failed)
                return row if "error" not in row else {**row, "latency_ms_p95": None}

            cap = find_capacity(agent, link, probe, inv.slo_p95_ms, inv.min_success,
                                inv.max_robots)
            rows.append(cap.row(inv.slo_p95_ms, inv.min_success, spec.cloud.gpus))
    table = markdown_table(rows)
    (inv.out / "capacity.json").write_text(json.dumps(
        {"command": inv.command, "rows": rows}, indent=1) + "\n")
    (inv.out / "capacity.md").write_text(f"`{inv.command}`\n\n{table}")
    print(table)
    return rows


def _replay(inv: FleetInvocation) -> list[dict[str, Any]]:
    """Trace-driven rows: every --robots size (or the capacity, or the GPUs needed)."""
    from rapid_env.eval.capacity import find_capacity, markdown_table
    from rapid_env.eval.fleet_replay import gpus_needed, load_recordings, replay_row

    assert inv.replay is not None
    recordings = load_recordings(inv.replay)
    spec = inv.spec
    seed = spec.sweep.seed
    window = spec.sweep.base.control.max_in_flight  # the controller's, as the robots had it
    mode: ReplayMode = "fixed" if inv.replay_mode == "fixed" else "reactive"
    rows: list[dict[str, Any]] = []
    for link in spec.sweep.links:
        for agent in spec.sweep.agents:
            rec = recordings.get((agent, link))
            if rec is None:
                raise ValueError(
                    f"--replay {str(inv.replay)!r} recorded no fleet of {agent!r} on {link!r}; "
                    f"allowed: {', '.join(f'{a} on {k}' for a, k in sorted(recordings))}")
            if inv.gpus_needed:
                assert inv.slo_p95_ms is not None
                rows += [gpus_needed(rec, n, spec.cloud, inv.slo_p95_ms, seed, window, mode)
                         for n in spec.robots]
            elif inv.capacity:
                assert inv.slo_p95_ms is not None
                probe = partial(_replayed, rec, spec.cloud, seed, window, mode)
                cap = find_capacity(agent, link, probe, inv.slo_p95_ms, None, inv.max_robots)
                rows.append({**cap.row(inv.slo_p95_ms, None, spec.cloud.gpus), "mode": "trace"})
            else:
                rows += [replay_row(rec, n, spec.cloud, seed, window, mode) for n in spec.robots]
    inv.out.mkdir(parents=True, exist_ok=True)
    if inv.gpus_needed:
        table = _gpus_table(rows)
        (inv.out / "gpus_needed.json").write_text(json.dumps(
            {"command": inv.command, "rows": rows}, indent=1) + "\n")
        (inv.out / "gpus_needed.md").write_text(f"`{inv.command}`\n\n{table}")
    elif inv.capacity:
        table = markdown_table(rows)
        (inv.out / "capacity.json").write_text(json.dumps(
            {"command": inv.command, "mode": "trace", "rows": rows}, indent=1) + "\n")
        (inv.out / "capacity.md").write_text(f"`{inv.command}`\n\n{table}")
    else:
        table = _table(rows)
        (inv.out / "replay_summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(table)
    return rows


def _replayed(
    rec: Recording, cloud: BatchPolicy, seed: int, window: int, mode: ReplayMode, robots: int
) -> dict[str, Any]:
    """One capacity probe of the replay: ``robots`` robots of ``rec``."""
    from rapid_env.eval.fleet_replay import replay_row

    return replay_row(rec, robots, cloud, seed, window, mode)


def _gpus_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| decider | link | robots | GPUs needed | GPUs fully busy (arithmetic) | "
             "robots per GPU | p95 ms | GPU util | req/s |", "|" + "---|" * 9]
    for r in rows:
        if not r["reachable"]:
            lines.append(f"| {r['agent']} | {r['link']} | {r['robots']} | unreachable | "
                         f"{r['gpus_floor']} | - | - | - | - |")
            continue
        lines.append(f"| {r['agent']} | {r['link']} | {r['robots']} | {r['gpus']} | "
                     f"{r['gpus_floor']} | {r['robots_per_gpu']:.1f} | {r['latency_ms_p95']:.0f} | "
                     f"{r['gpu_util']:.2f} | {r['requests_per_s']:.0f} |")
    return "\n".join(lines) + "\n"


_COLUMNS = (("agent", "decider", "s"), ("link", "link", "s"), ("robots", "N", "d"),
            ("success", "success", ".2f"), ("requests_per_s", "req/s", ".1f"),
            ("gpu_util", "GPU util", ".2f"), ("latency_ms_p50", "p50 ms", ".0f"),
            ("latency_ms_p95", "p95 ms", ".0f"), ("latency_ms_p99", "p99 ms", ".0f"),
            ("queue_ms_p95_max", "queue p95 ms (worst robot)", ".0f"),
            ("batch_size_mean", "batch", ".2f"), ("stall_share", "stall share", ".2f"))


def _table(rows: Sequence[dict[str, Any]]) -> str:
    """The fleets' rows as a Markdown table (what the command prints)."""
    lines = ["| " + " | ".join(h for _, h, _ in _COLUMNS) + " |",
             "|" + "---|" * len(_COLUMNS)]
    for row in rows:
        cells = []
        for key, _, fmt in _COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else format(value, fmt))
        if "error" in row:
            cells[-1] = f"error: {row['error']}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _line(row: dict[str, Any]) -> str:
    p95 = row.get("latency_ms_p95")
    return (f"fleet {row['agent']} x {row['link']} x {row['robots']} robots: success "
            f"{row['success']:.2f}, p95 {'-' if p95 is None else format(p95, '.0f')} ms, "
            f"GPU util {row['gpu_util'] if row['gpu_util'] is None else round(row['gpu_util'], 2)}")


def _log_wandb(inv: FleetInvocation, rows: Sequence[dict[str, Any]]) -> None:
    """The fleet (or capacity) table and its curves to one W&B run (offline by default)."""
    from rapid_env.eval.fleet_wandb import log_fleet

    log_fleet(inv.out, rows, capacity=inv.capacity, mode=inv.wandb, project=inv.project,
              command=inv.command)


if __name__ == "__main__":
    sys.exit(main())
