"""``rapid-paper``: the paper's regime, run in one command, with Tables I-III beside the paper's.

The regime (docs/paper.md, "The paper's regime") is configuration, not code: a fixed,
memory-bounded partition of OpenVLA-7B per scheme (``--edge-budget-gib``: 2.4 GiB for RAPID, 4.7
for the vision-triggered baseline), the vision trigger in *escalation* mode
(``vision-entropy(mode=escalate)``: the edge always runs its part, a trigger adds uplink + cloud +
downlink), and a lab Wi-Fi 6 link (``lab-wifi6``). Each :class:`Setting` is one ordinary
``rapid-eval`` sweep into its own results store under ``OUT/runs/<setting>/``; this command builds
their command lines, runs them one after another (a rerun resumes each store), then reads the
records back and writes ``OUT/paper_tables.md`` and ``OUT/paper_tables.json``
(:mod:`rapid_env.eval.paper_tables`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rapid_env.eval.paper_tables import (
    EDGE_ONLY,
    RAPID,
    TABLE2_TASKS,
    TOLERANCES,
    TRIGGER_AGENTS,
    VISION,
    build_tables,
    render_markdown,
)
from rapid_env.eval.paper_wandb import log_tables
from rapid_env.eval.store import EPISODES
from rapid_env.eval.summary import parse_records

QUICK_TASKS: tuple[str, ...] = TABLE2_TASKS
"""``--quick`` runs Table II's three tasks only."""

EXIT_OK, EXIT_BAD_INPUT, EXIT_EPISODE_ERRORS, EXIT_INTERRUPTED = 0, 2, 3, 130


@dataclass(frozen=True)
class Setting:
    """One sweep of the regime: who runs, on which partition, in which scenes, with the oracle.

    Attributes:
        name: the store's folder under ``OUT/runs/``.
        agents: decider specs.
        noises: scenes (``clean`` is the paper's "standard").
        edge_budget_gib: the fixed partition's edge memory budget; None: no fixed partition.
        oracle: run the redundancy oracle (Table II and the trigger table need it).
    """

    name: str
    agents: tuple[str, ...]
    noises: tuple[str, ...]
    edge_budget_gib: float | None
    oracle: bool


RAPID_BUDGET_GIB = 2.4
VISION_BUDGET_GIB = 4.7
SETTINGS: tuple[Setting, ...] = (
    Setting("rapid", (RAPID, *TRIGGER_AGENTS[1:]), ("clean",), RAPID_BUDGET_GIB, oracle=True),
    Setting("rapid-noise", (RAPID,), ("visual-noise", "interference"), RAPID_BUDGET_GIB, False),
    Setting("vision", (VISION,), ("clean",), VISION_BUDGET_GIB, oracle=True),
    Setting("vision-noise", (VISION,), ("visual-noise", "interference"), VISION_BUDGET_GIB, False),
    Setting("edge-only", (EDGE_ONLY,), ("clean",), None, oracle=False),
)
"""The regime's sweeps. RAPID's ablations, periodic and chunk-threshold share RAPID's partition:
they differ from it only in *when* they ask. ``vision`` holds the vision trigger in the paper's
escalation mode; edge-only is the whole model on the edge (no budget)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``rapid-paper`` command line."""
    p = argparse.ArgumentParser(
        prog="rapid-paper",
        description="Run the paper's regime (fixed partitions, escalating vision trigger, "
                    "redundancy oracle) and write OUT/paper_tables.md and .json: Tables I-III "
                    "and the trigger precision/recall table beside the paper's figures.",
    )
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/paper-<time>); one store per setting "
                        "under OUT/runs/, a rerun resumes them")
    p.add_argument("--quick", action="store_true",
                   help="smoke run of the same pipeline: Table II's 3 tasks, 1 episode each, "
                        "5 s episodes, no HTML reports")
    p.add_argument("--tasks", default=None,
                   help="comma-separated tasks or 'mt10' (default: mt10; --quick: "
                        f"{','.join(QUICK_TASKS)})")
    p.add_argument("--episodes", type=int, default=None,
                   help="paired seeds per cell (default 10; --quick: 1)")
    p.add_argument("--max-episode-s", type=float, default=None,
                   help="simulated seconds per episode (default 10; --quick: 5)")
    p.add_argument("--link", default="lab-wifi6", help="the link of every setting")
    p.add_argument("--policy", default="chunk-regress", help="the policy that drives the robot")
    p.add_argument("--seed", type=int, default=1000, help="first paired seed")
    p.add_argument("--workers", type=int, default=1, help="local worker processes per sweep")
    p.add_argument("--wandb", choices=("offline", "online", "disabled"), default=None,
                   help="W&B logging of each setting's sweep, one run per setting in the group "
                        "paper-<OUT name> (default: as rapid-eval, offline without an API key)")
    p.add_argument("--quiet", action="store_true", help="no progress output from the sweeps")
    p.add_argument("--tables-only", action="store_true",
                   help="run nothing: rebuild the tables from the stores already in OUT "
                        "(episodes.jsonl or episodes.jsonl.gz per setting)")
    return p


def eval_argv(setting: Setting, args: argparse.Namespace, out: Path) -> list[str]:
    """The ``rapid-eval`` arguments of one setting (shown in the tables, rerunnable by hand)."""
    argv = [
        "--tasks", args.tasks, "--agents", ",".join(setting.agents),
        "--noise", ",".join(setting.noises), "--links", args.link,
        "--episodes", str(args.episodes), "--seed", str(args.seed), "--policy", args.policy,
        "--max-episode-s", f"{args.max_episode_s:g}", "--workers", str(args.workers),
        "--out", str(out / "runs" / setting.name),
        "--group", f"paper-{out.name}", "--job-type", "paper",
    ]
    if args.wandb is not None:
        argv += ["--wandb", args.wandb]
    if setting.edge_budget_gib is not None:
        argv += ["--edge-budget-gib", f"{setting.edge_budget_gib:g}"]
    if setting.oracle:
        argv += ["--oracle", ",".join(f"{t:g}" for t in TOLERANCES)]
    if args.quick:
        argv.append("--no-report")
    if args.quiet:
        argv.append("--quiet")
    return argv


def _resolve(args: argparse.Namespace) -> None:
    """Fill the defaults that depend on ``--quick`` and check the numbers."""
    if args.tasks is None:
        args.tasks = ",".join(QUICK_TASKS) if args.quick else "mt10"
    if args.episodes is None:
        args.episodes = 1 if args.quick else 10
    if args.max_episode_s is None:
        args.max_episode_s = 5.0 if args.quick else 10.0
    if args.episodes < 1:
        raise ValueError(f"--episodes {args.episodes} must be >= 1")
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers} must be >= 1")


def read_records(folder: Path) -> list[dict[str, Any]]:
    """The records of one setting's store: ``episodes.jsonl``, or a shipped ``.jsonl.gz``.

    Read like the report reads a store (:func:`~rapid_env.eval.summary.parse_records`): a torn last
    line from a crash is skipped, the store is left as it is.
    """
    plain, packed = folder / EPISODES, folder / f"{EPISODES}.gz"
    if plain.exists():
        text = plain.read_text(encoding="utf-8")
    elif packed.exists():
        text = gzip.decompress(packed.read_bytes()).decode("utf-8")
    else:
        return []
    return parse_records(text)[0]


def read_settings(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Every setting's records, read once from ``out/runs/<setting>/``."""
    return {s.name: read_records(out / "runs" / s.name) for s in SETTINGS}


def write_tables(
    out: Path, records: Mapping[str, Sequence[dict[str, Any]]], meta: dict[str, Any]
) -> dict[str, Any]:
    """Build the tables from the settings' records and write both table files into ``out``."""
    tables = build_tables(records, meta)
    (out / "paper_tables.json").write_text(json.dumps(tables, indent=2, allow_nan=False) + "\n")
    (out / "paper_tables.md").write_text(render_markdown(tables))
    return tables


def _tables_only(out: Path) -> int:
    """``--tables-only``: rebuild from the stores, keeping how they were made (the old meta)."""
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-paper``."""
    from rapid_env.eval import cli as eval_cli

    args = build_parser().parse_args(argv)
    try:
        _resolve(args)
    except ValueError as exc:
        print(f"rapid-paper: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.tables_only:
        if args.out is None:
            print("rapid-paper: error: --tables-only needs --out", file=sys.stderr)
            return EXIT_BAD_INPUT
        return _tables_only(args.out)
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
        "link": args.link, "policy": args.policy, "tasks": args.tasks,
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
