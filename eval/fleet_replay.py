"""``rapid-fleet --replay``: recorded requests replayed at any fleet size, and GPUs needed.

The timelines come from a closed-loop fleet's folder (its ``requests.jsonl``), one set per
decider and link: the largest fleet recorded for them, best recorded on a cloud that queued
nothing (``--gpus unbounded``), so the gaps around each cloud stage hold no queueing of the
recording's own. :func:`replay_row` replays N robots into a cloud of the size asked for and
reduces the result to the columns of a closed-loop fleet's summary row (no success: nothing
moves); :func:`gpus_needed` finds the fewest GPUs that keep the chunk latency p95 within the
SLO by doubling, then bisecting.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rapid_env.cost import build_cost_model
from rapid_env.eval.search import narrow
from rapid_env.fleet.queue import BatchPolicy
from rapid_env.fleet.replay import ReplayMode, ReplayResult, replay
from rapid_env.fleet.transport import RequestTrace

if TYPE_CHECKING:
    from rapid_env.cost.model import LoopCost, Placement

__all__ = [
    "MAX_REPLAY_ROBOTS", "Recording", "gpus_floor", "gpus_needed", "load_recordings",
    "replay_row",
]

CITY_CYCLES = 3
"""How many times :func:`gpus_needed` sends a recording over (:func:`replay`'s ``cycles``): the
first is the queue's warm-up, the other two show whether it keeps up."""

MAX_REPLAY_ROBOTS = 100_000
"""Robots in one replay: a city region's fleet, a few million requests per simulated minute."""

IDLE_UTIL = 0.25
"""A cloud this idle that still misses the SLO will not meet it with more GPUs: the latency
floor (edge compute, transfers, a full batch's service time) is above it."""

MAX_GPUS = 1 << 16
"""The most GPUs :func:`gpus_needed` tries before it says the SLO cannot be met by adding GPUs
(a latency floor above the SLO: edge compute and transfers alone exceed it)."""


@dataclass(frozen=True)
class Recording:
    """One decider's and link's recorded timelines, and the model they were recorded with."""

    agent: str
    link: str
    robots: int
    gpus: int | None
    horizon_s: float
    model: dict[str, str]
    timelines: list[list[RequestTrace]]

    def cost(self) -> Any:
        """The cost model whose cloud stages the requests run."""
        m = self.model
        placement: Placement = "edge-suffix" if m["placement"] == "edge-suffix" else "edge-prefix"
        loop: LoopCost = "once" if m["loop_cost"] == "once" else "per-pass"
        return build_cost_model(m["profile"], m["edge"], m["cloud"], placement=placement,
                                loop_cost=loop)


def load_recordings(folder: Path) -> dict[tuple[str, str], Recording]:
    """Per (decider, link), the largest fleet recorded in ``folder``'s ``requests.jsonl``.

    At equal size, one recorded on a cloud that queued nothing is preferred.
    """
    path = folder / "requests.jsonl"
    if not path.exists():
        raise ValueError(f"--replay {str(folder)!r} has no requests.jsonl; allowed: the --out "
                         "folder of a rapid-fleet run (record one with --gpus unbounded)")
    best: dict[tuple[str, str], Recording] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        rec = Recording(
            row["agent"], row["link"], row["robots"], row.get("gpus"), row["horizon_s"],
            row["model"],
            [[RequestTrace(r[0], r[1], tuple(r[2]), r[3] if len(r) > 3 else None) for r in robot]
             for robot in row["timelines"]],
        )
        key = (rec.agent, rec.link)
        old = best.get(key)
        if old is None or (rec.robots, rec.gpus is None) > (old.robots, old.gpus is None):
            best[key] = rec
    return best


def replay_row(
    rec: Recording,
    robots: int,
    policy: BatchPolicy,
    seed: int,
    max_in_flight: int | None = None,
    mode: ReplayMode = "fixed",
    cycles: int = 1,
) -> dict[str, Any]:
    """Replay ``robots`` robots of ``rec`` into ``policy``'s cloud: a summary row."""
    result = replay(rec.timelines, robots, policy, rec.cost(), rec.horizon_s, seed,
                    max_in_flight, mode, cycles)
    return {**_row(rec, robots, policy, result), "replay_mode": mode, "cycles": cycles}


def _row(rec: Recording, robots: int, policy: BatchPolicy, r: ReplayResult) -> dict[str, Any]:
    n = r.latencies_s.size
    return {
        "agent": rec.agent, "link": rec.link, "robots": robots, "mode": "trace",
        "recorded_robots": rec.robots, "gpus": policy.gpus, "max_batch": policy.max_batch,
        "max_wait_ms": policy.max_wait_s * 1e3, "requests": n, "refused": r.refused,
        "requests_per_s": n / r.horizon_s,
        "gpu_util": min(1.0, r.busy_s / (policy.gpus * r.horizon_s)) if policy.gpus else None,
        "latency_ms_p50": r.p(50) if n else None, "latency_ms_p95": r.p(95) if n else None,
        "latency_ms_p99": r.p(99) if n else None,
        "queue_ms_mean": float(r.queue_s.mean() * 1e3) if n else None,
        "batch_size_mean": r.batch_size_mean,
    }


def gpus_floor(rec: Recording, robots: int, policy: BatchPolicy) -> int:
    """The arithmetic: GPUs a fleet's requests keep fully busy over the recording's span.

    Each recorded request costs the cloud its stages' service at the largest batch, divided by
    that batch (the least GPU time batching can give it); ``robots`` robots send ``robots / K``
    times the K recorded robots' requests. Fewer GPUs than this cannot keep up at any latency.
    """
    cost = rec.cost()
    cap = policy.batch_cap
    work = 0.0
    for timeline in rec.timelines:
        for req in timeline:
            stages = cost.cloud_stage_seconds(req.split, cap)
            work += sum(stages[: len(req.gaps) - 1]) / cap
    return math.ceil(work * robots / len(rec.timelines) / rec.horizon_s)


def gpus_needed(
    rec: Recording,
    robots: int,
    policy: BatchPolicy,
    slo_p95_ms: float,
    seed: int,
    max_in_flight: int | None = None,
    mode: ReplayMode = "fixed",
) -> dict[str, Any]:
    """The fewest GPUs that keep ``robots`` robots' chunk latency p95 within the SLO."""
    probes: dict[int, dict[str, Any]] = {}
    floor = gpus_floor(rec, robots, policy)

    def ok(m: int) -> bool:
        if m not in probes:
            probes[m] = replay_row(rec, robots, replace(policy, gpus=m), seed, max_in_flight,
                                   mode, CITY_CYCLES if mode == "fixed" else 1)
        p95 = probes[m]["latency_ms_p95"]
        return p95 is not None and p95 <= slo_p95_ms

    lo, hi = max(0, floor - 1), max(1, floor)  # fewer than the floor can never keep up
    while not ok(hi):
        util = probes[hi]["gpu_util"]
        lo, hi = hi, hi * 2
        if hi > MAX_GPUS or (util is not None and util < IDLE_UTIL):
            return {"agent": rec.agent, "link": rec.link, "robots": robots, "gpus": None,
                    "slo_p95_ms": slo_p95_ms, "reachable": False, "gpus_floor": floor,
                    "probes": {m: probes[m]["latency_ms_p95"] for m in sorted(probes)}}
    hi = narrow(hi, lo, ok)
    row = probes[hi]
    return {"agent": rec.agent, "link": rec.link, "robots": robots, "gpus": hi,
            "slo_p95_ms": slo_p95_ms, "reachable": True,
            "max_batch": policy.max_batch, "max_wait_ms": policy.max_wait_s * 1e3,
            "replay_mode": mode, "gpus_floor": floor, "robots_per_gpu": robots / hi,
            "latency_ms_p95": row["latency_ms_p95"],
            "gpu_util": row["gpu_util"], "requests_per_s": row["requests_per_s"],
            "probes": {m: probes[m]["latency_ms_p95"] for m in sorted(probes)}}
