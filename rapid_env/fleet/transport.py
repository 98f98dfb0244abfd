"""A robot's transport in a fleet: its own link, and a cloud stage that queues with the others'.

It walks the cost model's plan the way :class:`~rapid_env.transport.SimulatedTransport` does
(edge compute, transfers over the robot's own link, cloud compute, in plan order), except that a
cloud stage is a job on the fleet's shared :class:`~rapid_env.fleet.queue.CloudQueue`: the walk
pauses there and resumes when the queue has started the job's batch, with the queueing delay and
the batch's service time. A request is a generator that yields its cloud stages; the queue's
callback sends each one's times back in. With a GPU per request (``gpus=None``) and batches of
one, every job starts on arrival for exactly the plan's seconds: the single robot's walk.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from functools import lru_cache

from rapid_env.fleet.queue import CloudJob
from rapid_env.fleet.shared import SharedResources
from rapid_env.link import Link, TransferResult
from rapid_env.transport import CostPlanner, TimedRequest

__all__ = ["CloudStage", "FleetTransport", "RequestTrace", "RobotLoad", "service_seconds"]


@dataclass(frozen=True)
class CloudStage:
    """What batches with what: the same blocks of the same model (a split and a plan stage).

    Attributes:
        model: the cost model's identity (its ``repr``: profile, devices, readings).
        split: the request's split.
        index: which cloud stage of the plan (0; 1.. for the passes of a per-pass loop split).
        cost: the planner that times it (not part of the identity).
    """

    model: str
    split: int
    index: int
    cost: CostPlanner = field(compare=False, hash=False)


@lru_cache(maxsize=4096)
def _stage_seconds(stage: CloudStage, batch: int) -> float:
    seconds: tuple[float, ...] = stage.cost.cloud_stage_seconds(stage.split, batch)  # type: ignore[attr-defined]
    return seconds[stage.index]


def service_seconds(kind: object, batch: int) -> float:
    """The queue's service time: the cost model's roofline for ``batch`` jobs of ``kind``."""
    assert isinstance(kind, CloudStage)
    return _stage_seconds(kind, batch)


@dataclass(frozen=True)
class CellTransfer:
    """A transfer the walk hands to the cell: its direction, start and bytes."""

    direction: str
    start: float
    nbytes: int


@dataclass(frozen=True)
class RequestTrace:
    """One request as a replay sees it: when it was sent, its split, and what was not cloud.

    Attributes:
        t: send time on the fleet's clock.
        split: the request's split.
        gaps: seconds before its first cloud stage, between consecutive cloud stages, and after
            its last one until the chunk was back (edge compute and transfers; no queueing).
        back: when its chunk was back on the robot, on the fleet's clock (queueing included):
            a reactive replay times the robot's next request from it.
    """

    t: float
    split: int
    gaps: tuple[float, ...]
    back: float | None = None


@dataclass
class RobotLoad:
    """What one robot's requests met in what the fleet shares (its record's fleet fields).

    Attributes:
        queue_s: per timed request, seconds its cloud stages waited for a GPU.
        batch_sizes: per cloud stage served, the size of the batch it ran in.
        airtime: per transfer through the cell, its work over its time in the cell (1.0: it
            had the cell to itself).
        timeline: per request that reached the cloud, what a trace-driven replay needs.
    """

    queue_s: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    airtime: list[float] = field(default_factory=list)
    timeline: list[RequestTrace] = field(default_factory=list)


Walk = Generator[tuple[CloudStage, float] | CellTransfer, tuple[float, ...], TimedRequest]


class FleetTransport:
    """One robot's :class:`~rapid_env.transport.DeferredTransport` onto a shared cloud."""

    def __init__(
        self, link: Link, shared: SharedResources, robot: int = 0, offset_s: float = 0.0
    ) -> None:
        self.link = link
        self.shared = shared
        self.robot = robot
        self.offset_s = offset_s
        """When this robot's episode started on the fleet's clock: its controller and link
        keep the episode's own time, the shared resources the fleet's."""
        self.load = RobotLoad()

    def submit(
        self, cost: CostPlanner, split: int, t: float, done: Callable[[TimedRequest], None]
    ) -> None:
        """Walk ``split``'s plan from ``t``; ``done`` gets the timing once the cloud decided."""
        self._resume(self._walk(cost, split, t), None, done)

    def _resume(
        self,
        walk: Walk,
        value: tuple[float, ...] | None,
        done: Callable[[TimedRequest], None],
    ) -> None:
        try:
            step = walk.send(value)  # type: ignore[arg-type]  # None starts it
        except StopIteration as finished:
            done(finished.value)
            return

        def resume(*got: float) -> None:
            self._resume(walk, got, done)

        if isinstance(step, CellTransfer):
            assert self.shared.cell is not None
            self.shared.cell.join(step.direction, step.start + self.offset_s, step.nbytes, resume)
            return
        stage, arrival = step
        self.shared.cloud.submit(CloudJob(
            kind=stage,
            arrival=arrival + self.offset_s,
            deadline=float("inf"),  # like a lone robot's, a slow request is never given up
            done=resume,
            robot=self.robot,
        ))

    def _walk(self, cost: CostPlanner, split: int, t: float) -> Walk:
        """:class:`~rapid_env.transport.SimulatedTransport`'s walk, its cloud stages queued."""
        edge_s = cloud_s = up_s = down_s = queue_s = 0.0
        bytes_up = bytes_down = 0
        transfers: list[TransferResult] = []
        now: float | None = t
        index = 0
        model = repr(cost)
        gaps: list[float] = []
        mark = t  # where the current non-cloud gap began
        for stage in cost.plan(split).stages:
            assert now is not None
            if stage.kind == "edge":
                edge_s += stage.seconds
                now += stage.seconds
                continue
            if stage.kind == "cloud":
                gaps.append(now - mark)
                start, seconds, got = yield CloudStage(model, split, index, cost), now
                size = int(got)
                index += 1
                wait = start - (now + self.offset_s)  # on the fleet's clock, as it queued
                queue_s += wait
                cloud_s += seconds
                now = now + wait + seconds
                mark = now
                self.load.batch_sizes.append(size)
                continue
            res = self.link.transfer(int(stage.nbytes), now, stage.kind)
            if res.arrival is not None and self.shared.cell is not None:
                extra, work = yield CellTransfer(stage.kind, now, int(stage.nbytes))
                self.load.airtime.append(work / (work + extra) if work + extra > 0 else 1.0)
                if extra > 0:  # the cell was shared: the transfer is that much later
                    res = replace(res, arrival=res.arrival + extra)
            transfers.append(res)
            if stage.kind == "up":
                bytes_up += int(stage.nbytes)
            else:
                bytes_down += int(stage.nbytes)
            if res.arrival is None:
                now = None
                break
            if stage.kind == "up":
                up_s += res.arrival - now
            else:
                down_s += res.arrival - now
            now = res.arrival
        self.load.queue_s.append(queue_s)
        if gaps and now is not None:
            self.load.timeline.append(
                RequestTrace(t + self.offset_s, split, (*gaps, now - mark), now + self.offset_s))
        return TimedRequest(
            now, edge_s, cloud_s, up_s, down_s, bytes_up, bytes_down, tuple(transfers)
        )
