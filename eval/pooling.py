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


def total_or_none(records: Sequence[Record], key: str) -> float | None:
    """Sum of ``key`` over ``records``, or None when one of them lacks a finite value for it.

    For fields newer than some stores: a pooled count over records that predate the field is
    missing, not 0.
    """
    values = [num(r.get(key)) for r in records]
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def pooled_median(records: Sequence[Record], key: str) -> float | None:
    """Median of the per-tick values listed under ``key``, concatenated over ``records``.

    None when a record lacks the list (a store older than the field) or no record lists a value.
    """
    values: list[float] = []
    for r in records:
        listed = r.get(key)
        if not isinstance(listed, list):
            return None
        values.extend(float(v) for v in listed)
    if not values:
        return None
    values.sort()
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def time_and_stalls(records: Sequence[Record]) -> dict[str, Any]:
    """Time to success over the successful episodes, and the share of ticks the robot held.

    ``time_to_success_s`` is the mean of ``time_to_success_s`` over the successful episodes
    (``time_to_success_n`` of them); ``stall_share`` is the cell's stall ticks over its ticks
    (``stall_steps`` / ``steps`` summed), None when a record lacks them.
    """
    times = [t for r in records if r.get("success") is True
             and (t := num(r.get("time_to_success_s"))) is not None]
    stalls, steps = total_or_none(records, "stall_steps"), total_or_none(records, "steps")
    return {
        "time_to_success_s": sum(times) / len(times) if times else None,
        "time_to_success_n": len(times),
        "stall_share": None if stalls is None or steps is None else ratio(stalls, steps),
    }


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
        **time_and_stalls(records),
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
        **fair_oracle_stats(with_oracle, name),
    }


def _ratio_or_none(part: float | None, whole: float | None) -> float | None:
    return None if part is None or whole is None else ratio(part, whole)


def fair_oracle_stats(with_oracle: Sequence[Record], name: str) -> dict[str, Any]:
    """The oracle's scores over the ticks a trigger can act on, pooled from the counts.

    Redundant share of the ticks with a cached action (stall ticks apart), precision on eligible
    ticks (a cached action, nothing in flight) beside chance there, event recall and lead time,
    the noise floor (and the tolerance as a multiple of it; None for a deterministic policy,
    whose floor is 0) and the decider's own requests after a stall or on a fresh chunk. None
    where a record predates the fields: missing, not 0.
    """
    cached = total_or_none(with_oracle, "oracle_cached_ticks")
    eligible = total_or_none(with_oracle, "oracle_eligible_ticks")
    events = total_or_none(with_oracle, f"oracle_events_{name}")
    caught = total_or_none(with_oracle, f"oracle_events_caught_{name}")
    lead = total_or_none(with_oracle, f"oracle_event_lead_ticks_{name}")
    floor = pooled_median(with_oracle, "oracle_noise_spreads")
    tol = float(name)
    return {
        "cached_ticks": None if cached is None else int(cached),
        "stall_ticks": int(total(with_oracle, "oracle_empty_ticks")) if with_oracle else None,
        "redundant_of_cached": _ratio_or_none(
            total_or_none(with_oracle, f"oracle_redundant_cached_{name}"), cached),
        "eligible_ticks": None if eligible is None else int(eligible),
        "precision_eligible": _ratio_or_none(
            total_or_none(with_oracle, f"oracle_eligible_hits_{name}"),
            total_or_none(with_oracle, "oracle_eligible_requests")),
        "chance_eligible": _ratio_or_none(
            total_or_none(with_oracle, f"oracle_eligible_nonredundant_{name}"), eligible),
        "events": None if events is None else int(events),
        "event_recall": _ratio_or_none(caught, events),
        "event_lead_ticks": _ratio_or_none(lead, caught),
        "event_recall_own": _ratio_or_none(
            total_or_none(with_oracle, f"oracle_events_caught_own_{name}"), events),
        "noise_floor": floor,
        "tol_over_floor": tol / floor if floor else None,
        "drift_median": (drift := pooled_median(with_oracle, "oracle_drifts")),
        "tol_over_drift": tol / drift if drift else None,
        "own_requests": _int_or_none(total_or_none(with_oracle, "oracle_own_requests")),
        "own_after_stall": _int_or_none(total_or_none(with_oracle, "oracle_own_after_stall")),
        "own_preempt_fresh": _int_or_none(
            total_or_none(with_oracle, "oracle_own_preempt_fresh")),
    }


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)
