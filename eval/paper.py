"""``rapid-paper``: the paper's regime, run in one command, with Tables I-III beside the paper's.

The regime (docs/paper.md, "The paper's regime") is configuration, not code: a fixed,
memory-bounded partition of OpenVLA-7B per scheme (``--edge-budget-gib``: 2.4 GiB for RAPID, 4.7
for the vision-triggered baseline), the vision trigger in *escalation* mode
(``vision-entropy(mode=escalate)``: the edge always runs its part, a trigger adds uplink + cloud +
downlink), and a lab Wi-Fi 6 link (``lab-wifi6``). Each :class:`Setting` is one ordinary
``rapid-eval`` sweep into its own results store under ``OUT/runs/<setting>/``; this command builds
their command lines, runs them one after another (a rerun resumes each store), then reads the
records back and writes ``OUT/paper_tables.md`` and ``OUT/paper_tables.json``
(:mod:`rapid_env.eval.paper_tables`). The command line is :mod:`rapid_env.cli.paper`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapid_env.eval.paper_tables import (
    EDGE_ONLY,
    RAPID,
    TOLERANCES,
    TRIGGER_AGENTS,
    VISION,
    build_tables,
    render_markdown,
)
from rapid_env.eval.store import EPISODES
from rapid_env.eval.summary import scan_records


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


def episode_s_argv(max_episode_s: float | None) -> list[str]:
    """``--max-episode-s`` for rapid-eval; none when None (each task's suite limit: LIBERO)."""
    return [] if max_episode_s is None else ["--max-episode-s", f"{max_episode_s:g}"]


def eval_argv(setting: Setting, args: argparse.Namespace, out: Path) -> list[str]:
    """The ``rapid-eval`` arguments of one setting (shown in the tables, rerunnable by hand)."""
    argv = [
        "--tasks", args.tasks, "--agents", ",".join(setting.agents),
        "--noise", ",".join(setting.noises), "--links", args.link,
        "--episodes", str(args.episodes), "--seed", str(args.seed), "--policy", args.policy,
        *episode_s_argv(args.max_episode_s),
        "--workers", str(args.workers), "--out", str(out / "runs" / setting.name),
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


def read_records(folder: Path) -> list[dict[str, Any]]:
    """The records of one setting's store: ``episodes.jsonl``, or a shipped ``.jsonl.gz``.

    Read like the report reads a store (:func:`~rapid_env.eval.summary.scan_records`): the file's
    bytes, so a line that is not UTF-8, not JSON or torn by a crash costs that line only, and
    each such line is named on stderr (``<file>:<line>: <why>; not counted``, as ``rapid-eval``
    names them); the store is left as it is. A packed file that does not unpack is named and
    gives no records.
    """
    plain, packed = folder / EPISODES, folder / f"{EPISODES}.gz"
    if plain.exists():
        path, data = plain, plain.read_bytes()
    elif packed.exists():
        path = packed
        try:
            data = gzip.decompress(packed.read_bytes())
        except (OSError, EOFError, zlib.error) as exc:
            _warn(f"{packed}: does not unpack ({type(exc).__name__}); not counted")
            return []
    else:
        return []
    scanned, problems = scan_records(data)
    for number, why in problems:
        _warn(f"{path}:{number}: {why}; not counted")
    return [record for _, record in scanned]


def _warn(line: str) -> None:
    print(f"rapid-paper: {line}", file=sys.stderr)


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
