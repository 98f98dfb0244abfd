"""Batching for ``rapid-serve``: requests for the same split that wait together run as one forward.

A fleet of robots sharing one cloud GPU sends many small requests; one forward over a batch of
them costs little more than one over a single request, so a server that batches serves more of
them. :class:`Batcher` is that server's queue, with the rule of the fleet simulator's queue model
(:class:`rapid_env.fleet.queue.CloudQueue`), so that the model can be checked against a real
server (``benchmarks/bench_fleet_serve.py``):

* **One worker** (the one model, like one GPU) runs one batch at a time, on its own thread; the
  gRPC request threads hand it their checked, decoded requests and wait for their result.
* **FIFO.** The oldest waiting request heads the next batch. The batch takes the waiting requests
  of the same *kind* (the split: the same blocks run over all of them; one server serves one
  checkpoint), oldest first, up to ``max_batch``.
* It **starts** as soon as it is full or when its head has waited ``max_wait_s``, whichever comes
  first, and also early enough that no member's deadline passes while it waits: at the latest
  at a member's deadline less the longest of the last :data:`TIMED` batch times of that kind.
  Until a kind's first batch has been timed, its batches start at once (nothing is known yet to
  hold a request safely short of its deadline).
* **Deadlines.** A request whose deadline passes while it waits is taken out of the queue and
  answered at once (:class:`WaitedPastDeadline`), never after its deadline; one whose deadline
  has passed when its batch starts is answered so, without running.

Every request leaves a :class:`Served` record (monotonic :func:`time.perf_counter` seconds): when
its call arrived, when it entered the queue, when its batch started and finished, the batch's
size and the outcome. :meth:`Batcher.served` returns them; a benchmark that runs the server in
its own process reads them there (the last :data:`KEPT` are kept, so a long-running server's
memory stays bounded).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rapid_env.serve.model import DeadlineHit

log = logging.getLogger("rapid_env.serve")

State = dict[str, torch.Tensor]
RunBatch = Callable[[Sequence[State], int, float], list[np.ndarray]]
"""``(states, split, deadline) -> one chunk per state``: :meth:`CloudModel.forward_batch`."""

KEPT = 100_000
"""Most :class:`Served` records kept (the oldest are dropped first)."""

TIMED = 16
"""Batch times kept per kind: the longest of them is how long before a deadline a batch starts."""


class WaitedPastDeadline(Exception):
    """The request's deadline passed before a batch took it (``args[0]``: the seconds waited)."""


class BatcherClosed(Exception):
    """The server is stopping: the batcher takes no more requests."""


@dataclass(frozen=True)
class Served:
    """What happened to one request in the batcher (``perf_counter`` seconds).

    Attributes:
        request_id: the request's id.
        split: its kind (the split).
        received: when its call reached the server (before the checks and the decoding).
        queued: when it entered the queue (checked and decoded): its arrival at the batcher.
        start: when its batch started (or when it was given up, for ``expired``).
        finish: when its batch finished (``start`` for ``expired``).
        size: requests in its batch (0 for ``expired``).
        deadline: by when it had to be answered (the client's deadline or ``--deadline-s``).
        outcome: ``ok``, ``expired`` (deadline passed in the queue), ``deadline`` (passed
            during the forward) or ``failed`` (the forward raised).
    """

    request_id: str
    split: int
    received: float
    queued: float
    start: float
    finish: float
    size: int
    deadline: float
    outcome: str


@dataclass(eq=False)
class Job:
    """One request waiting for (or in) a batch; the batcher fills in its result.

    Attributes:
        split: the split (the kind it batches with).
        state: its decoded boundary state (batch 1).
        deadline: ``perf_counter`` time by which it must be answered.
        received: when its call reached the server.
        request_id: for the log and the statistics.
        chunk: its action chunk, once its batch ran.
        error: why it has no chunk (:class:`WaitedPastDeadline`, the model's
            :class:`~rapid_env.serve.model.DeadlineHit`, or the forward's exception).
    """

    split: int
    state: State
    deadline: float
    received: float
    request_id: str = ""
    chunk: np.ndarray | None = None
    error: BaseException | None = None
    queued: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def kind(self) -> Hashable:
        """What it batches with: requests for the same split."""
        return self.split


class Batcher:
    """The server's batching queue and its one worker thread (see the module docstring).

    Args:
        run: one forward over a batch of states (:meth:`CloudModel.forward_batch`).
        max_batch: most requests in one batch (``--max-batch``).
        max_wait_s: longest the head of the queue waits for its batch to fill
            (``--max-wait-ms`` / 1000).
        kept: most :class:`Served` records kept.
    """

    def __init__(self, run: RunBatch, max_batch: int, max_wait_s: float,
                 kept: int = KEPT) -> None:
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch={max_batch!r}; allowed: an int >= 1")
        if not (math.isfinite(max_wait_s) and max_wait_s >= 0):
            raise ValueError(f"max_wait_s={max_wait_s!r}; allowed: a finite number >= 0")
        self._run, self.max_batch, self.max_wait_s = run, max_batch, max_wait_s
        self._cond = threading.Condition()
        self._waiting: list[Job] = []
        self._closed = False
        self._service_s: dict[Hashable, deque[float]] = {}  # recent batch times, per kind
        self._served: deque[Served] = deque(maxlen=kept)
        self._thread = threading.Thread(target=self._loop, name="rapid-serve-batcher",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ request threads
    def run(self, job: Job) -> Job:
        """Queue ``job`` and wait for its result (a request thread calls this).

        Returns by the job's deadline at the latest unless a batch has taken it by then (a
        forward in progress is not interrupted; the model checks the deadline between blocks).

        Raises:
            BatcherClosed: the server is stopping.
        """
        with self._cond:
            if self._closed:
                raise BatcherClosed("the server is stopping")
            job.queued = time.perf_counter()
            self._waiting.append(job)
            self._cond.notify_all()
        if job.done.wait(max(0.0, job.deadline - time.perf_counter())):
            return job
        with self._cond:
            if job in self._waiting:  # no batch took it: give it up now, not after its deadline
                self._waiting.remove(job)
                self._expire(job, time.perf_counter())
                self._cond.notify_all()  # the head may have changed
        job.done.wait()
        return job

    def served(self) -> list[Served]:
        """The :class:`Served` records so far, in the order requests left the batcher."""
        with self._cond:
            return list(self._served)

    def close(self, wait: bool = True) -> None:
        """Take no more requests; the worker runs what is queued (without waiting to fill)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait:
            self._thread.join()

    # ------------------------------------------------------------------ the worker
    def _loop(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    return
            self._execute(batch)

    def _next_batch(self) -> list[Job] | None:
        """Wait (condition held) until a batch is due and take it; None once closed and empty."""
        while True:
            if not self._waiting:
                if self._closed:
                    return None
                self._cond.wait()
                continue
            now = time.perf_counter()
            head = self._waiting[0]
            same = [j for j in self._waiting if j.kind == head.kind][: self.max_batch]
            due = self._start_by(head, same)
            if now < due and not self._closed:
                self._cond.wait(due - now)
                continue
            for job in same:
                self._waiting.remove(job)
            live = [j for j in same if j.deadline > now]
            for job in same:
                if job.deadline <= now:
                    self._expire(job, now)
            if live:
                return live

    def _start_by(self, head: Job, same: list[Job]) -> float:
        """When the batch ``head`` heads must start: full, waited out, or a deadline near."""
        timed = self._service_s.get(head.kind)
        if len(same) >= self.max_batch or not timed:
            return head.queued
        latest = min(j.deadline for j in same) - max(timed)
        return min(head.queued + self.max_wait_s, latest)

    def _execute(self, batch: list[Job]) -> None:
        """Run one batch and hand every member its chunk (or the error)."""
        split = batch[0].split
        start = time.perf_counter()
        chunks: list[np.ndarray] | None = None
        error: BaseException | None = None
        try:  # the batch stops between blocks only when no member can use it any more
            chunks = self._run([j.state for j in batch], split, max(j.deadline for j in batch))
        except Exception as e:  # answered to every member, never fatal to the worker
            error = e
        finish = time.perf_counter()
        outcome = "ok"
        if error is not None:
            outcome = "deadline" if isinstance(error, DeadlineHit) else "failed"
        with self._cond:
            self._service_s.setdefault(split, deque(maxlen=TIMED)).append(finish - start)
            for i, job in enumerate(batch):
                job.state = {}  # the boundary's tensors are not kept with the statistics
                if chunks is not None:
                    job.chunk = chunks[i]
                job.error = error
                self._served.append(Served(job.request_id, split, job.received, job.queued,
                                           start, finish, len(batch), job.deadline, outcome))
        for job in batch:
            job.done.set()

    def _expire(self, job: Job, now: float) -> None:
        """Answer ``job``: its deadline passed before a batch took it (condition held)."""
        job.state = {}
        job.error = WaitedPastDeadline(now - job.queued)
        self._served.append(Served(job.request_id, job.split, job.received, job.queued, now,
                                   now, 0, job.deadline, "expired"))
        job.done.set()
