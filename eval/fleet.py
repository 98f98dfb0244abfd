"""Fleets as a sweep: which robot runs what, one fleet per decider and link, and the summary.

A fleet of N robots is drawn from the sweep's cells the same way for every decider (paired):
robot ``i`` runs task ``tasks[i % T]`` under noise ``noises[(i // T) % K]`` with seed
``seed + i``, each on its own instance of the fleet's link. One fleet is one job
(:class:`FleetJob`): it runs in one process, since its robots share a clock.

:func:`fleet_summary` reduces a fleet's records to one row: requests per second, GPU
utilisation, chunk latency p50/p95/p99 pooled over the robots' delivered chunks, success, stall
share and time to success.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rapid_env.compose import build_controller, build_decider
from rapid_env.eval.fleet_replay import MAX_REPLAY_ROBOTS
from rapid_env.eval.jobs import KEY_FIELD, EpisodeJob, SweepSpec
from rapid_env.fleet.cell import parse_cell
from rapid_env.fleet.loop import FleetResult, FleetRobot, run_fleet
from rapid_env.fleet.queue import BatchPolicy
from rapid_env.record import assemble

__all__ = [
    "FleetJob", "FleetSpec", "fleet_jobs", "fleet_key", "fleet_summary", "fleet_task",
    "robot_jobs", "run_fleet_job",
]

MAX_ROBOTS = 4096
"""Robots in one closed-loop fleet: each is a MuJoCo scene and a policy in this process."""


@dataclass(frozen=True)
class FleetSpec:
    """Fleets to run: the sweep's cells, the fleet sizes and the shared cloud."""

    sweep: SweepSpec
    robots: tuple[int, ...]
    cloud: BatchPolicy
    cell: str | None = None
    stagger_s: float = 1.0

    def __post_init__(self) -> None:
        for n in self.robots:  # a closed-loop fleet has its own bound, MAX_ROBOTS
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_REPLAY_ROBOTS:
                raise ValueError(f"robots={n!r}; allowed: an int in 1..{MAX_REPLAY_ROBOTS}")


@dataclass(frozen=True)
class FleetJob:
    """One fleet: a decider, a link, N robots and the cloud they share."""

    agent: str
    link: str
    robots: int
    cloud: BatchPolicy
    sweep: SweepSpec
    cell: str | None = None
    stagger_s: float = 1.0

    def fleet_fields(self) -> dict[str, Any]:
        """The fleet's settings, as they are named in its summary row."""
        return {"agent": self.agent, "link": self.link, "robots": self.robots,
                "gpus": self.cloud.gpus, "max_batch": self.cloud.max_batch,
                "max_wait_ms": self.cloud.max_wait_s * 1e3, "cell": self.cell,
                "stagger_s": self.stagger_s}


def fleet_jobs(spec: FleetSpec) -> list[FleetJob]:
    """Every fleet of the spec: sizes x links x deciders, in that order."""
    return [FleetJob(agent, link, n, spec.cloud, spec.sweep, spec.cell, spec.stagger_s)
            for n in spec.robots for link in spec.sweep.links for agent in spec.sweep.agents]


def fleet_key(job: FleetJob) -> str:
    """16 hex digits naming a fleet: its settings, its robots' configuration and seeds."""
    sweep = job.sweep
    identity = {
        **job.fleet_fields(),
        "tasks": list(sweep.tasks), "noises": list(sweep.noises), "seed": sweep.seed,
        "env": sweep.base.to_dict(), "episode_s": dict(sweep.episode_s),
    }
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def robot_jobs(job: FleetJob) -> list[EpisodeJob]:
    """Robot ``i``'s episode: task ``i % T``, noise ``(i // T) % K``, seed ``seed + i``."""
    sweep = job.sweep
    tasks, noises = sweep.tasks, sweep.noises
    out = []
    for i in range(job.robots):
        task, noise = tasks[i % len(tasks)], noises[(i // len(tasks)) % len(noises)]
        out.append(EpisodeJob((task, noise, job.link, job.agent), sweep.seed + i,
                              sweep.config(task, noise, job.link)))
    return out


def run_fleet_job(job: FleetJob) -> tuple[list[dict[str, Any]], FleetResult]:
    """Build the fleet's robots, run it, and return its records (with their cell) and result.

    Each record opens with its robot's job identity; its ``episode_key`` digests the job's and
    the fleet's settings, so a fleet's record never passes for a lone robot's in a store.
    """
    if job.robots > MAX_ROBOTS:
        raise ValueError(f"robots={job.robots}; allowed: 1..{MAX_ROBOTS} in a closed-loop fleet")
    jobs = robot_jobs(job)
    robots = []
    for ej in jobs:
        decider = build_decider(ej.agent)
        controller = build_controller(ej.config, bool(decider.needs_image))
        robots.append(FleetRobot(controller, decider, ej.seed))
    cell = None
    if job.cell is not None:
        cell = parse_cell(job.cell, float(robots[0].controller.link.mean_bandwidth_bps))
    fleet = fleet_key(job)
    result = run_fleet(robots, job.cloud, cell, job.stagger_s, job.sweep.seed, fleet)
    records = []
    for ej, body in zip(jobs, result.records, strict=True):
        key = hashlib.sha256(f"{ej.key()}|{fleet}".encode()).hexdigest()[:16]
        records.append(assemble(job={**ej.head(), KEY_FIELD: key}, episode=body))
    for robot in robots:
        _close(robot)
    return records, result


def fleet_task(job: FleetJob) -> tuple[list[dict[str, Any]], dict[str, Any], list[Any], float]:
    """One fleet as a backend's task: records, summary row, timelines, simulated time.

    Plain data, for a worker process to send back.
    """
    import torch

    torch.set_num_threads(1)
    records, result = run_fleet_job(job)
    return records, fleet_summary(job, records, result), result.timelines, result.sim_time_s


def _close(robot: FleetRobot) -> None:
    close = getattr(robot.controller.task, "close", None)
    if callable(close):
        close()


def fleet_summary(
    job: FleetJob, records: Sequence[dict[str, Any]], result: FleetResult
) -> dict[str, Any]:
    """One row: the fleet's load, the cloud's utilisation and the robots' outcomes pooled."""
    lat = np.asarray([x for xs in result.latencies_s for x in xs]) * 1e3
    sim_s = max(result.sim_time_s, 1e-9)
    cloud = result.cloud
    gpus = job.cloud.gpus
    busy = cloud.busy_s(sim_s) if cloud is not None else 0.0
    n_req = sum(len(r) for r in result.requests)
    steps = sum(r["steps"] for r in records)
    stalls = sum(r["stall_steps"] for r in records)
    tts = [r["time_to_success_s"] for r in records if r["time_to_success_s"] is not None]
    queue = [r["queue_ms_p95"] for r in records if r["queue_ms_p95"] is not None]
    batches = cloud.batches if cloud is not None else []

    def pct(q: float) -> float | None:
        return float(np.percentile(lat, q)) if lat.size else None

    return {
        **job.fleet_fields(),
        "episodes": len(records),
        "success": float(np.mean([bool(r["success"]) for r in records])),
        "requests_per_s": n_req / sim_s,
        "gpu_util": busy / (gpus * sim_s) if gpus else None,
        "latency_ms_p50": pct(50),
        "latency_ms_p95": pct(95),
        "latency_ms_p99": pct(99),
        "queue_ms_p95_max": max(queue) if queue else None,
        "batch_size_mean": float(np.mean([b.size for b in batches])) if batches else None,
        "stall_share": stalls / steps if steps else None,
        "time_to_success_s": float(np.mean(tts)) if tts else None,
        "sim_time_s": sim_s,
        "bytes_up_per_s": sum(r["bytes_up"] for r in records) / sim_s,
    }


def meets(row: dict[str, Any], slo_p95_ms: float, min_success: float | None) -> bool:
    """Whether a fleet's summary row is within the SLO (and the success floor, if any)."""
    p95 = row["latency_ms_p95"]
    if p95 is None or not math.isfinite(p95) or p95 > slo_p95_ms:
        return False
    return min_success is None or row["success"] >= min_success


def with_robots(job: FleetJob, n: int) -> FleetJob:
    """The same fleet with ``n`` robots."""
    return replace(job, robots=n)
