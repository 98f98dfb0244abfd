"""Plain fixed-width text table of summary rows, for the terminal (no dependencies).

What ``rapid-eval`` prints at the end of a sweep. It is meant to be read, not parsed: parse
summary.csv / summary.json instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DEFAULT_COLUMNS", "episodes_cell", "format_table", "format_value"]

DEFAULT_COLUMNS: tuple[str, ...] = (
    "task",
    "agent",
    "noise",
    "link",
    "episodes",
    "success_rate",
    "latency_ms_mean",
    "time_to_success_s",
    "time_to_success_n",
    "stall_share",
    "stall_steps",
    "rms_jerk",
    "offloads",
    "faults",
)
"""What a user asks of a sweep first: which cell, how often it succeeded, how fast and smooth."""

_MISSING = "-"


def format_value(value: Any) -> str:
    """Render one cell: 4 significant digits for floats, '-' for None/NaN, str() otherwise.

    Four significant digits keep columns narrow and are more than the confidence intervals
    justify for a handful of seeds; ``g`` formatting switches to exponents for bytes or jerk.
    """
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return _MISSING
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.4g}"
    return str(value)


def episodes_cell(row: Mapping[str, Any]) -> Any:
    """A row's episodes: ``"2 valid of 3"`` when some were invalid, else the count.

    Success and latency rest on the valid episodes only (:func:`~rapid_env.eval.summary.summarize`),
    so a cell with invalid ones says so where its count is read.
    """
    episodes, valid = row.get("episodes"), row.get("valid")
    if isinstance(valid, int) and isinstance(episodes, int) and valid != episodes:
        return f"{valid} valid of {episodes}"
    return episodes


def _is_numeric(values: Sequence[Any]) -> bool:
    """Return True when every present value is a number: such columns are right-aligned."""
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Format rows as a fixed-width table: header, a dashed rule, one line per row.

    ``columns`` defaults to :data:`DEFAULT_COLUMNS`. A column that no row has is left out rather
    than printed empty (a sweep without a network link has no ``offloads``); a value missing from
    one row prints as ``-``. ``episodes`` reads ``n valid of N`` in a row with invalid episodes
    (:func:`episodes_cell`). Numbers are right-aligned, text left-aligned. With no rows the
    result is the header and rule only (or an empty string when no column survives), so callers
    can always print it. The returned string has no trailing newline.
    """
    wanted = list(DEFAULT_COLUMNS if columns is None else columns)
    shown = [c for c in wanted if any(c in row for row in rows)] if rows else wanted
    if not shown:
        return ""
    raw = {c: [episodes_cell(row) if c == "episodes" else row.get(c) for row in rows]
           for c in shown}
    cells = {c: [format_value(v) for v in raw[c]] for c in shown}
    widths = {c: max([len(c), *(len(s) for s in cells[c])]) for c in shown}
    right = {c: _is_numeric(raw[c]) for c in shown}

    def line(parts: dict[str, str]) -> str:
        out = [parts[c].rjust(widths[c]) if right[c] else parts[c].ljust(widths[c]) for c in shown]
        return "  ".join(out).rstrip()

    lines = [line({c: c for c in shown}), "  ".join("-" * widths[c] for c in shown)]
    lines.extend(line({c: cells[c][i] for c in shown}) for i in range(len(rows)))
    total = sum(r["episodes"] for r in rows if isinstance(r.get("episodes"), int))
    valid = sum(r["valid"] for r in rows if isinstance(r.get("valid"), int))
    if any(isinstance(r.get("valid"), int) for r in rows) and valid != total:
        lines.append(f"{valid} valid of {total} episodes: the invalid ones (infrastructure "
                     "faults) are left out of success and latency")
    return "\n".join(lines)
