"""What a chart's point means: summary rows aggregated over tasks (plain numbers, no drawing).

The chart definitions (:mod:`rapid_env.eval.charts`) ask this module for one number (and its
95 % interval) per agent and condition; how cells are combined over tasks is decided here, once:

* Metric bars show the **mean of the cell means**; the interval of that mean combines the cells'
  95 % half-widths as independent estimates, ``sqrt(sum h_i^2) / k`` (the cell's own half-width
  for one task; none when a cell has no interval, e.g. one episode).
* Success is **pooled**: total successes / total episodes with the Wilson 95 % interval of the
  pooled counts (equal to the mean of the cell rates when cells have equal episodes); rows
  without ``successes`` / ``episodes`` fall back to the mean of the rates.
* Offloads per simulated second: ``sum(offloads x episodes) / sum(sim_time_s x episodes)``, i.e.
  total offloads over total simulated seconds. Per second, not per episode, because failing
  episodes run longer and so ask more often per episode.

NaN and None values are left out of means and never drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rapid_env.eval.pooling import as_float
from rapid_env.eval.summary import wilson_interval
from rapid_env.record_metrics import offload_rate_of_rows

Row = Mapping[str, Any]


# ------------------------------------------------------------------------------- reading rows
def has(rows: Sequence[Row], key: str) -> bool:
    """True when at least one row holds a finite number under ``key``."""
    return any(math.isfinite(as_float(row.get(key))) for row in rows)


def order(rows: Sequence[Row], key: str) -> list[str]:
    """Distinct values of a cell key in first-seen order (the sweep's order for sweep rows)."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.setdefault(str(row.get(key)), None)
    return list(seen)


def finite(values: Sequence[float]) -> list[float]:
    """The finite values, in order."""
    return [v for v in values if math.isfinite(v)]


def mean(values: Sequence[float]) -> float:
    """Mean of the finite values; NaN when there are none."""
    kept = finite(values)
    return math.fsum(kept) / len(kept) if kept else math.nan


def mean_with_interval(rows: Sequence[Row], key: str) -> tuple[float, float, float]:
    """Mean of the cell means of ``key`` and the combined 95 % bounds (NaN when unknown)."""
    pairs = [(as_float(r.get(key)), as_float(r.get(f"{key}_ci95"))) for r in rows]
    pairs = [(m, h) for m, h in pairs if math.isfinite(m)]
    if not pairs:
        return (math.nan, math.nan, math.nan)
    centre = math.fsum(m for m, _ in pairs) / len(pairs)
    halves = [h for _, h in pairs]
    if not all(math.isfinite(h) for h in halves):
        return (centre, math.nan, math.nan)
    half = math.sqrt(math.fsum(h * h for h in halves)) / len(halves)
    return (centre, centre - half, centre + half)


def pooled_success(rows: Sequence[Row]) -> tuple[float, float, float]:
    """Success pooled over the rows with its Wilson 95 % interval (see the module docstring)."""
    counts = [(as_float(r.get("successes")), as_float(r.get("episodes"))) for r in rows]
    if rows and all(math.isfinite(k) and math.isfinite(n) and n > 0 for k, n in counts):
        k = int(sum(c[0] for c in counts))
        n = int(sum(c[1] for c in counts))
        if 0 <= k <= n:
            low, high = wilson_interval(k, n)
            return (k / n, low, high)
    rate = mean([as_float(r.get("success_rate")) for r in rows])
    if len(rows) == 1:
        row = rows[0]
        return (rate, as_float(row.get("success_ci_low")), as_float(row.get("success_ci_high")))
    return (rate, math.nan, math.nan)


def offload_rate(rows: Sequence[Row]) -> float:
    """Total offloads over total simulated seconds, from the cell means and episode counts.

    The one definition is :func:`rapid_env.record_metrics.offload_rate_of_rows`; NaN if none.
    """
    rate = offload_rate_of_rows(rows)
    return math.nan if rate is None else rate


def bounds(
    values: Sequence[tuple[float, float, float]],
) -> tuple[list[float] | None, list[float] | None]:
    """Split (y, low, high) triples; the bounds are None when no point has an interval."""
    low = [v[1] for v in values]
    high = [v[2] for v in values]
    if not any(math.isfinite(v) for v in low + high):
        return (None, None)
    return (low, high)


# ------------------------------------------------------------------------------ the sweep
class SweepRows:
    """The rows indexed by cell, with the sweep's orders and the wording of the aggregation.

    Args:
        rows: summary rows; rows without the four cell keys are ignored.
        agents: the sweep's agent order (it fixes each agent's colour); agents of the rows that
            it does not list follow in first-seen order. None: first-seen order.
    """

    def __init__(self, rows: Sequence[Row], agents: Sequence[str] | None = None) -> None:
        self.rows = [r for r in rows if all(k in r for k in ("task", "agent", "noise", "link"))]
        self.tasks = order(self.rows, "task")
        present = order(self.rows, "agent")
        self.palette_order = list(dict.fromkeys([*(str(a) for a in agents or ()), *present]))
        """Every agent, present or not, in the order that assigns colours."""
        self.agents = [a for a in self.palette_order if a in present]
        self.noises = order(self.rows, "noise")
        self.links = order(self.rows, "link")

    def select(self, **where: str) -> list[Row]:
        """The rows whose cell keys equal ``where`` (all rows for no condition)."""
        return [r for r in self.rows if all(str(r.get(k)) == v for k, v in where.items())]

    @property
    def over_tasks(self) -> str:
        """How a per-agent value was aggregated over tasks, for a title."""
        if len(self.tasks) == 1:
            return f"task {self.tasks[0]}"
        return f"mean of cell means over {len(self.tasks)} tasks"

    def groups(self) -> list[tuple[str, str, str]]:
        """(noise, link, label) for every noise x link that has rows, in sweep order."""
        out = []
        for link in self.links:
            for noise in self.noises:
                if not self.select(noise=noise, link=link):
                    continue
                if len(self.links) == 1:
                    label = noise
                elif len(self.noises) == 1:
                    label = link
                else:
                    label = f"{noise} · {link}"
                out.append((noise, link, label))
        return out
