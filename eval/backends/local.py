"""Episodes in worker processes on this machine (``--workers N``), scheduled one episode at a time.

Episodes, not cells, are the unit of work, so a one-cell sweep of 200 episodes keeps every
worker busy. Workers are started with ``spawn`` (MuJoCo's EGL context and torch's OpenMP threads do
not survive ``fork``) and run one torch thread each (the small models run fastest on one thread, and
N workers then use N cores). A worker that dies (killed, out of memory) breaks the pool; the jobs
that were in flight are handed to a fresh pool, up to :data:`MAX_ATTEMPTS` times each, so a crash
costs a retry of those episodes, nothing else. A parent that dies (``kill -9``, the OOM killer)
takes its workers with it (:mod:`rapid_env.eval.backends.lifeline`): no orphan keeps a model
and a renderer in memory.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.util import Finalize
from typing import Any

from rapid_env.eval.backends.lifeline import die_with_parent, started_from_main_thread
from rapid_env.eval.execute import EpisodeRunner, error_record
from rapid_env.eval.jobs import EpisodeJob
from rapid_env.link import TraceWarning

MAX_ATTEMPTS = 3
"""How often a job is tried when its worker process dies under it."""

_RUNNER: EpisodeRunner | None = None
_TOKEN_FILE: str | None = None  # remote: links' token file path, set by the pool's initializer
_IMPORTS: tuple[str, ...] = ()  # --import modules, set by the pool's initializer


def _init_worker(
    token_file: str | None = None, imports: tuple[str, ...] = (), parent_pid: int | None = None,
    pdeathsig: bool = False,
) -> None:
    global _TOKEN_FILE, _IMPORTS
    if parent_pid is not None:  # first: a parent already gone must not leave this one behind
        die_with_parent(parent_pid, use_pdeathsig=pdeathsig)
    # One core per worker: torch's intra-op pool and Mesa's llvmpipe rasteriser would otherwise
    # each start a thread per core in every worker and fight over the cores.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    _TOKEN_FILE = token_file
    warnings.simplefilter("ignore", TraceWarning)  # the sweep's preflight said it, once
    _IMPORTS = imports


def _warm() -> int:
    """Import what every episode needs, so the first job does not pay for it."""
    import rapid_env.compose  # noqa: F401  (tasks, core, agents)
    from rapid_env.agents.vla import policy  # noqa: F401  (torch, transformers)

    return os.getpid()


def _run_job(job: EpisodeJob) -> dict[str, Any]:
    global _RUNNER
    if _RUNNER is None:
        _RUNNER = EpisodeRunner(token_file=_TOKEN_FILE, imports=_IMPORTS)
        # close the renderers while the worker is whole, before the EGL library's own exit
        # handlers: otherwise MuJoCo's __del__ prints EGL tracebacks as the worker exits
        Finalize(_RUNNER, _RUNNER.close, exitpriority=100)
    return _RUNNER.run(job)


class LocalBackend:
    """A pool of ``workers`` spawned processes fed one episode job at a time."""

    name = "local"

    def __init__(
        self, workers: int, token_file: str | None = None, imports: Sequence[str] = ()
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.token_file = token_file
        self.imports = tuple(imports)  # --import modules: each spawned worker imports them
        self._pool: ProcessPoolExecutor | None = None
        self.warm()

    def warm(self) -> None:
        """Start the workers now and let them import the harness while the caller prepares."""
        pool = self._pool or self._new_pool()
        for _ in range(self.workers):
            pool.submit(_warm)

    def _new_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
            initargs=(self.token_file, self.imports, os.getpid(), started_from_main_thread()),
        )
        return self._pool

    def run(self, jobs: Sequence[EpisodeJob]) -> Iterator[dict[str, Any]]:
        """Yield records as workers finish them; at most two jobs per worker are queued."""
        todo = list(reversed(jobs))  # pop() from the end keeps the serial order of submission
        attempts: dict[str, int] = {}
        pool = self._pool or self._new_pool()
        running: dict[Future[dict[str, Any]], EpisodeJob] = {}
        while todo or running:
            while todo and len(running) < 2 * self.workers:
                job = todo.pop()
                running[pool.submit(_run_job, job)] = job
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken: list[EpisodeJob] = []
            for fut in done:
                job = running.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken.append(job)
            if broken:  # a worker died: every job still in that pool is suspect, retry them all
                broken.extend(running.values())
                running.clear()
                pool = self._new_pool()
                for job in broken:
                    attempts[job.key()] = attempts.get(job.key(), 0) + 1
                    if attempts[job.key()] >= MAX_ATTEMPTS:
                        yield _died(job, attempts[job.key()])
                    else:
                        todo.append(job)

    def close(self) -> None:
        """Stop the workers (queued jobs are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _died(job: EpisodeJob, attempts: int) -> dict[str, Any]:
    return error_record(job, f"worker process died {attempts} times running this episode")
