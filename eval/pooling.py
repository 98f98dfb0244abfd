"""Exact pooling of per-episode records: latency over every chunk, oracle ratios from counts.

A mean of per-episode ratios weighs a 20-tick episode like a 200-tick one; these functions pool
the quantities behind the ratios instead, so a cell's precision is (all hits) / (all requests).
Used by the sweep summary (:mod:`rapid_env.eval.summary`) and ``rapid-paper``'s tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rapid_env.record_metrics import (
    escalation_rate,
    offload_rate,
    per_second,
    ratio,
    redundant_share,
    trigger_precision,
    trigger_recall,
)

Record = Mapping[str, Any]


def as_float(value: Any) -> float:
    """A record or row value as a float; NaN for None, strings, bools and anything non-finite."""
    if value is None or isinstance(value, bool | str):
        return math.nan
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def num(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, None, bool, NaN, inf)."""
    out = as_float(value)
    return None if math.isnan(out) else out


def total(records: Iterable[Record], key: str) -> float:
    """Sum of ``key`` over ``records`` (missing and non-finite values count 0)."""
    return sum(num(r.get(key)) or 0.0 for r in records)


def pooled_latency(records: Sequence[Record]) -> dict[str, Any]:
    """Mean, std and stage split (ms) over every delivered chunk of ``records``.

    Each episode contributes its mean and population std over its ``latency_n`` chunks; the
    pooled variance is ``sum n (std^2 + mean^2) / N - mean^2``, exact.
    """
    n_tot = 0
    s1 = s2 = 0.0
    stages = {"edge_ms": 0.0, "cloud_ms": 0.0, "network_ms": 0.0}
    for r in records:
        n = int(r.get("latency_n") or 0)
        mean, std = num(r.get("latency_ms_mean")), num(r.get("latency_ms_std"))
        if n == 0 or mean is None or std is None:
            continue
        n_tot += n
        s1 += n * mean
        s2 += n * (std * std + mean * mean)
        for field in stages:
            stages[field] += n * (num(r.get(field.replace("_ms", "_ms_mean"))) or 0.0)
    if n_tot == 0:
        return {"latency_ms_mean": None, "latency_ms_std": None, "chunks": 0,
                **dict.fromkeys(stages)}
    mean = s1 / n_tot
    out: dict[str, Any] = {
        "latency_ms_mean": mean,
        "latency_ms_std": math.sqrt(max(0.0, s2 / n_tot - mean * mean)),
        "chunks": n_tot,
    }
    out.update({k: v / n_tot for k, v in stages.items()})
    return out


def episode_stats(records: Sequence[Record]) -> dict[str, Any]:
    """What every row shows: episodes, success rate, offloads and requests per simulated second."""
    n = len(records)
    return {
        "episodes": n,
        "success": sum(bool(r.get("success")) for r in records) / n if n else None,
        "offloads_per_s": offload_rate(records),
        "requests_per_s": per_second(records, "inferences"),
        "early_exits_per_s": per_second(records, "early_exits"),
        "escalation_rate": escalation_rate(records),
    }


def oracle_stats(records: Sequence[Record], tol: float) -> dict[str, Any]:
    """Redundant share and trigger precision / recall at ``tol``, pooled from the counts."""
    name = format(tol, "g")
    with_oracle = [r for r in records if r.get("oracle_ticks") is not None]
    ticks = total(with_oracle, "oracle_ticks")
    nonred = total(with_oracle, f"oracle_nonredundant_{name}")
    hits = total(with_oracle, f"oracle_hits_{name}")
    b_nonred = total(with_oracle, f"oracle_beyond_refill_nonredundant_{name}")
    b_hits = total(with_oracle, f"oracle_beyond_refill_hits_{name}")
    cached = ticks - total(with_oracle, "oracle_empty_ticks")
    return {
        "tolerance": tol,
        "oracle_ticks": int(ticks),
        "redundant_share": redundant_share(ticks, nonred),
        "redundant_share_of_cached": ratio(ticks - nonred, cached),
        "precision": trigger_precision(hits, total(with_oracle, "oracle_requests")),
        "recall": trigger_recall(hits, nonred),
        "precision_beyond_refill": trigger_precision(
            b_hits, total(with_oracle, "oracle_beyond_refill_requests")),
        "recall_beyond_refill": trigger_recall(b_hits, b_nonred),
    }
