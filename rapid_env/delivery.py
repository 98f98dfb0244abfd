"""Requests in flight, and the rules that turn an arriving chunk into the robot's next actions.

**Newest request wins.** A chunk whose request is older than the chunk already installed, or than a
preempting request, is dropped on arrival (``superseded``): it was planned from an older
observation.

**Alignment.** A chunk is planned from the observation at its request tick; ``chunk[i]`` is meant
for the i-th action the robot executes after that observation. On arrival we skip as many actions
as the robot has executed since the request (``align="executed"``, default): ticks spent holding
still do not count, because a robot that stood still is still where the chunk was planned from.
``align="time"`` skips one action per elapsed tick instead; with a latency longer than the chunk it
empties every chunk, which is why it is not the default.

**Loss.** A request whose transfer was lost is given up at its deadline (``lost``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from rapid_env.chunks import ChunkBuffer
from rapid_env.config import Align
from rapid_env.link import LinkEstimator
from rapid_env.transport import TimedRequest

_EPS_T = 1e-9

Result = Literal["installed", "stale", "superseded", "fault", "lost"]
"""What became of a request: its chunk was installed (or arrived with nothing left to
execute: ``stale``), was dropped as ``superseded``, carried a policy ``fault``, or never arrived
(``lost``)."""


@dataclass(frozen=True)
class Request:
    """A request on its way.

    Attributes:
        seq: request number in the episode (newer requests have larger numbers).
        tick: control tick at which it was sent.
        t: simulated send time.
        executed_at_request: actions the robot had executed when it was sent (for alignment).
        chunk: the chunk the policy produced, None after a policy fault.
        fault: the policy fault, if any.
        timed: when it arrives and what each stage took.
        deadline: when a lost request is given up.
    """

    seq: int
    tick: int
    t: float
    executed_at_request: int
    chunk: np.ndarray | None
    fault: str | None
    timed: TimedRequest
    deadline: float


@dataclass(frozen=True)
class Outcome:
    """What became of one request at delivery time.

    Attributes:
        request: the request.
        result: see :data:`Result`.
        latency: seconds from send to arrival; None when lost.
        timed_out: a lost request one of whose transfers hit the link's timeout horizon.
    """

    request: Request
    result: Result
    latency: float | None = None
    timed_out: bool = False


class InFlight:
    """The requests on their way, delivered into a :class:`ChunkBuffer` as they arrive."""

    def __init__(self, buffer: ChunkBuffer, estimator: LinkEstimator, align: Align) -> None:
        self.buffer = buffer
        self.estimator = estimator
        self.align = align
        self.pending: list[Request] = []
        self.next_seq = 0
        self._installed_seq = -1

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, request: Request) -> None:
        """A request was sent; the next one gets the next sequence number."""
        self.pending.append(request)
        self.next_seq = request.seq + 1

    def supersede_all(self) -> None:
        """A preemption: chunks still on their way were planned before the critical moment."""
        self._installed_seq = max(self._installed_seq, self.next_seq)

    def resolve(self, seq: int, timed: TimedRequest) -> bool:
        """Request ``seq``'s timing is known now; False when it is no longer in flight."""
        for i, req in enumerate(self.pending):
            if req.seq == seq:
                self.pending[i] = replace(req, timed=timed)
                return True
        return False

    def deliver(self, t: float, executed: int, tick: int) -> Iterator[Outcome]:
        """Deliver what has arrived by ``t`` and give up lost requests past their deadline.

        Yields one :class:`Outcome` per request that left the in-flight list, earliest arrival
        first; the link estimator learns from each request's transfers as it leaves.
        """
        for req in sorted(self.pending, key=_arrival_order):
            if req.timed.pending:  # a shared resource has not timed it yet: not due, not lost
                continue
            arrival = req.timed.arrival
            if arrival is not None and arrival <= t + _EPS_T:
                self.pending.remove(req)
                for tr in req.timed.transfers:
                    self.estimator.observe(tr)
                yield Outcome(req, self._install(req, executed, tick), arrival - req.t)
            elif arrival is None and t >= req.deadline - _EPS_T:
                self.pending.remove(req)
                for tr in req.timed.transfers:  # what the sender knows by now, no later arrival
                    self.estimator.observe(tr, now=t)
                timed_out = any(tr.timed_out for tr in req.timed.transfers)
                yield Outcome(req, "lost", timed_out=timed_out)

    def _install(self, req: Request, executed: int, tick: int) -> Result:
        if req.seq < self._installed_seq:
            return "superseded"
        self._installed_seq = req.seq
        if req.chunk is None:
            self.buffer.clear()  # the robot holds rather than act on garbage
            return "fault"
        skip = executed - req.executed_at_request if self.align == "executed" else tick - req.tick
        return "installed" if self.buffer.install(req.chunk, skip) > 0 else "stale"


def _arrival_order(req: Request) -> tuple[bool, float]:
    arrival = req.timed.arrival
    return (arrival is None, arrival or 0.0)
