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

import heapq
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np

from rapid_env.fleet.queue import BatchPolicy, CloudJob, CloudQueue
from rapid_env.fleet.transport import CloudStage, RequestTrace, service_seconds
from rapid_env.seeding import stagger_rng
from rapid_env.transport import CostPlanner

__all__ = ["REPLAY_MODES", "ReplayMode", "ReplayResult", "replay"]


@dataclass(frozen=True)
class ReplayResult:
    """What the replayed fleet's requests met.

    Attributes:
        latencies_s: every request's latency (send to chunk back), in send order.
        queue_s: every request's seconds waiting for a GPU.
        busy_s: GPU-seconds the batches took.
        horizon_s: the span measured (requests per second and utilisation are over it).
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
    mode: ReplayMode = "fixed",
    cycles: int = 1,
) -> ReplayResult:
    """Replay ``robots`` robots drawn from ``timelines`` into a cloud of ``policy``'s size.

    ``cycles`` (``fixed`` only): the recording is sent that many times over, each a
    ``horizon_s`` later, and the latencies are those of the requests after the first cycle: a
    queue that cannot keep up then shows how far it falls behind, which one short recording
    hides (at 99 % utilisation a 10 s replay barely queues).

    ``max_in_flight``: the controller's cap on a robot's requests in flight. A recorded request
    sent while its robot already has that many on their way is refused, as the controller would
    refuse it. None: every recorded request is sent.

    ``mode``: ``fixed`` sends every request at its recorded time (robots beyond the recorded
    ones shifted, wrapping around ``horizon_s``); ``reactive`` times each request from its
    robot's last chunk that had arrived when it was recorded (the recorded delay after that
    arrival, added to the arrival as replayed), or, when none had, from the robot's previous
    request (the recorded interval), so a robot whose chunks come later asks later, as a robot
    waiting for its chunk does; copies beyond the recorded robots start shifted, no wrap.
    """
    if not timelines or robots < 1:
        raise ValueError(f"replay needs timelines and robots >= 1; got {len(timelines)}, {robots}")
    if not horizon_s > 0:
        raise ValueError(f"horizon_s={horizon_s!r}; allowed: > 0")
    if cycles < 1 or (cycles > 1 and mode != "fixed"):
        raise ValueError(f"cycles={cycles!r}; allowed: an int >= 1 (more than 1: mode 'fixed')")
    if mode not in REPLAY_MODES:
        raise ValueError(f"mode={mode!r}; allowed: {', '.join(REPLAY_MODES)}")
    if mode == "reactive" and any(r.back is None for t in timelines for r in t):
        raise ValueError("a reactive replay needs each request's recorded arrival (`back`); "
                         "allowed: timelines recorded by this version of rapid-fleet, or "
                         "mode 'fixed'")
    k = len(timelines)
    shifts = np.zeros(robots)
    if robots > k:
        shifts[k:] = stagger_rng(seed).uniform(0.0, horizon_s, size=robots - k)
    run = _Run(policy, cost, robots, max_in_flight)
    if mode == "fixed":
        sends: list[tuple[float, int, RequestTrace]] = []
        for j in range(robots):
            for req in timelines[j % k]:
                t = req.t + shifts[j]
                t = t - horizon_s if t >= horizon_s else t
                sends += [(t + c * horizon_s, j, req) for c in range(cycles)]
        sends.sort(key=lambda s: (s[0], s[1]))
        for t, j, req in sends:
            run.cloud.advance(t)  # everything that starts before this send is decided
            run.send(t, j, req)
        span = cycles * horizon_s
    else:
        span = _reactive(run, [timelines[j % k] for j in range(robots)], shifts, horizon_s)
    run.cloud.drain()
    return run.result(span, horizon_s if cycles > 1 else -math.inf)


ReplayMode = Literal["fixed", "reactive"]
REPLAY_MODES: tuple[str, ...] = ("fixed", "reactive")


class _Run:
    """The queue, and every replayed request's fate."""

    def __init__(
        self, policy: BatchPolicy, cost: CostPlanner, robots: int, window: int | None
    ) -> None:
        self.cloud = CloudQueue(policy, service_seconds)
        self.cost = cost
        self.model = repr(cost)
        self.window = window
        self.latency: list[float] = []
        self.sent_t: list[float] = []
        self.queued: list[float] = []
        self.back: list[float] = []  # when each sent request's chunk is back (inf: not yet)
        self.mine: list[list[int]] = [[] for _ in range(robots)]  # each robot's sent requests
        self.refused = 0

    def send(
        self, t: float, robot: int, req: RequestTrace,
        on_back: Callable[[float], None] | None = None,
    ) -> bool:
        """Send ``req`` for ``robot`` at ``t`` (False: refused, the robot's window is full)."""
        if self.window is not None:
            self.mine[robot] = [i for i in self.mine[robot] if self.back[i] > t]
            if len(self.mine[robot]) >= self.window:
                self.refused += 1
                return False
        i = len(self.latency)
        self.latency.append(math.nan)
        self.sent_t.append(t)
        self.queued.append(0.0)
        self.back.append(math.inf)
        self.mine[robot].append(i)
        self._resume(self._walk(i, t, req, on_back), None)
        return True

    def _walk(
        self, i: int, t: float, req: RequestTrace, on_back: Callable[[float], None] | None
    ) -> Walk:
        now = t + req.gaps[0]
        for index, gap in enumerate(req.gaps[1:]):
            start, seconds, _ = yield CloudStage(self.model, req.split, index, self.cost), now
            self.queued[i] += start - now
            now = start + seconds + gap
        self.latency[i] = now - t
        self.back[i] = now
        if on_back is not None:
            on_back(now)

    def _resume(self, w: Walk, value: tuple[float, float, int] | None) -> None:
        try:
            stage, arrival = w.send(value)  # type: ignore[arg-type]  # None starts it
        except StopIteration:
            return
        self.cloud.submit(CloudJob(stage, arrival, math.inf,
                                   lambda s, d, b: self._resume(w, (s, d, b))))

    def result(self, span: float, measure_from: float = -math.inf) -> ReplayResult:
        """The requests sent from ``measure_from`` on, and the GPUs' busy time since then.

        ``measure_from`` -inf: the whole replay.
        """
        latency = np.asarray(self.latency)
        sent = ~np.isnan(latency) & (np.asarray(self.sent_t) >= measure_from)
        start = max(0.0, measure_from)
        busy = sum(max(0.0, min(b.finish, span) - max(b.start, start))
                   for b in self.cloud.batches)
        sizes = [b.size for b in self.cloud.batches]
        return ReplayResult(latency[sent], np.asarray(self.queued)[sent], busy, span - start,
                            len(sizes), float(np.mean(sizes)) if sizes else 0.0, self.refused)


def _reactive(
    run: _Run, timelines: Sequence[Sequence[RequestTrace]], shifts: np.ndarray, horizon: float
) -> float:
    """Send every robot's requests, each timed from what it waited for (see :func:`replay`)."""
    n = len(timelines)
    after: list[list[int | None]] = []  # per request: the robot's last chunk back before it
    for reqs in timelines:
        row: list[int | None] = []
        for k, req in enumerate(reqs):
            back = [p for p in range(k) if (reqs[p].back or math.inf) <= req.t]
            row.append(max(back, key=lambda p: reqs[p].back or 0.0) if back else None)
        after.append(row)
    sent_at: list[list[float]] = [[] for _ in range(n)]
    back_at: list[dict[int, float]] = [{} for _ in range(n)]
    waiting: list[bool] = [False] * n  # a robot whose next send waits for a chunk
    heap: list[tuple[float, int, int]] = []

    def schedule(j: int) -> None:
        k = len(sent_at[j])
        reqs = timelines[j]
        if k >= len(reqs):
            return
        if k == 0:
            heapq.heappush(heap, (reqs[0].t + shifts[j], j, 0))
            return
        p = after[j][k]
        if p is None:
            t = sent_at[j][k - 1] + (reqs[k].t - reqs[k - 1].t)
        elif p in back_at[j]:
            t = back_at[j][p] + (reqs[k].t - (reqs[p].back or 0.0))
        else:
            waiting[j] = True  # sent when chunk p is back
            return
        heapq.heappush(heap, (max(t, sent_at[j][k - 1]), j, k))

    def on_back(j: int, k: int, t: float) -> None:
        back_at[j][k] = t
        if waiting[j] and after[j][len(sent_at[j])] == k:
            waiting[j] = False
            schedule(j)

    for j in range(n):
        schedule(j)
    last = 0.0
    while heap or run.cloud.next_start() < math.inf:
        send_t = heap[0][0] if heap else math.inf
        if send_t <= run.cloud.next_start():
            t, j, k = heapq.heappop(heap)
            last = max(last, t)
            sent_at[j].append(t)
            req = timelines[j][k]
            if not run.send(t, j, req, partial(on_back, j, k)):
                on_back(j, k, t + ((req.back or t) - req.t))  # refused: as if it came back
            schedule(j)
        else:
            run.cloud.start_next()
    return max(last, horizon)
