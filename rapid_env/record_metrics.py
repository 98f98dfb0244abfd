"""Metrics derived from episode records, defined once for the summary, the report and the tables.

Nothing here is stored in a record: these are ratios over a group of records (a cell, a link x
noise pair, a whole sweep), or over the summary rows that :func:`rapid_env.eval.summary.summarize`
makes of them. Both forms give the same number for the same episodes, so a chart drawn from
``summary.csv`` and a table drawn from ``episodes.jsonl`` agree.

Like :mod:`rapid_env.record`, this module imports only the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DERIVED", "Derived", "escalation_rate", "offload_rate", "offload_rate_of_rows",
    "per_second", "per_second_of_rows", "ratio", "redundant_share", "trigger_precision",
    "trigger_recall",
]

Record = Mapping[str, Any]

SIM_TIME = "sim_time_s"
"""The denominator of every per-second rate: simulated seconds, never host seconds."""


@dataclass(frozen=True)
class Derived:
    """One derived metric, as ``docs/records.md`` lists it."""

    name: str
    unit: str
    doc: str


DERIVED: tuple[Derived, ...] = (
    Derived("offload rate", "1/s",
            "total `offloads` / total `sim_time_s` over the episodes that ran "
            "(`offload_rate`; from summary rows, `offload_rate_of_rows`)"),
    Derived("requests per second", "1/s", "total `inferences` / total `sim_time_s`"),
    Derived("early exits per second", "1/s", "total `early_exits` / total `sim_time_s`"),
    Derived("escalation rate", "", "total `offloads` / total `inferences`"),
    Derived("redundant share", "",
            "(ticks - non-redundant ticks) / ticks: per episode `redundant_share_<tol>`, pooled "
            "over a cell from `oracle_ticks` and `oracle_nonredundant_<tol>` "
            "(`pooled_redundant_share_<tol>` in the summary)"),
    Derived("trigger precision", "",
            "hits / requests: per episode `trigger_precision_<tol>`, pooled from "
            "`oracle_hits_<tol>` and `oracle_requests`"),
    Derived("trigger recall", "",
            "hits / non-redundant ticks: per episode `trigger_recall_<tol>`, pooled from "
            "`oracle_hits_<tol>` and `oracle_nonredundant_<tol>`"),
)
"""The derived metrics, for the generated docs."""


def _num(value: Any) -> float | None:
    """A finite number from a record or row (None for missing, None, bools, text, NaN, inf)."""
    if value is None or isinstance(value, bool | str):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def per_second(records: Iterable[Record], key: str) -> float | None:
    """Total ``key`` (a count) over total simulated seconds, over the episodes that ran.

    Pooled (a ratio of sums), not a mean of per-episode rates: a mean of ratios weighs a one-second
    episode like a ten-second one. An episode that ran is one with ``sim_time_s``; a count it
    lacks is 0 (records written before the count existed, e.g. ``early_exits``, had none to
    count). None when there are no simulated seconds (no record, or only ``episode_error`` ones).
    """
    count = seconds = 0.0
    for record in records:
        sim_s = _num(record.get(SIM_TIME))
        if sim_s is not None:
            count += _num(record.get(key)) or 0.0
            seconds += sim_s
    return count / seconds if seconds > 0 else None


def offload_rate(records: Iterable[Record]) -> float | None:
    """Offloads per simulated second: total ``offloads`` / total ``sim_time_s``.

    The one definition every table, chart and summary uses. Per second, not per episode, because
    a failing episode runs to the time limit and so asks more often per episode than one that
    succeeds early; per *simulated* second because that is the time the link and the robot
    lived through (host time depends on the machine). Pooled over the episodes, as
    :func:`per_second` says why; an episode that could not run (``episode_error``) has neither
    field and counts in neither sum.
    """
    return per_second(records, "offloads")


def per_second_of_rows(rows: Iterable[Record], key: str) -> float | None:
    """:func:`per_second` rebuilt from summary rows (cell means and their counts).

    A row holds ``key``'s mean over the ``episodes - <key>_nan`` episodes that had a value; mean
    times that count is the cell's total (the others count 0, as in :func:`per_second`), so the
    result equals :func:`per_second` over the rows' records, up to rounding. A row without
    ``episodes`` counts as one episode.
    """
    count = seconds = 0.0
    for row in rows:
        sim_s = _num(row.get(SIM_TIME))
        if sim_s is None:
            continue
        count += (_num(row.get(key)) or 0.0) * _n(row, key)
        seconds += sim_s * _n(row, SIM_TIME)
    return count / seconds if seconds > 0 else None


def offload_rate_of_rows(rows: Iterable[Record]) -> float | None:
    """:func:`offload_rate` from summary rows (:func:`per_second_of_rows`)."""
    return per_second_of_rows(rows, "offloads")


def escalation_rate(records: Sequence[Record]) -> float | None:
    """Share of requests that went (at least partly) to the cloud: total offloads / requests."""
    offloads = sum(_num(r.get("offloads")) or 0.0 for r in records)
    requests = sum(_num(r.get("inferences")) or 0.0 for r in records)
    return offloads / requests if requests > 0 else None


def ratio(part: float, whole: float) -> float | None:
    """``part / whole``, or None when there is nothing to divide by (JSON's null, not NaN)."""
    return part / whole if whole > 0 else None


def redundant_share(ticks: float, nonredundant: float) -> float | None:
    """Share of ticks on which a fresh plan would not have changed the action (the oracle's)."""
    return ratio(ticks - nonredundant, ticks)


def trigger_precision(hits: float, requests: float) -> float | None:
    """Share of the decider's requests made on non-redundant ticks (``hits``)."""
    return ratio(hits, requests)


def trigger_recall(hits: float, nonredundant: float) -> float | None:
    """Share of the non-redundant ticks on which the decider made a request."""
    return ratio(hits, nonredundant)


def _n(row: Record, key: str) -> float:
    """Episodes behind a row's mean of ``key``: ``episodes - <key>_nan`` (1 without a count)."""
    episodes = _num(row.get("episodes"))
    if episodes is None or episodes <= 0:
        return 1.0
    return episodes - (_num(row.get(f"{key}_nan")) or 0.0)
