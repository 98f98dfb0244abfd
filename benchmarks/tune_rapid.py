"""Tune RAPID's thresholds and cooldown on training seeds; print the table docs/rapid.md quotes.

Two steps, both on *training* seeds only (0-999; evaluation uses seeds >= 1000, and this script
refuses them):

1. ``--stats``: the per-tick distribution of the importance score (and of its parts) on episodes
   where the trigger never fires (thresholds out of reach, so only refills run): the scale the
   thresholds must be read against. The threshold grid is set from its quantiles.
2. the grid: every (low, high) threshold pair x cooldown, on the same tasks and seeds (paired),
   plus a refill-only row. Objective, in order: higher success rate; then fewer inferences per
   episode; then lower RMS jerk; then fewer ticks to finish (failures count at the time limit).
   The best row is printed last.

Usage (what docs/rapid.md ran)::

    nice python benchmarks/tune_rapid.py --stats --tasks reach,push,drawer-close,\
button-press-topdown,peg-insert-side --seeds 0-5
    nice python benchmarks/tune_rapid.py --tasks reach,push,drawer-close,button-press-topdown,\
peg-insert-side --seeds 0-5 --low 0.5,1,2 --high 3,6,12 --cooldown 0.1,0.2

Everything runs in simulated time with the default policy (chunk-regress) and link
(constant:20:40); the records are deterministic, only ``us/decide`` is a wall-clock figure.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

import rapid_env  # noqa: F401  (sets MUJOCO_GL before mujoco loads)
from rapid_env.agents.rapid import DEFAULT_CONFIG, RapidConfig, RapidDecider
from rapid_env.compose import build_controller
from rapid_env.config import EnvConfig
from rapid_env.controller import PartitionedController
from rapid_env.decision import DeciderObservation, Decision
from rapid_env.episode import run_episode

TRAINING_SEEDS_END = 1000  # seeds >= this are evaluation seeds and never used for tuning
OFF = 1e9  # a threshold no score reaches: the trigger never fires, only refills run


def parse_seeds(text: str) -> list[int]:
    """``"0-5"`` -> [0..5], ``"0,3,7"`` -> [0, 3, 7]; only training seeds are allowed."""
    if "-" in text:
        lo, hi = (int(x) for x in text.split("-", 1))
        seeds = list(range(lo, hi + 1))
    else:
        seeds = [int(x) for x in text.split(",") if x]
    bad = [s for s in seeds if not 0 <= s < TRAINING_SEEDS_END]
    if not seeds or bad:
        raise ValueError(
            f"seeds {bad or text!r} not allowed; allowed: training seeds 0 .. "
            f"{TRAINING_SEEDS_END - 1} (evaluation seeds are never used for tuning)"
        )
    return seeds


def floats(text: str) -> list[float]:
    """Comma-separated floats."""
    return [float(x) for x in text.split(",") if x]


@dataclass
class Row:
    """Aggregate of one configuration over every task x seed."""

    label: str
    success: float
    ticks: float
    inferences: float
    critical: float
    intermediate: float
    preemptions: float
    stall_steps: float
    rms_jerk: float
    us_per_decide: float

    def key(self) -> tuple[float, float, float, float]:
        """Sort key of the documented objective (smaller is better)."""
        return (-self.success, self.inferences, self.rms_jerk, self.ticks)


def run_config(
    controllers: dict[str, PartitionedController], cfg: RapidConfig, seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """Run ``cfg`` on every task x seed; return the records with the decider's counts."""
    records: list[dict[str, Any]] = []
    for task, controller in controllers.items():
        for seed in seeds:
            decider = RapidDecider(cfg)
            rec = run_episode(controller, decider, seed)
            rec.update(task=task, seed=seed, **decider.counts)
            records.append(rec)
    return records


def summarise(label: str, records: list[dict[str, Any]]) -> Row:
    """Means over the records (ticks of a failed episode count as the time limit)."""

    def mean(key: str) -> float:
        vals = [float(r[key]) for r in records if r.get(key) is not None]
        return float(np.mean(vals)) if vals else math.nan

    return Row(
        label=label,
        success=mean("success"),
        ticks=mean("steps"),
        inferences=mean("inferences"),
        critical=mean("critical"),
        intermediate=mean("intermediate"),
        preemptions=mean("preemptions"),
        stall_steps=mean("stall_steps"),
        rms_jerk=mean("rms_jerk"),
        us_per_decide=mean("decision_cpu_us_mean"),
    )


def print_rows(rows: list[Row]) -> None:
    """A markdown table, one row per configuration."""
    print(
        "| config | success | ticks | inferences | critical | intermediate | preemptions "
        "| stall steps | RMS jerk | us/decide |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r.label} | {r.success:.3f} | {r.ticks:.1f} | {r.inferences:.2f} "
            f"| {r.critical:.2f} | {r.intermediate:.2f} | {r.preemptions:.2f} "
            f"| {r.stall_steps:.1f} | {r.rms_jerk:.1f} | {r.us_per_decide:.0f} |"
        )


def stats(controllers: dict[str, PartitionedController], seeds: Sequence[int]) -> None:
    """Quantiles of the per-tick score and its parts, with the trigger switched off."""
    cfg = replace(DEFAULT_CONFIG, low_threshold=OFF, high_threshold=OFF)
    parts: dict[str, list[float]] = {
        "score": [], "acc_z": [], "dtau_z": [], "speed": [], "acc_weight": []
    }
    for controller in controllers.values():
        for seed in seeds:
            d = _PartsRecorder(cfg)
            run_episode(controller, d, seed)
            for k in parts:
                parts[k].extend(d.parts[k])
    qs = (50, 75, 90, 95, 97.5, 99, 100)
    print(f"per-tick importance score and parts, {len(parts['score'])} ticks past warm-up, "
          "trigger off (refills only)")
    print("| quantity | " + " | ".join(f"{q}%" for q in qs) + " |")
    print("| --- |" + " --- |" * len(qs))
    for k, v in parts.items():
        vals = np.percentile(np.asarray(v), qs)
        print(f"| {k} | " + " | ".join(f"{x:.2f}" for x in vals) + " |")


class _PartsRecorder(RapidDecider):
    """A RAPID decider that keeps every scored tick's components (warm-up ticks left out)."""

    def __init__(self, cfg: RapidConfig) -> None:
        super().__init__(cfg)
        self.parts: dict[str, list[float]] = {
            "score": [], "acc_z": [], "dtau_z": [], "speed": [], "acc_weight": []
        }

    def decide(self, obs: DeciderObservation) -> Decision:
        """Decide as RAPID does, then record the score's parts."""
        decision = super().decide(obs)
        p = self.last_parts
        if p.ready:
            for k in self.parts:
                self.parts[k].append(float(getattr(p, k)))
        return decision


class _ObsRecorder(RapidDecider):
    """A RAPID decider that keeps every observation it was shown (for timing replays)."""

    def __init__(self, cfg: RapidConfig) -> None:
        super().__init__(cfg)
        self.seen: list[DeciderObservation] = []

    def decide(self, obs: DeciderObservation) -> Decision:
        """Record the observation, then decide as RAPID does."""
        self.seen.append(obs)
        return super().decide(obs)


def timing(
    controllers: dict[str, PartitionedController], seeds: Sequence[int], repeats: int = 20
) -> None:
    """Wall-clock microseconds per ``decide`` on real, full windows, replayed ``repeats`` times."""
    observations: list[DeciderObservation] = []
    for controller in controllers.values():
        for seed in seeds:
            rec = _ObsRecorder(DEFAULT_CONFIG)
            run_episode(controller, rec, seed)
            full = max(len(o.proprio) for o in rec.seen)  # the controller's whole window
            observations.extend(o for o in rec.seen if len(o.proprio) == full)
    d = RapidDecider(DEFAULT_CONFIG)
    per_call = []
    for _ in range(repeats):
        d.reset(np.random.default_rng(0))
        t0 = time.perf_counter_ns()
        for o in observations:
            d.decide(o)
        per_call.append((time.perf_counter_ns() - t0) / len(observations) / 1e3)
    print(f"decide() on {len(observations)} real observations x {repeats} replays: "
          f"median {np.median(per_call):.1f} us, min {min(per_call):.1f} us per call; "
          f"window {observations[-1].proprio.t.shape[0]} samples")


def grid(
    controllers: dict[str, PartitionedController],
    seeds: Sequence[int],
    lows: Sequence[float],
    highs: Sequence[float],
    cooldowns: Sequence[float],
    base: RapidConfig,
) -> list[Row]:
    """Every valid (low, high, cooldown) plus refill-only; rows in grid order."""
    rows = []
    off = replace(base, low_threshold=OFF, high_threshold=OFF)
    rows.append(summarise("refill only (trigger off)", run_config(controllers, off, seeds)))
    for low, high, cd in itertools.product(lows, highs, cooldowns):
        if low > high:
            continue
        cfg = replace(base, low_threshold=low, high_threshold=high, cooldown_s=cd)
        t0 = time.perf_counter()
        recs = run_config(controllers, cfg, seeds)
        row = summarise(f"low={low:g} high={high:g} cooldown={cd:g}", recs)
        rows.append(row)
        print(f"  {row.label}: success {row.success:.3f}, ticks {row.ticks:.1f}, "
              f"inferences {row.inferences:.2f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="reach,push,drawer-close")
    ap.add_argument("--seeds", default="0-2", help="training seeds: '0-5' or '0,3,7' (< 1000)")
    ap.add_argument("--policy", default="chunk-regress")
    ap.add_argument("--link", default="constant:20:40")
    ap.add_argument("--stats", action="store_true", help="print score quantiles and exit")
    ap.add_argument("--timing", action="store_true", help="time decide() on real windows, exit")
    ap.add_argument("--low", default="2,3,4", help="low thresholds to try")
    ap.add_argument("--high", default="5,8,12", help="high thresholds to try")
    ap.add_argument("--cooldown", default="0.2", help="cooldowns (s) to try")
    ap.add_argument("--cooldown-scope", default=None, choices=("trigger", "any"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = parse_seeds(args.seeds)
    tasks = [t for t in args.tasks.split(",") if t]
    base = DEFAULT_CONFIG
    if args.cooldown_scope is not None:
        base = replace(base, cooldown_scope=args.cooldown_scope)
    env = EnvConfig(policy=args.policy, link=args.link)
    controllers = {t: build_controller(replace(env, task=t)) for t in tasks}
    try:
        if args.stats:
            stats(controllers, seeds)
            return
        if args.timing:
            timing(controllers, seeds)
            return
        rows = grid(controllers, seeds, floats(args.low), floats(args.high),
                    floats(args.cooldown), base)
        print(f"\ntasks {','.join(tasks)}; seeds {args.seeds}; policy {args.policy}; "
              f"link {args.link}; cooldown_scope {base.cooldown_scope}")
        print_rows(rows)
        best = min(rows[1:], key=Row.key) if len(rows) > 1 else rows[0]
        print(f"\nbest by objective (success, inferences, jerk, ticks): {best.label}")
    finally:
        for c in controllers.values():
            c.task.close()


if __name__ == "__main__":
    main()
