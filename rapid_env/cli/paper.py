"""``rapid-paper``: the paper's regime in one command (five rapid-eval sweeps, then the tables).

The regime and its tables live in :mod:`rapid_env.eval.paper`; this module is the command line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rapid_env.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, make_parser

QUICK_TASKS: tuple[str, ...] = ("pick-place", "drawer-open", "peg-insert-side")
"""``--quick`` runs Table II's three tasks only (:data:`rapid_env.eval.paper_tables.TABLE2_TASKS`;
a test keeps the two equal, so ``--help`` need not import the tables)."""


LIBERO_QUICK_TASKS: tuple[str, ...] = ("libero_object/0", "libero_goal/0", "libero_goal/9")
"""``--suite libero --quick``: LIBERO's stand-ins for Table II's tasks
(:data:`rapid_env.eval.paper_tables.LIBERO_TABLE2`; a test keeps the two equal)."""
LIBERO_TASKS = "libero_object,libero_spatial,libero_goal"
"""``--suite libero``'s full run: the three suites the scripted experts cover."""
LIBERO_POLICY = "chunk-regress-libero"
"""``--suite libero``'s default policy: the family trained on LIBERO (shipped checkpoint)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``rapid-paper`` command line."""
    p = make_parser(
        "rapid-paper",
        "Run the paper's regime (fixed partitions, escalating vision trigger, redundancy "
        "oracle) and write OUT/paper_tables.md and .json: Tables I-III and the trigger "
        "precision/recall table beside the paper's figures.",
        examples=(
            "rapid-paper --quick --out runs/paper-smoke",
            "rapid-paper --suite libero --quick --out runs/paper-libero  # LIBERO, the paper's",
            "rapid-paper --out runs/paper --workers 2            # the full run, resumable",
            "rapid-paper --tables-only --out docs/results/paper  # tables from stored records",
            "rapid-paper --readings --quick --out runs/readings  # every claim under every reading",
            "rapid-paper --readings --placements edge-suffix --links lab-wifi6 --out runs/r",
        ),
    )
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/paper-<time>); one store per setting "
                        "under OUT/runs/, a rerun resumes them")
    p.add_argument("--quick", action="store_true",
                   help="smoke run of the same pipeline: Table II's 3 tasks, 1 episode each, "
                        "5 s episodes, no HTML reports")
    p.add_argument("--suite", choices=("metaworld", "libero"), default="metaworld",
                   help="the benchmark: Meta-World v3 MT10 (default) or LIBERO, the paper's own "
                        "(its Table II tasks stand in as "
                        f"{', '.join(LIBERO_QUICK_TASKS)})")
    p.add_argument("--tasks", default=None,
                   help="comma-separated tasks or a suite (default: mt10; --quick: "
                        f"{','.join(QUICK_TASKS)}; --suite libero: {LIBERO_TASKS}; with "
                        f"--quick: {','.join(LIBERO_QUICK_TASKS)})")
    p.add_argument("--episodes", type=int, default=None,
                   help="paired seeds per cell (default 10; --quick: 1)")
    p.add_argument("--max-episode-s", type=float, default=None,
                   help="simulated seconds per episode (default 10; --quick: 5; --suite libero: "
                        "each suite's own step limit)")
    p.add_argument("--link", default="lab-wifi6", help="the link of every setting")
    p.add_argument("--policy", default=None,
                   help=f"the policy that drives the robot (default chunk-regress; --suite "
                        f"libero: {LIBERO_POLICY})")
    p.add_argument("--seed", type=int, default=1000, help="first paired seed")
    p.add_argument("--workers", type=int, default=1, help="local worker processes per sweep")
    p.add_argument("--wandb", choices=("offline", "online", "disabled"), default=None,
                   help="W&B logging of each setting's sweep, one run per setting in the group "
                        "paper-<OUT name> (default: as rapid-eval, offline without an API key)")
    p.add_argument("--quiet", action="store_true", help="no progress output from the sweeps")
    p.add_argument("--tables-only", action="store_true",
                   help="run nothing: rebuild the tables from the stores already in OUT "
                        "(episodes.jsonl or episodes.jsonl.gz per setting)")
    r = p.add_argument_group(
        "readings", "--readings reruns the regime under every combination of the readings below "
        "and writes OUT/sensitivity.md and .json: each paper claim, per reading, with our "
        "figure, the paper's and whether it holds")
    r.add_argument("--readings", action="store_true",
                   help="run the grid of readings instead of the single regime")
    r.add_argument("--placements", default="edge-prefix,edge-suffix",
                   help="which end of the model the edge holds: edge-prefix, edge-suffix, best")
    r.add_argument("--loop-costs", default="per-pass,once",
                   help="what a cut inside the decoding loop costs: per-pass, once")
    r.add_argument("--baselines", default="early-exit,cross",
                   help="the vision-triggered baseline when not triggered: early-exit, cross")
    r.add_argument("--in-flight", default="1,2",
                   help="refills allowed in flight at once (rapid-eval --max-in-flight)")
    r.add_argument("--links", default="lab-wifi6,constant:1000:2",
                   help="links of the grid (--link is the single regime's)")
    r.add_argument("--contracts", default="chunk",
                   help="what one model call returns: chunk (8 actions), single (one action, "
                        "OpenVLA-7B as released)")
    return p


def _resolve(args: argparse.Namespace) -> None:
    """Fill the defaults that depend on ``--quick`` and check the numbers."""
    libero = args.suite == "libero"
    if args.tasks is None:
        if libero:
            args.tasks = ",".join(LIBERO_QUICK_TASKS) if args.quick else LIBERO_TASKS
        else:
            args.tasks = ",".join(QUICK_TASKS) if args.quick else "mt10"
    if args.policy is None:
        args.policy = LIBERO_POLICY if libero else "chunk-regress"
    if args.episodes is None:
        args.episodes = 1 if args.quick else 10
    if args.max_episode_s is None and not libero:  # LIBERO: each suite's own step limit
        args.max_episode_s = 5.0 if args.quick else 10.0
    if args.episodes < 1:
        raise ValueError(f"--episodes {args.episodes} must be >= 1")
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers} must be >= 1")


def _tables_only(out: Path) -> int:
    """``--tables-only``: rebuild from the stores, keeping how they were made (the old meta)."""
    from rapid_env.eval.paper import read_settings, write_tables

    records = read_settings(out)
    missing = [name for name, recs in records.items() if not recs]
    if missing:
        print(f"rapid-paper: error: no records for setting(s) {', '.join(missing)} under "
              f"{out / 'runs'}; run rapid-paper without --tables-only first", file=sys.stderr)
        return EXIT_BAD_INPUT
    old = out / "paper_tables.json"
    meta = json.loads(old.read_text()).get("meta", {}) if old.exists() else {}
    write_tables(out, records, meta)
    print(f"rapid-paper: rebuilt {out / 'paper_tables.md'} and {old}", file=sys.stderr)
    return EXIT_OK


def _readings(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """``--readings``: every distinct sweep of the grid (resumable), then the sensitivity files."""
    from rapid_env.eval.paper import read_records
    from rapid_env.eval.paper_wandb import log_sensitivity
    from rapid_env.eval.readings import REFERENCE, grid, parse_axis, reading_records, sweeps
    from rapid_env.eval.sensitivity import build_sensitivity, score_reading, write_sensitivity

    try:
        axes = {name: parse_axis(name, getattr(args, flag)) for name, flag in (
            ("placement", "placements"), ("loop_cost", "loop_costs"), ("baseline", "baselines"),
            ("max_in_flight", "in_flight"), ("link", "links"),
            ("action_contract", "contracts"))}
        from rapid_env.link import parse_link

        for link in axes["link"]:
            parse_link(link)
    except ValueError as exc:
        print(f"rapid-paper: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.out is None:
        print("rapid-paper: error: --readings needs --out", file=sys.stderr)
        return EXIT_BAD_INPUT
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    readings = grid(axes)
    plan = sweeps(readings, args, out)
    started = time.monotonic()
    worst = EXIT_OK
    if not args.tables_only:
        from rapid_env.cli import eval as eval_cli

        print(f"rapid-paper: {len(readings)} readings, {len(plan)} sweeps under "
              f"{out / 'readings'}", file=sys.stderr)
        for i, (name, sub) in enumerate(plan.items(), 1):
            if not args.quiet:
                print(f"rapid-paper: sweep {i}/{len(plan)} {name}", file=sys.stderr)
            code = eval_cli.main(sub)
            if code in (EXIT_BAD_INPUT, EXIT_INTERRUPTED):
                print(f"rapid-paper: sweep {name} stopped (exit {code}): "
                      f"{shlex.join(['rapid-eval', *sub])}; rerun the same command to resume",
                      file=sys.stderr)
                return code
            worst = max(worst, code)
    cache: dict[str, list[dict]] = {}
    scored = [score_reading(r, reading_records(out, r, cache)) for r in readings]
    meta = {
        "command": shlex.join(["rapid-paper", *(sys.argv[1:] if argv is None else argv)]),
        "wall_s": round(time.monotonic() - started, 1), "quick": bool(args.quick),
        "policy": args.policy, "tasks": args.tasks, "episodes": args.episodes,
        "max_episode_s": args.max_episode_s, "axes": {k: list(v) for k, v in axes.items()},
        "sweeps": {name: shlex.join(["rapid-eval", *sub]) for name, sub in plan.items()},
    }
    old = out / "sensitivity.json"
    if args.tables_only and old.exists():  # rebuilt from the stores: keep how they were made
        meta = {**json.loads(old.read_text()).get("meta", {}), "rebuilt_by": meta["command"]}
    ideal = read_records(out / "readings" / REFERENCE)
    result = build_sensitivity(scored, meta, ideal)
    write_sensitivity(out, result)
    log_sensitivity(args.wandb, out, result, group=f"readings-{out.name}")
    print(f"rapid-paper: wrote {out / 'sensitivity.md'} and {out / 'sensitivity.json'}",
          file=sys.stderr)
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-paper``."""
    try:
        args = build_parser().parse_args(argv)
        _resolve(args)
    except ValueError as exc:  # UsageError included
        print(f"rapid-paper: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.readings:
        return _readings(args, argv)
    if args.tables_only:
        if args.out is None:
            print("rapid-paper: error: --tables-only needs --out", file=sys.stderr)
            return EXIT_BAD_INPUT
        return _tables_only(args.out)
    from rapid_env.cli import eval as eval_cli
    from rapid_env.eval.paper import (
        RAPID_BUDGET_GIB,
        SETTINGS,
        VISION_BUDGET_GIB,
        eval_argv,
        read_settings,
        write_tables,
    )
    from rapid_env.eval.paper_wandb import log_tables

    out: Path = args.out or Path("runs") / datetime.now().strftime("paper-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    commands: dict[str, str] = {}
    worst = EXIT_OK
    for setting in SETTINGS:
        sub = eval_argv(setting, args, out)
        commands[setting.name] = shlex.join(["rapid-eval", *sub])
        print(f"rapid-paper: setting {setting.name}: {commands[setting.name]}", file=sys.stderr)
        code = eval_cli.main(sub)
        if code in (EXIT_BAD_INPUT, EXIT_INTERRUPTED):
            print(f"rapid-paper: setting {setting.name} stopped (exit {code}); rerun the same "
                  "command to resume", file=sys.stderr)
            return code
        worst = max(worst, code)
    wall_s = time.monotonic() - started
    meta = {
        "command": shlex.join(["rapid-paper", *(sys.argv[1:] if argv is None else argv)]),
        "settings": commands, "wall_s": round(wall_s, 1), "quick": bool(args.quick),
        "link": args.link, "policy": args.policy, "tasks": args.tasks, "suite": args.suite,
        "episodes": args.episodes, "max_episode_s": args.max_episode_s,
        "partitions_gib": {"rapid": RAPID_BUDGET_GIB, "vision-triggered": VISION_BUDGET_GIB},
    }
    tables = write_tables(out, read_settings(out), meta)
    log_tables(args.wandb, out, tables, group=f"paper-{out.name}")  # prints where the run is
    print(f"rapid-paper: wrote {out / 'paper_tables.md'} and {out / 'paper_tables.json'} "
          f"in {wall_s:.0f} s", file=sys.stderr)
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
