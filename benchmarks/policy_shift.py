"""How the paper-regime tables move when the policy changes: two ``paper_tables.json`` side by side.

``rapid-paper`` writes ``paper_tables.json``; run it once per policy (same regime, link and
seeds) and this prints the rows a conclusion rests on, old beside new::

    python benchmarks/policy_shift.py --old docs/results/paper/paper_tables.json \
        --new docs/results/paper-v2/paper_tables.json --old-label v1 --new-label v2

Table I (latency, escalation and success per scene), Table II (redundant share per task) and
the trigger table (precision against chance, recall). A cell is ``new (old)``; a value the run
did not score is ``-``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _rows(table: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["row"]: r["ours"] for r in table}


def _cell(new: dict[str, Any] | None, old: dict[str, Any] | None, key: str,
          fmt: Callable[[float], str]) -> str:
    def one(row: dict[str, Any] | None) -> str:
        v = None if row is None else row.get(key)
        return "-" if v is None else fmt(float(v))

    return f"{one(new)} ({one(old)})"


def _pct(v: float) -> str:
    return f"{100 * v:.0f} %"


def _ms(v: float) -> str:
    return f"{v:.0f}"


def _two(v: float) -> str:
    return f"{v:.2f}"


Column = tuple[str, str, Callable[[float], str]]
"""A table column: its header, the key of ``ours`` it reads, how a value prints."""

SECTIONS: tuple[tuple[str, str, str, tuple[Column, ...]], ...] = (
    ("Table I: latency and success by scene", "table1", "scheme / scene", (
        ("latency ms", "latency_ms_mean", _ms), ("escalation rate", "escalation_rate", _pct),
        ("offloads/s", "offloads_per_s", _two), ("success", "success", _pct),
        ("stall share", "stall_share", _pct))),
    ("Table II: redundant ticks under RAPID (tolerance 0.1)", "table2", "task", (
        ("redundant share", "redundant_share", _pct),
        ("of cached ticks", "redundant_share_of_cached", _pct),
        ("at 0.05", "redundant_share_0.05", _pct), ("at 0.2", "redundant_share_0.2", _pct),
        ("stall share", "stall_share", _pct))),
    ("Trigger precision against non-redundant ticks (standard scene)", "trigger", "decider", (
        ("precision @0.1", "precision", _two), ("chance", "chance_precision", _two),
        ("precision on eligible", "precision_eligible", _two),
        ("chance on eligible", "chance_eligible", _two), ("event recall", "event_recall", _two),
        ("requests/s", "requests_per_s", _two), ("success", "success", _pct))),
)
"""The tables a conclusion rests on, in order: title, key in ``paper_tables.json``, columns."""


def shift(old: dict[str, Any], new: dict[str, Any], old_label: str, new_label: str) -> str:
    """The markdown tables, ``new (old)`` in every cell."""
    out = [f"Cells: {new_label} ({old_label})."]
    for title, key, first, columns in SECTIONS:
        out += ["", f"### {title}", "",
                "| " + " | ".join([first, *(c[0] for c in columns)]) + " |",
                "|" + " --- |" * (len(columns) + 1)]
        t_old, t_new = _rows(old[key]), _rows(new[key])
        for row, n in t_new.items():
            cells = [_cell(n, t_old.get(row), k, fmt) for _, k, fmt in columns]
            out.append(f"| {row} | {' | '.join(cells)} |")
    return "\n".join(out)


def main() -> None:
    """Print the side-by-side tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", type=Path, required=True)
    p.add_argument("--new", type=Path, required=True)
    p.add_argument("--old-label", default="old")
    p.add_argument("--new-label", default="new")
    a = p.parse_args()
    print(shift(json.loads(a.old.read_text()), json.loads(a.new.read_text()), a.old_label,
                a.new_label))


if __name__ == "__main__":
    main()
