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


def shift(old: dict[str, Any], new: dict[str, Any], old_label: str, new_label: str) -> str:
    """The markdown tables, ``new (old)`` in every cell."""
    head = f"Cells: {new_label} ({old_label})."
    out = [head, "", "### Table I: latency and success by scene", "",
           "| scheme / scene | latency ms | escalation rate | offloads/s | success | stall share |",
           "| --- | --- | --- | --- | --- | --- |"]
    t_old, t_new = _rows(old["table1"]), _rows(new["table1"])
    for row in t_new:
        n, o = t_new[row], t_old.get(row)
        out.append(f"| {row} | {_cell(n, o, 'latency_ms_mean', _ms)} | "
                   f"{_cell(n, o, 'escalation_rate', _pct)} | {_cell(n, o, 'offloads_per_s', _two)}"
                   f" | {_cell(n, o, 'success', _pct)} | {_cell(n, o, 'stall_share', _pct)} |")
    out += ["", "### Table II: redundant ticks under RAPID (tolerance 0.1)", "",
            "| task | redundant share | of cached ticks | at 0.05 | at 0.2 | stall share |",
            "| --- | --- | --- | --- | --- | --- |"]
    t_old, t_new = _rows(old["table2"]), _rows(new["table2"])
    for row in t_new:
        n, o = t_new[row], t_old.get(row)
        out.append(f"| {row} | {_cell(n, o, 'redundant_share', _pct)} | "
                   f"{_cell(n, o, 'redundant_share_of_cached', _pct)} | "
                   f"{_cell(n, o, 'redundant_share_0.05', _pct)} | "
                   f"{_cell(n, o, 'redundant_share_0.2', _pct)} | "
                   f"{_cell(n, o, 'stall_share', _pct)} |")
    out += ["", "### Trigger precision against non-redundant ticks (standard scene)", "",
            "| decider | precision @0.1 | chance | precision on eligible | chance on eligible | "
            "event recall | requests/s | success |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    t_old, t_new = _rows(old["trigger"]), _rows(new["trigger"])
    for row in t_new:
        n, o = t_new[row], t_old.get(row)
        cells = [_cell(n, o, k, _two) for k in (
            "precision", "chance_precision", "precision_eligible", "chance_eligible",
            "event_recall", "requests_per_s")]
        out.append(f"| {row} | {' | '.join(cells)} | {_cell(n, o, 'success', _pct)} |")
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
