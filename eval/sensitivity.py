"""Which of the paper's claims hold under which reading: ``OUT/sensitivity.json`` and ``.md``.

For every reading of :mod:`rapid_env.eval.readings` the paper's tables are built from that
reading's records (:func:`~rapid_env.eval.paper_tables.build_tables`, the same pooling as
``rapid-paper``), and each claim is scored from them: our figure, the paper's where it has one,
and whether the claim holds (``True`` / ``False``; ``None`` when the records hold no figure, e.g.
no successful episode to compare, or a scene the run left out). The test of each claim is fixed
here, stated in :data:`CLAIMS`, and never tuned to a reading.

Beside the claims, each reading gets its distance to the paper's own Table III: the root mean
square of ``ln(ours / paper)`` over RAPID's and the vision-triggered baseline's latency, edge
compute and cloud + network time (six figures; 0 is a perfect match, 0.1 is about 10 % off on
average). The reading with the smallest distance is the one that best matches how the paper's
numbers came about.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapid_env.eval.paired import newcombe_paired_interval
from rapid_env.eval.paper_tables import (
    PAPER_CLAIMS,
    PAPER_TABLE1,
    PAPER_TABLE2,
    PAPER_TABLE3,
    RAPID,
    STATED_TOLERANCE,
    TABLE2_TASKS,
    VISION,
    build_tables,
)
from rapid_env.eval.pooling import Record, oracle_stats
from rapid_env.eval.readings import Reading

__all__ = ["CLAIMS", "Claim", "build_sensitivity", "render_markdown", "write_sensitivity"]

Tables = Mapping[str, Any]
MARGIN = 1.05
"""A ratio claim ("faster", "rises") holds when our ratio exceeds 1 by more than 5 %: a smaller
difference is within what one modelling reading moves, and a 1.003x rise is no rise."""
REDUNDANCY_MARGIN = 0.05
"""The redundancy claim holds when our share is at least the paper's lowest (81.2 %) less five
points: the measures differ (attention weight vs our behavioural oracle), so a small shortfall is
not a refutation; a share far below it is."""


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, the figure that tests it and the test.

    Attributes:
        key: the claim's name in the JSON.
        text: the claim, as docs/paper.md states it.
        test: how ``holds`` is decided, in words (shown in the Markdown).
        unit: the unit of ``ours`` and ``paper``.
        paper: the paper's figure (None where it gives none).
        ours: our figure from one reading's tables and records (None: not measured).
        holds: the test on our figure and the reading's records: True, False, or None when
            the records cannot decide (an interval that straddles zero).
    """

    key: str
    text: str
    test: str
    unit: str
    paper: float | None
    ours: Callable[[Tables, Mapping[str, Sequence[Record]]], float | None]
    holds: Callable[[float, Mapping[str, Sequence[Record]]], bool | None]


def _row(table: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    return next((r["ours"] for r in table if r["row"] == name), {})


def _speedup(tables: Tables, _: Mapping[str, Sequence[Record]]) -> float | None:
    value = _row(tables["table3"], "RAPID").get("speedup_vs_vision")
    return None if value is None else float(value)


def _vision_rise(scene: str) -> Callable[[Tables, Mapping[str, Sequence[Record]]], float | None]:
    def ours(tables: Tables, _: Mapping[str, Sequence[Record]]) -> float | None:
        base = _row(tables["table1"], "vision-triggered / standard").get("latency_ms_mean")
        noisy = _row(tables["table1"], f"vision-triggered / {scene}").get("latency_ms_mean")
        return None if not base or noisy is None else float(noisy) / float(base)
    return ours


def _redundancy(tables: Tables, records: Mapping[str, Sequence[Record]]) -> float | None:
    recs = [r for r in records.get("rapid", ()) if r.get("task") in TABLE2_TASKS
            and r.get("noise") == "clean"]
    value = oracle_stats(recs, STATED_TOLERANCE)["redundant_share_of_cached"]
    return None if value is None else float(value)


def _overhead(tables: Tables, _: Mapping[str, Sequence[Record]]) -> float | None:
    value = _row(tables["table3"], "RAPID").get("decision_overhead_pct")
    return None if value is None else float(value)


def _accuracy_gain(tables: Tables, _: Mapping[str, Sequence[Record]]) -> float | None:
    rapid, vision, edge = (_row(tables["table3"], name).get("success")
                           for name in ("RAPID", "vision-triggered", "edge-only"))
    if rapid is None or vision is None or edge is None:
        return None
    return 100.0 * (float(rapid) - max(float(vision), float(edge)))


def _finishes_sooner(tables: Tables, records: Mapping[str, Sequence[Record]]) -> float | None:
    """Vision's / RAPID's mean time to success over the (task, seed) pairs both solved, clean."""
    def solved(setting: str) -> dict[tuple[Any, Any], float]:
        return {(r.get("task"), r.get("seed")): float(r["time_to_success_s"])
                for r in records.get(setting, ()) if r.get("noise") == "clean"
                and r.get("success") and r.get("time_to_success_s") is not None}
    rapid, vision = solved("rapid"), solved("vision")
    both = sorted(set(rapid) & set(vision), key=str)
    if not both:
        return None
    mean_rapid = sum(rapid[k] for k in both) / len(both)
    mean_vision = sum(vision[k] for k in both) / len(both)
    return mean_vision / mean_rapid if mean_rapid > 0 else None


def _gain_verdict(value: float, records: Mapping[str, Sequence[Record]]) -> bool | None:
    """Whether RAPID succeeds more often than the better baseline, from paired seeds.

    Pairs are the (task, seed) both ran in clean scenes; Newcombe's 95 % paired interval of the
    success difference above 0 gives True, below 0 False, and one straddling 0 None: a few
    episodes cannot decide it either way.
    """
    def outcomes(setting: str) -> dict[tuple[Any, Any], bool]:
        return {(r.get("task"), r.get("seed")): bool(r.get("success"))
                for r in records.get(setting, ()) if r.get("noise") == "clean"}
    rapid = outcomes("rapid")
    baselines = [outcomes(s) for s in ("vision", "edge-only")]
    best = max(baselines, key=lambda b: sum(b.values()) / len(b) if b else -1.0)
    keys = sorted(set(rapid) & set(best), key=str)
    if not keys:
        return None
    counts = [sum(1 for k in keys if (rapid[k], best[k]) == pair)
              for pair in ((True, True), (True, False), (False, True), (False, False))]
    low, high = newcombe_paired_interval(*counts)
    if low > 0:
        return True
    if high < 0:
        return False
    return None


_T3 = {k: PAPER_TABLE3[k]["latency_ms_mean"] for k in (RAPID, VISION)}
_LOW = min(PAPER_TABLE2.values())
CLAIMS: tuple[Claim, ...] = (
    Claim("rapid_faster_than_vision", "RAPID is faster than the vision-triggered baseline "
          "(standard scene)", "speedup > 1.05", "x", _T3[VISION] / _T3[RAPID], _speedup,
          lambda v, _: v > MARGIN),
    Claim("rapid_finishes_sooner", "RAPID's robot finishes sooner than the vision-triggered "
          "baseline's (the paper gives per-chunk latency only)", "vision / RAPID time to "
          "success, over the seeds both solve, > 1.05", "x", None, _finishes_sooner,
          lambda v, _: v > MARGIN),
    Claim("vision_latency_rises_visual_noise", "the vision-triggered baseline's latency rises "
          "with visual noise", "visual-noise / standard latency > 1.05", "x",
          PAPER_TABLE1["visual-noise"] / PAPER_TABLE1["standard"], _vision_rise("visual-noise"),
          lambda v, _: v > MARGIN),
    Claim("vision_latency_rises_interference", "... and with interference",
          "interference / standard latency > 1.05", "x",
          PAPER_TABLE1["interference"] / PAPER_TABLE1["standard"], _vision_rise("interference"),
          lambda v, _: v > MARGIN),
    Claim("redundancy_81_86", "81-86 % of steps are redundant (pick-place, drawer-open, "
          "peg-insert-side)", f"share of ticks with a cached action, tolerance "
          f"{STATED_TOLERANCE:g}, >= {100 * (_LOW - REDUNDANCY_MARGIN):.1f} %", "share",
          sum(PAPER_TABLE2.values()) / len(PAPER_TABLE2), _redundancy,
          lambda v, _: v >= _LOW - REDUNDANCY_MARGIN),
    Claim("overhead_5_7", "RAPID's decision overhead is 5-7 % of inference latency",
          f"{PAPER_CLAIMS['overhead_pct_low']:g} <= overhead <= "
          f"{PAPER_CLAIMS['overhead_pct_high']:g} %", "%",
          (PAPER_CLAIMS["overhead_pct_low"] + PAPER_CLAIMS["overhead_pct_high"]) / 2, _overhead,
          lambda v, _: PAPER_CLAIMS["overhead_pct_low"] <= v <= PAPER_CLAIMS["overhead_pct_high"]),
    Claim("accuracy_gain", "RAPID succeeds more often than edge-only and the vision-triggered "
          "baseline (up to +15.8 points)", "Newcombe's 95 % paired interval of RAPID's success - "
          "the better baseline's above 0 (below 0: fails; straddling 0: no verdict)",
          "points", PAPER_CLAIMS["accuracy_gain_pct_max"], _accuracy_gain, _gain_verdict),
)

TABLE3_FIELDS: tuple[tuple[str, str], ...] = (
    ("RAPID", "latency_ms_mean"), ("RAPID", "edge_ms"), ("RAPID", "cloud_plus_network_ms"),
    ("vision-triggered", "latency_ms_mean"), ("vision-triggered", "edge_ms"),
    ("vision-triggered", "cloud_plus_network_ms"),
)
"""The figures of Table III a reading is matched on (edge-only is calibrated: it cannot tell
readings apart)."""


def table3_distance(tables: Tables) -> float | None:
    """RMS of ``ln(ours / paper)`` over :data:`TABLE3_FIELDS`; None if one is missing or 0.

    A zero on one side (e.g. an early exit's 0 ms of network) has no logarithm; such a figure is
    compared at 0.5 ms instead, so a missing component counts as far off rather than vanishing.
    """
    rows = {r["row"]: r for r in tables["table3"]}
    logs = []
    for name, field in TABLE3_FIELDS:
        ours = rows.get(name, {}).get("ours", {}).get(field)
        paper = rows.get(name, {}).get("paper", {}).get(field)
        if ours is None or paper is None:
            return None
        logs.append(math.log(max(float(ours), 0.5) / max(float(paper), 0.5)))
    return math.sqrt(sum(x * x for x in logs) / len(logs))


def score_reading(reading: Reading, records: Mapping[str, Sequence[Record]]) -> dict[str, Any]:
    """One reading's tables, claim rows and Table III distance."""
    tables = build_tables(records, {})
    rows = []
    for claim in CLAIMS:
        ours = claim.ours(tables, records)
        if ours is not None and not math.isfinite(ours):
            ours = None
        row: dict[str, Any] = {"claim": claim.key, "reading": reading.id,
                               **reading.as_dict(), "ours": ours, "unit": claim.unit,
                               "holds": None if ours is None else claim.holds(ours, records)}
        if claim.paper is not None:
            row["paper"] = claim.paper
        if reading.undefined is not None and ours is None:
            row["note"] = f"undefined reading: {reading.undefined}"
        rows.append(row)
    t3 = {r["row"]: r["ours"] for r in tables["table3"]}
    return {
        "reading": reading.id, **reading.as_dict(), "rows": rows,
        "table3_distance": table3_distance(tables), "undefined": reading.undefined,
        "table3": {name: {k: t3.get(name, {}).get(k) for k in (
            "latency_ms_mean", "edge_ms", "cloud_plus_network_ms", "stall_share",
            "time_to_success_s", "success", "episodes")} for name in t3},
        "episodes": {k: len(v) for k, v in records.items()},
    }


def reference(records: Sequence[Record]) -> dict[str, Any]:
    """Redundancy under the never-stalling reference (RAPID on an ideal link), per Table II task.

    Shares over all ticks and over ticks with a cached action, and the stall share beside them:
    where the two shares agree, stalls do not shape the figure.
    """
    out: dict[str, Any] = {}
    for task in (*TABLE2_TASKS, "all"):
        recs = [r for r in records if r.get("noise") == "clean"
                and (task == "all" and r.get("task") in TABLE2_TASKS or r.get("task") == task)]
        if not recs:
            continue
        st = oracle_stats(recs, STATED_TOLERANCE)
        ticks = sum(int(r.get("steps") or 0) for r in recs)
        stalls = sum(int(r.get("stall_steps") or 0) for r in recs)
        out[task] = {"redundant_share": st["redundant_share"],
                     "redundant_share_of_cached": st["redundant_share_of_cached"],
                     "stall_share": stalls / ticks if ticks else None,
                     "paper": PAPER_TABLE2.get(task), "episodes": len(recs)}
    return out


def build_sensitivity(scored: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
                      ideal: Sequence[Record] = ()) -> dict[str, Any]:
    """The whole result: rows per (claim, reading), per-claim tallies, the best match.

    ``ideal``: the never-stalling reference's records (:func:`reference`).
    """
    rows = [row for s in scored for row in s["rows"]]
    claims = []
    for claim in CLAIMS:
        mine = [r for r in rows if r["claim"] == claim.key]
        claims.append({
            "claim": claim.key, "text": claim.text, "test": claim.test, "unit": claim.unit,
            "paper": claim.paper,
            "holds_in": [r["reading"] for r in mine if r["holds"] is True],
            "fails_in": [r["reading"] for r in mine if r["holds"] is False],
            "unknown_in": [r["reading"] for r in mine if r["holds"] is None],
        })
    distances = [(s["table3_distance"], s["reading"]) for s in scored
                 if s["table3_distance"] is not None]
    best = min(distances) if distances else None
    return {
        "rows": rows,
        "claims": claims,
        "readings": [{k: v for k, v in s.items() if k != "rows"} for s in scored],
        "best_match": None if best is None else {"reading": best[1], "table3_distance": best[0]},
        "reference_ideal_link": reference(ideal),
        "meta": dict(meta),
    }


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "share":
        return f"{100 * value:.0f} %"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:.2f} %"
    return f"{value:+.0f}"


def _mark(holds: bool | None) -> str:
    return {True: "yes", False: "no", None: "-"}[holds]


def render_markdown(result: Mapping[str, Any]) -> str:
    """The claims table (one line per claim: where it holds) and the full per-reading table."""
    meta = result.get("meta", {})
    n = len(result["readings"])
    out = ["# Which of the paper's claims hold under which reading", ""]
    if meta.get("command"):
        out += [f"Command: `{meta['command']}` ({meta.get('wall_s', '?')} s wall); policy "
                f"`{meta.get('policy')}`, tasks `{meta.get('tasks')}`, {meta.get('episodes')} "
                f"paired seed(s) per cell, {meta.get('max_episode_s')} s episodes.", ""]
    out += ["| claim | paper | test | holds in | fails in | no figure or no verdict |",
            "| --- | --- | --- | --- | --- | --- |"]
    for c in result["claims"]:
        out.append(f"| {c['text']} | {_fmt(c['paper'], c['unit'])} | {c['test']} | "
                   f"{len(c['holds_in'])} of {n} | {len(c['fails_in'])} | "
                   f"{len(c['unknown_in'])} |")
    best = result.get("best_match")
    if best:
        out += ["", f"Closest to the paper's Table III: `{best['reading']}` (distance "
                f"{best['table3_distance']:.3f}: RMS of ln(ours / paper) over RAPID's and the "
                "vision-triggered baseline's latency, edge and cloud + network time)."]
    ref = result.get("reference_ideal_link") or {}
    if ref:
        out += ["", f"Redundancy under the never-stalling reference (RAPID on an ideal link, "
                f"tolerance {STATED_TOLERANCE:g}):", "",
                "| task | of all ticks | of ticks with a cached action | stall share | paper |",
                "| --- | --- | --- | --- | --- |"]
        for task, r in ref.items():
            out.append(f"| {task} | {_fmt(r['redundant_share'], 'share')} | "
                       f"{_fmt(r['redundant_share_of_cached'], 'share')} | "
                       f"{_fmt(r['stall_share'], 'share')} | {_fmt(r['paper'], 'share')} |")
    axes = ("placement", "loop_cost", "baseline", "max_in_flight", "link", "action_contract")
    undefined = sorted({s["undefined"] for s in result["readings"] if s.get("undefined")})
    out += ["", "## Every reading", ""]
    for why in undefined:
        out += [f"Not run (no figure, `holds` null): {why}.", ""]
    out += [
            "| " + " | ".join(axes) + " | " + " | ".join(c.key for c in CLAIMS)
            + " | Table III distance | RAPID ms | vision ms | RAPID stall share |",
            "| " + " | ".join("---" for _ in range(len(axes) + len(CLAIMS) + 4)) + " |"]
    for s in result["readings"]:
        by_claim = {r["claim"]: r for r in result["rows"] if r["reading"] == s["reading"]}
        cells = [f"{_fmt(by_claim[c.key]['ours'], c.unit)} ({_mark(by_claim[c.key]['holds'])})"
                 for c in CLAIMS]
        t3 = s.get("table3", {})
        rapid, vision = t3.get("RAPID", {}), t3.get("vision-triggered", {})
        dist = s["table3_distance"]
        out.append("| " + " | ".join(str(s[a]) for a in axes) + " | " + " | ".join(cells)
                   + f" | {'-' if dist is None else f'{dist:.3f}'}"
                   f" | {_ms(rapid.get('latency_ms_mean'))} | {_ms(vision.get('latency_ms_mean'))}"
                   f" | {_fmt(rapid.get('stall_share'), 'share')} |")
    return "\n".join(out) + "\n"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def write_sensitivity(out: Path, result: Mapping[str, Any]) -> None:
    """``OUT/sensitivity.json`` and ``OUT/sensitivity.md``."""
    (out / "sensitivity.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    (out / "sensitivity.md").write_text(render_markdown(result))
