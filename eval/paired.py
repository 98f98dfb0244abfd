"""Paired comparison against a baseline agent: what each agent changes, seed by seed.

Episode ``i`` of every cell runs on the same seed (:mod:`rapid_env.eval.runner`): the same
layout, noise draws and link draws. So the question "does agent A succeed more than the
baseline B here?" is answered best by pairing A's episode with B's episode *of the same seed*
and looking at the differences, which cancels the seed-to-seed spread both share. One row per
task x noise x link cell and non-baseline agent holds:

* ``n_pairs``: seeds where both agents have a valid record (an invalid one on either side, an
  infrastructure fault such as an ``episode_error`` or a server gone mid-sweep, drops the pair;
  ``unpaired`` counts the agent's episodes left without a partner);
* ``d_success`` with ``d_success_lo`` / ``d_success_hi``: the mean paired difference of the
  success flags (agent minus baseline) and its 95 % interval by **Newcombe's hybrid score
  method for paired proportions** (Newcombe 1998, method 10): the two Wilson intervals of the
  agents' rates combined with the correlation of the pairs. Chosen over a paired bootstrap or a
  t-interval on the differences because a sweep has few seeds per cell (often 2-10) and many
  pairs agree: then every difference is 0 and a bootstrap or t-interval collapses to
  ``[0, 0]``, claiming certainty from two coin flips, while Newcombe's interval stays as wide as
  the Wilson intervals say (two agreeing successes: about ``[-0.66, +0.66]``); it also never
  leaves ``[-1, 1]`` and needs no random draws, so the same records give the same file;
* ``d_latency_ms``, ``d_jerk``, ``d_offloads`` (mean chunk latency, RMS jerk, offloads per
  episode), each with ``_ci95``: the mean paired difference and its Student-t 95 % half-width
  (``t_{0.975, n-1} s / sqrt(n)``, :func:`~rapid_env.eval.summary.t_half_width`; NaN below two
  pairs). Pairs where either value is missing are left out of that metric only, and
  ``n_latency`` says how many pairs the latency difference rests on;
* ``d_offload_rate``: the change in offloads per simulated second over the paired episodes
  (:func:`offload_rate`), not per episode, since failing episodes run longer.

:func:`paired_rows` computes the rows (the W&B logger calls it too); :func:`write_paired`
writes them to ``OUT/paired.csv``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rapid_env import record_metrics
from rapid_env.eval.pooling import as_float
from rapid_env.eval.summary import _atomic_write, dedupe, t_half_width, wilson_interval
from rapid_env.record import invalid_reason

__all__ = [
    "PAIRED_COLUMNS",
    "PAIRED_CSV",
    "newcombe_paired_interval",
    "offload_rate",
    "paired_rows",
    "resolve_baseline",
    "write_paired",
]

PAIRED_CSV = "paired.csv"
"""The file of the paired comparison inside ``OUT``."""

PAIRED_COLUMNS: tuple[str, ...] = (
    "task", "noise", "link", "agent", "baseline", "n_pairs", "unpaired",
    "agent_success", "baseline_success", "d_success", "d_success_lo", "d_success_hi",
    "n_latency", "d_latency_ms", "d_latency_ms_ci95", "d_jerk", "d_jerk_ci95",
    "d_offloads", "d_offloads_ci95", "d_offload_rate",
)
"""The columns of ``paired.csv`` and the keys of every row of :func:`paired_rows`."""

_CONTINUOUS: tuple[tuple[str, str], ...] = (
    ("latency_ms_mean", "d_latency_ms"),
    ("rms_jerk", "d_jerk"),
    ("offloads", "d_offloads"),
)
"""Record field and row key of each metric compared by its mean paired difference."""

Record = Mapping[str, Any]


def offload_rate(records: Sequence[Record]) -> float:
    """Offloads per simulated second over ``records``; NaN when no simulated time was recorded.

    The one definition is :func:`rapid_env.record_metrics.offload_rate`.
    """
    rate = record_metrics.offload_rate(records)
    return math.nan if rate is None else rate


def resolve_baseline(baseline: str | None, agents: Sequence[str]) -> str:
    """The baseline agent: ``baseline`` when it is one of ``agents``, else the first agent.

    Raises:
        ValueError: ``baseline`` is not among ``agents`` (the message names them), or there are
            no agents at all.
    """
    names = [str(a) for a in agents]
    if baseline is None:
        if not names:
            raise ValueError("no agents to compare: the sweep has no records yet")
        return names[0]
    if baseline not in names:
        raise ValueError(f"--baseline {baseline!r} is not an agent of the sweep; its agents: "
                         f"{', '.join(names) or '(none)'}")
    return baseline


def newcombe_paired_interval(
    both: int, only_a: int, only_b: int, neither: int
) -> tuple[float, float]:
    """95 % interval of ``p_a - p_b`` for paired binary outcomes (Newcombe's method 10).

    Args:
        both: pairs where both succeeded.
        only_a: pairs where only A succeeded.
        only_b: pairs where only B succeeded.
        neither: pairs where neither did.

    Returns:
        ``(low, high)`` around ``(only_a - only_b) / n``; ``(nan, nan)`` for no pairs.
    """
    n = both + only_a + only_b + neither
    if n == 0:
        return (math.nan, math.nan)
    p_a, p_b = (both + only_a) / n, (both + only_b) / n
    l_a, u_a = wilson_interval(both + only_a, n)
    l_b, u_b = wilson_interval(both + only_b, n)
    product = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(product) if product > 0 else 0.0
    theta = p_a - p_b
    delta = math.sqrt(max(0.0, (p_a - l_a) ** 2 - 2 * phi * (p_a - l_a) * (u_b - p_b)
                          + (u_b - p_b) ** 2))
    epsilon = math.sqrt(max(0.0, (u_a - p_a) ** 2 - 2 * phi * (u_a - p_a) * (p_b - l_b)
                            + (p_b - l_b) ** 2))
    return (max(-1.0, theta - delta), min(1.0, theta + epsilon))


def _by_seed(records: Iterable[Record]) -> dict[str, Record]:
    """The valid records, keyed by seed (the first record of a seed kept)."""
    out: dict[str, Record] = {}
    for r in records:
        if invalid_reason(r) is None:
            out.setdefault(repr(r.get("seed")), r)
    return out


def _mean_difference(
    pairs: Sequence[tuple[Record, Record]], field: str
) -> tuple[float, float, int]:
    """Mean of ``agent - baseline`` where both are finite, its t half-width, and the pairs used."""
    diffs = []
    for a, b in pairs:
        x, y = as_float(a.get(field)), as_float(b.get(field))
        if math.isfinite(x) and math.isfinite(y):
            diffs.append(x - y)
    mean = math.fsum(diffs) / len(diffs) if diffs else math.nan
    return (mean, t_half_width(diffs), len(diffs))


def _compare(cell: tuple[str, str, str], agent: str, baseline: str,
             mine: list[Record], theirs: list[Record]) -> dict[str, Any]:
    """One row of the comparison (see the module docstring)."""
    ran, base = _by_seed(mine), _by_seed(theirs)
    pairs = [(ran[s], base[s]) for s in ran if s in base]
    wins = [(bool(a.get("success")), bool(b.get("success"))) for a, b in pairs]
    both = sum(a and b for a, b in wins)
    only_a = sum(a and not b for a, b in wins)
    only_b = sum(b and not a for a, b in wins)
    n = len(pairs)
    low, high = newcombe_paired_interval(both, only_a, only_b, n - both - only_a - only_b)
    row: dict[str, Any] = {
        "task": cell[0], "noise": cell[1], "link": cell[2], "agent": agent,
        "baseline": baseline, "n_pairs": n, "unpaired": len(mine) - n,
        "agent_success": (both + only_a) / n if n else math.nan,
        "baseline_success": (both + only_b) / n if n else math.nan,
        "d_success": (only_a - only_b) / n if n else math.nan,
        "d_success_lo": low, "d_success_hi": high,
    }
    for field, key in _CONTINUOUS:
        mean, half, used = _mean_difference(pairs, field)
        row[key], row[f"{key}_ci95"] = mean, half
        if key == "d_latency_ms":
            row["n_latency"] = used
    row["d_offload_rate"] = (offload_rate([a for a, _ in pairs])
                             - offload_rate([b for _, b in pairs])) if n else math.nan
    return {k: row[k] for k in PAIRED_COLUMNS}


def paired_rows(
    records: Iterable[Record], baseline: str | None = None, agents: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One paired-comparison row per task x noise x link cell and non-baseline agent.

    Args:
        records: episode records (duplicates are counted once, a valid copy first; invalid
            episodes are excluded).
        baseline: the agent every other is compared with; None: the first agent.
        agents: the agents' order for the rows and the default baseline (the sweep's order);
            None: the order they first appear in ``records``.

    Returns:
        Rows with the keys of :data:`PAIRED_COLUMNS`, cells in first-seen order, agents in
        ``agents`` order; a cell where the baseline has no records gets no rows.

    Raises:
        ValueError: ``baseline`` is not an agent of the records (the message names them).
    """
    unique, _ = dedupe(records)
    seen = list(dict.fromkeys(str(r.get("agent")) for r in unique))
    known = list(dict.fromkeys([*(str(a) for a in agents or ()), *seen]))
    base = resolve_baseline(baseline, known)
    order = [a for a in known if a in seen]
    cells: dict[tuple[str, str, str], dict[str, list[Record]]] = {}
    for r in unique:
        cell = (str(r.get("task")), str(r.get("noise")), str(r.get("link")))
        cells.setdefault(cell, {}).setdefault(str(r.get("agent")), []).append(r)
    rows = []
    for cell, by_agent in cells.items():
        if base not in by_agent:
            continue
        for agent in order:
            if agent != base and agent in by_agent:
                rows.append(_compare(cell, agent, base, by_agent[agent], by_agent[base]))
    return rows


def write_paired(
    records: Iterable[Record], out_dir: Path, baseline: str | None = None,
    agents: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Write ``out_dir/paired.csv`` (:func:`paired_rows`, NaN as an empty cell); return the rows.

    A sweep of one agent has nothing to compare: the file then holds the header alone. Replaced
    atomically, like ``summary.csv``. The rows are returned for the W&B sweep run's table.
    """
    rows = paired_rows(records, baseline, agents)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(PAIRED_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if isinstance(v, float) and not math.isfinite(v) else v
                         for k, v in row.items()})
    _atomic_write(Path(out_dir) / PAIRED_CSV, buffer.getvalue())
    return rows
