"""One cloud of GPUs shared by a fleet: a request queue, batching, memory admission.

A robot alone owns its cloud: its request's cloud stage starts the moment the request arrives.
Robots that share a cloud queue for it. :class:`CloudQueue` is that queue, in virtual time:

* **FIFO with batching.** When a GPU is free, the oldest waiting job heads the next batch. The
  batch takes the waiting jobs of the same *kind* (same split and same stage of the plan, so the
  same blocks run over all of them), oldest first, up to ``max_batch``; it starts as soon as it
  is full or when the head has waited ``max_wait_s``, whichever comes first. ``max_wait_s=0``
  starts a batch with whatever is waiting.
* **Memory admission.** A GPU holds the weights once and each request in service adds its state
  (KV cache, activations): a batch is never larger than what fits (``max_concurrent``).
* **Service time** per batch from the cost model's roofline at that batch size
  (:meth:`rapid_env.cost.CostModel.cloud_stage_seconds`): prefill grows with the batch,
  a memory-bound decode step barely does.
* **Deadlines.** A job whose requester gave it up (its deadline passed) before its batch starts
  is dropped, not served.

Arrivals are known in time order only up to "now": a request reaches the cloud after its edge
part and its upload, and a later request may reach it first. :meth:`CloudQueue.advance` therefore
starts only the batches that start before ``until``; every job that could join such a batch has
arrived by then, so no decision is ever taken on a partial view (the fleet's lockstep loop calls
it once per tick, after every robot has sent its requests). ``gpus=None`` is a cloud with a GPU
per request (no queue at all): the single-robot harness's assumption.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

__all__ = ["Batch", "BatchPolicy", "CloudJob", "CloudQueue", "ServiceTime"]

ServiceTime = Callable[[Hashable, int], float]
"""``(kind, batch size) -> seconds`` of one batch of jobs of that kind."""


@dataclass(frozen=True)
class BatchPolicy:
    """How the shared cloud queues and batches.

    Attributes:
        gpus: GPUs serving the queue; None: one per request (nothing ever waits).
        max_batch: most jobs in one batch (B).
        max_wait_s: longest the head of the queue waits for its batch to fill (W).
        max_concurrent: most requests a GPU's memory admits at once (None: no limit).
    """

    gpus: int | None = 1
    max_batch: int = 1
    max_wait_s: float = 0.0
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        if self.gpus is not None and (not isinstance(self.gpus, int) or self.gpus < 1):
            raise ValueError(f"gpus={self.gpus!r}; allowed: an int >= 1, or None (unbounded)")
        if not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise ValueError(f"max_batch={self.max_batch!r}; allowed: an int >= 1")
        if not (math.isfinite(self.max_wait_s) and self.max_wait_s >= 0):
            raise ValueError(f"max_wait_s={self.max_wait_s!r}; allowed: a finite number >= 0")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ValueError(
                f"max_concurrent={self.max_concurrent!r}: the GPU's memory holds the weights but "
                "not one request's state; allowed: a cloud device with more memory, or a smaller "
                "model"
            )

    @property
    def batch_cap(self) -> int:
        """The largest batch: ``max_batch``, or less where memory admits fewer."""
        if self.max_concurrent is None:
            return self.max_batch
        return min(self.max_batch, self.max_concurrent)


@dataclass
class CloudJob:
    """One cloud stage of one request, waiting for a GPU.

    Attributes:
        kind: what runs (jobs batch only with jobs of the same kind).
        arrival: when the request's input is on the cloud.
        deadline: when its requester gives it up (a job not started by then is dropped).
        done: called once with ``(start, service seconds, batch size)`` when its batch starts
            (it finishes at ``start + service seconds``).
        dropped: called once, with the time it was dropped, if the deadline passed first.
        robot: which robot sent it (for the statistics only).
    """

    kind: Hashable
    arrival: float
    deadline: float
    done: Callable[[float, float, int], None]
    dropped: Callable[[float], None] | None = None
    robot: int = 0
    order: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Batch:
    """A batch the cloud ran: on which GPU, when, for how long, and how many jobs."""

    gpu: int
    start: float
    finish: float
    size: int
    kind: Hashable


def _fifo(job: CloudJob) -> tuple[float, int]:
    return job.arrival, job.order


class CloudQueue:
    """The shared cloud's queue, GPUs and batches (see the module docstring)."""

    def __init__(self, policy: BatchPolicy, service_s: ServiceTime) -> None:
        self.policy = policy
        self.service_s = service_s
        self._free = [(0.0, g) for g in range(policy.gpus or 0)]  # a heap: (free at, gpu)
        self._waiting: list[CloudJob] = []  # sorted by (arrival, order)
        self._order = 0
        self.batches: list[Batch] = []
        self.dropped = 0

    def submit(self, job: CloudJob) -> None:
        """A job reaches the queue (it is served by a later :meth:`advance`)."""
        job.order = self._order
        self._order += 1
        if self.policy.gpus is None:  # a GPU of its own: it starts on arrival, alone
            seconds = self.service_s(job.kind, 1)
            finish = job.arrival + seconds
            self.batches.append(Batch(-1, job.arrival, finish, 1, job.kind))
            job.done(job.arrival, seconds, 1)
            return
        bisect.insort(self._waiting, job, key=_fifo)

    def advance(self, until: float) -> None:
        """Start every batch that starts before ``until``, in start order.

        The caller has sent everything that arrives before then; each job's ``done`` learns its
        times.
        """
        while self.next_start() < until:
            self.start_next()

    def next_start(self) -> float:
        """When the next batch starts on what has arrived so far (inf: nothing waits)."""
        if not self._waiting:
            return math.inf
        return self._start_time(self._waiting[0], self._free[0][0])

    def start_next(self) -> None:
        """Start the next batch (or drop its head, whose requester gave it up)."""
        head = self._waiting[0]
        free, gpu = self._free[0]
        start = self._start_time(head, free)
        if head.deadline <= start:  # given up before a GPU took it
            self._waiting.pop(0)
            self.dropped += 1
            if head.dropped is not None:
                head.dropped(start)
            return
        taken = self._batch(head, start)
        batch = [self._waiting[i] for i in taken]
        seconds = self.service_s(head.kind, len(batch))
        finish = start + seconds
        heapq.heapreplace(self._free, (finish, gpu))
        self.batches.append(Batch(gpu, start, finish, len(batch), head.kind))
        for i in reversed(taken):  # positions near the head: cheap, however long the queue
            del self._waiting[i]
        for job in batch:
            job.done(start, seconds, len(batch))

    def _batch(self, head: CloudJob, start: float) -> list[int]:
        """Where in the queue the jobs are that the batch ``head`` heads takes, oldest first."""
        cap = self.policy.batch_cap
        if cap == 1:
            return [0]
        batch: list[int] = []
        for i, job in enumerate(self._waiting):
            if job.arrival > start or len(batch) == cap:
                break
            if job.kind == head.kind and job.deadline > start:
                batch.append(i)
        return batch

    def drain(self) -> None:
        """Serve everything still waiting (nothing more will arrive)."""
        while self._waiting:
            self.advance(math.inf)

    def _start_time(self, head: CloudJob, free: float) -> float:
        """When the batch ``head`` heads starts: full, or ``max_wait_s`` after it arrived."""
        ready = max(free, head.arrival)
        cap = self.policy.batch_cap
        if cap == 1 or self.policy.max_wait_s == 0:
            return ready
        full, seen = math.inf, 0
        for job in self._waiting:
            if job.kind == head.kind:
                seen += 1
                if seen == cap:
                    full = job.arrival
                    break
        return max(ready, min(head.arrival + self.policy.max_wait_s, full))

    def busy_s(self, until: float | None = None) -> float:
        """GPU-seconds spent serving batches (up to ``until`` when given)."""
        end = math.inf if until is None else until
        return sum(max(0.0, min(b.finish, end) - b.start) for b in self.batches)
