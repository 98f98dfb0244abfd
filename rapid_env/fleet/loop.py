"""The fleet loop: N robots in one virtual clock, sharing one cloud.

Each tick, in this order:

1. every robot still running decides and sends its request (``controller.send``), timed by its
   :class:`~rapid_env.fleet.transport.FleetTransport`: edge part and upload over its own link;
2. the shared cloud starts every batch that starts before the next tick
   (:meth:`~rapid_env.fleet.queue.CloudQueue.advance`); each started request's walk goes on
   (its download is booked), so every chunk that arrives before the next tick is timed;
3. every robot's tick runs (``controller.run_tick``): deliveries, the action, physics.

A robot whose episode ended stops sending; the others go on. When the last one ends, the cloud
serves what is still queued (so every request's bytes count, as a lone robot's do), and each
robot's record is assembled: the single-robot record plus the fleet fields (``queue_ms_mean``,
``batch_size_mean`` ...). Nothing here draws a random number or reads the wall clock for a
decision: the same robots and seeds give the same records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rapid_env.controller import PartitionedController
from rapid_env.decision import Decider
from rapid_env.episode import EpisodeRun
from rapid_env.fleet.cell import CellSpec, WirelessCell
from rapid_env.fleet.queue import BatchPolicy, CloudQueue
from rapid_env.fleet.shared import SharedResources
from rapid_env.fleet.transport import (
    FleetTransport,
    RequestTrace,
    RobotLoad,
    service_seconds,
)
from rapid_env.observer import EpisodeObserver
from rapid_env.seeding import stagger_rng

__all__ = ["FleetResult", "FleetRobot", "admitted", "run_fleet"]


@dataclass
class FleetRobot:
    """One robot of a fleet: its controller (task, policy, link, noise), decider and seed."""

    controller: PartitionedController
    decider: Decider
    seed: int
    observers: Sequence[EpisodeObserver] = ()


@dataclass
class FleetResult:
    """A fleet's run: one record per robot, and what the cloud did.

    Attributes:
        records: per robot, in fleet order, its episode record with the fleet fields.
        latencies_s: per robot, the latencies of its delivered chunks.
        requests: per robot, the send times of its escalated requests (the arrival process a
            trace-driven replay or a real server is driven with).
        cloud: the shared cloud's queue (its batches, busy time).
        sim_time_s: virtual seconds from the first tick to the last robot's end.
        starts: per robot, the tick of the fleet's clock its episode started at.
        timelines: per robot, its requests that reached the cloud as a trace-driven replay
            needs them (:mod:`rapid_env.fleet.replay`).
    """

    records: list[dict[str, Any]]
    latencies_s: list[list[float]]
    requests: list[list[tuple[float, int]]] = field(default_factory=list)
    cloud: CloudQueue | None = None
    sim_time_s: float = 0.0
    starts: list[int] = field(default_factory=list)
    timelines: list[list[RequestTrace]] = field(default_factory=list)


def admitted(policy: BatchPolicy, controller: PartitionedController) -> BatchPolicy:
    """``policy`` with the cloud device's memory admission (weights once, state per request).

    A cloud that cannot hold the weights and one request raises ValueError.
    """
    cost = controller.cost
    weights, state = cost.cloud_memory_bytes()  # type: ignore[attr-defined]
    memory = float(cost.cloud.memory_bytes)  # type: ignore[attr-defined]
    fits = math.floor((memory - weights) / state) if state > 0 else None
    if fits is not None and fits < 1:
        raise ValueError(
            f"cloud {cost.cloud.name!r} holds {memory / 2**30:.1f} GiB; the model's weights "  # type: ignore[attr-defined]
            f"({weights / 2**30:.1f} GiB) and one request's state do not fit; allowed: a "
            "cloud device with more memory"
        )
    return BatchPolicy(policy.gpus, policy.max_batch, policy.max_wait_s, fits)


def run_fleet(
    robots: Sequence[FleetRobot],
    policy: BatchPolicy,
    cell: CellSpec | None = None,
    stagger_s: float = 0.0,
    seed: int = 0,
    key: str = "fleet",
) -> FleetResult:
    """Run every robot's episode in one virtual clock on one shared cloud (module docstring).

    ``stagger_s``: robots other than the first start their episodes at a whole tick drawn
    uniformly in ``[0, stagger_s)`` on the fleet's clock (from ``seed``'s own stream), as a real
    fleet's robots do not all start at once; 0 starts them together. ``key`` names the fleet in
    its records (``fleet_key``).

    The robots must share a control rate; their cost models must share the cloud (same
    profile and cloud device), since their requests batch together.
    """
    if not robots:
        raise ValueError("a fleet needs at least one robot")
    dts = {r.controller.task.tick_dt for r in robots}
    if len(dts) != 1:
        raise ValueError(f"a fleet's robots share one control rate; got tick_dt {sorted(dts)}")
    clouds = {(r.controller.cost.profile.name, r.controller.cost.cloud.name)  # type: ignore[attr-defined]
              for r in robots}
    if len(clouds) != 1:
        raise ValueError(f"a fleet's robots share one cloud model and device; got {sorted(clouds)}")
    policy = admitted(policy, robots[0].controller)
    cloud = CloudQueue(policy, service_seconds)
    shared = SharedResources(cloud, None if cell is None else WirelessCell(cell))
    transports = []
    runs: list[EpisodeRun] = []
    dt = dts.pop()
    starts = [0, *(int(x) for x in stagger_rng(seed).integers(
        0, max(1, round(stagger_s / dt)), size=len(robots) - 1))]
    for i, robot in enumerate(robots):
        transport = FleetTransport(robot.controller.link, shared, robot=i,
                                   offset_s=starts[i] * dt)
        robot.controller.use_transport(transport)
        transports.append(transport)
        runs.append(EpisodeRun(robot.controller, robot.decider, robot.seed, robot.observers))
    requests: list[list[tuple[float, int]]] = [[] for _ in robots]
    tick = 0
    while not all(run.done for run in runs):
        now = tick * dt
        active = [i for i, run in enumerate(runs) if starts[i] <= tick and not run.done]
        for i in active:
            controller = robots[i].controller
            before = controller.recorder.counts["offloads"]
            controller.send(runs[i].decide())
            if controller.recorder.counts["offloads"] > before:
                requests[i].append((now, controller.recorder.splits[-1]))
        shared.advance((tick + 1) * dt)
        for i in active:
            runs[i].after(robots[i].controller.run_tick())
        tick += 1
    shared.drain()
    records = [
        run.record({"fleet_key": key,
                    **_fleet_fields(i, len(robots), policy, cell, transports[i].load)})
        for i, run in enumerate(runs)
    ]
    latencies = [list(r.controller.latencies_s) for r in robots]
    timelines = [t.load.timeline for t in transports]
    return FleetResult(records, latencies, requests, cloud, tick * dt, starts, timelines)


def _fleet_fields(
    index: int, n: int, policy: BatchPolicy, cell: CellSpec | None, load: RobotLoad
) -> dict[str, Any]:
    queue_ms = np.asarray(load.queue_s) * 1e3
    return {
        "fleet_robots": n,
        "fleet_robot": index,
        "fleet_gpus": policy.gpus,
        "fleet_max_batch": policy.max_batch,
        "fleet_max_wait_ms": policy.max_wait_s * 1e3,
        "fleet_cell": None if cell is None else cell.name,
        "queue_ms_mean": float(queue_ms.mean()) if queue_ms.size else None,
        "queue_ms_p95": float(np.percentile(queue_ms, 95)) if queue_ms.size else None,
        "batch_size_mean": float(np.mean(load.batch_sizes)) if load.batch_sizes else None,
        "airtime_share": float(np.mean(load.airtime)) if load.airtime else 1.0,
    }
