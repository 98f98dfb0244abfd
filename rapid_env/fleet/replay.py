"""Trace-driven fleets: recorded request timelines replayed into the cloud queue, no physics.

A closed-loop fleet simulates every robot (MuJoCo, rendering, the policy) and costs seconds per
robot-episode; a city's fleet of thousands cannot run that way. The replay keeps only what the
cloud sees: each robot's requests, as a fleet that did not share its cloud recorded them
(:class:`~rapid_env.fleet.transport.RequestTrace`: send time, split, and the seconds of edge
compute and transfer around each cloud stage), sent again into a :class:`CloudQueue` of the
size asked for. A request's latency is its recorded gaps plus what the queue makes of its cloud
stages (waiting, and the batch's service time).

N robots are drawn from K recorded timelines: robot ``j`` replays timeline ``j mod K``; robots
beyond the first K are shifted by a time drawn uniformly in ``[0, horizon)`` and wrap around the
horizon, so copies of one timeline do not send in lockstep. What it leaves out, by design: a
robot does not react to the latency it gets (a closed-loop robot that stalls asks differently),
and the recorded transfers do not share a cell. How far that matters is measured against the
closed-loop fleet (docs/fleet.md).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from rapid_env.fleet.queue import BatchPolicy, CloudJob, CloudQueue
from rapid_env.fleet.transport import CloudStage, RequestTrace, service_seconds
from rapid_env.seeding import stagger_rng
from rapid_env.transport import CostPlanner

__all__ = ["ReplayResult", "replay"]


@dataclass(frozen=True)
class ReplayResult:
    """What the replayed fleet's requests met.

    Attributes:
        latencies_s: every request's latency (send to chunk back), in send order.
        queue_s: every request's seconds waiting for a GPU.
        busy_s: GPU-seconds the batches took.
        horizon_s: the replay's span (requests per second and utilisation are over it).
        batches: how many batches ran, and their mean size.
        refused: recorded requests not sent because their robot's window was full.
    """

    latencies_s: np.ndarray
    queue_s: np.ndarray
    busy_s: float
    horizon_s: float
    batches: int
    batch_size_mean: float
    refused: int = 0

    def p(self, q: float) -> float:
        """The ``q``-th percentile of latency, in milliseconds."""
        return float(np.percentile(self.latencies_s, q) * 1e3) if self.latencies_s.size else 0.0


Walk = Generator[tuple[CloudStage, float], tuple[float, float, int], None]


def replay(
    timelines: Sequence[Sequence[RequestTrace]],
    robots: int,
    policy: BatchPolicy,
    cost: CostPlanner,
    horizon_s: float,
    seed: int = 0,
    max_in_flight: int | None = None,
) -> ReplayResult:
    """Replay ``robots`` robots drawn from ``timelines`` into a cloud of ``policy``'s size.

    ``max_in_flight``: the controller's cap on a robot's requests in flight. A recorded request
    sent while its robot already has that many on their way is refused, as the controller would
    refuse it (``refused_requests``): the one feedback a replay keeps, and the one that matters
    most when the cloud slows down (a robot cannot pile up more than its window). None: every
    recorded request is sent.
    """
    if not timelines or robots < 1:
        raise ValueError(f"replay needs timelines and robots >= 1; got {len(timelines)}, {robots}")
    if not horizon_s > 0:
        raise ValueError(f"horizon_s={horizon_s!r}; allowed: > 0")
    k = len(timelines)
    shifts = np.zeros(robots)
    if robots > k:
        shifts[k:] = stagger_rng(seed).uniform(0.0, horizon_s, size=robots - k)
    sends: list[tuple[float, int, RequestTrace]] = []
    for j in range(robots):
        for req in timelines[j % k]:
            t = req.t + shifts[j]
            sends.append((t - horizon_s if t >= horizon_s else t, j, req))
    sends.sort(key=lambda s: (s[0], s[1]))
    cloud = CloudQueue(policy, service_seconds)
    model = repr(cost)
    latency = np.full(len(sends), np.nan)
    queued = np.zeros(len(sends))
    back = np.full(len(sends), np.inf)  # when each sent request's chunk is back (inf: not yet)
    mine: list[list[int]] = [[] for _ in range(robots)]  # each robot's sent requests

    def walk(i: int, t: float, req: RequestTrace) -> Walk:
        now = t + req.gaps[0]
        for index, gap in enumerate(req.gaps[1:]):
            start, seconds, _ = yield CloudStage(model, req.split, index, cost), now
            queued[i] += start - now
            now = start + seconds + gap
        latency[i] = now - t
        back[i] = now

    def resume(w: Walk, value: tuple[float, float, int] | None) -> None:
        try:
            stage, arrival = w.send(value)  # type: ignore[arg-type]  # None starts it
        except StopIteration:
            return
        cloud.submit(CloudJob(stage, arrival, float("inf"),
                              lambda s, d, b: resume(w, (s, d, b))))

    for i, (t, j, req) in enumerate(sends):
        cloud.advance(t)  # everything that starts before this send is decided
        if max_in_flight is not None:
            mine[j] = [k for k in mine[j] if back[k] > t]
            if len(mine[j]) >= max_in_flight:
                continue  # refused: the robot's window is full
            mine[j].append(i)
        resume(walk(i, t, req), None)
    cloud.drain()
    sent = ~np.isnan(latency)
    sizes = [b.size for b in cloud.batches]
    return ReplayResult(latency[sent], queued[sent], cloud.busy_s(), horizon_s, len(sizes),
                        float(np.mean(sizes)) if sizes else 0.0, int((~sent).sum()))
