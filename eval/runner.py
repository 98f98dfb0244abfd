"""The sweep runner: tasks x agents x noises x links on paired seeds, into a results store.

Paired seeds: episode i of every cell uses seed ``seed + i``, so every decider meets the same
layouts, the same noise draws and the same link draws, and differences between cells are the
deciders' doing. :func:`run_sweep` opens the store (:mod:`rapid_env.eval.store`), hands the
episodes it does not hold yet to a backend (:mod:`rapid_env.eval.backends`) and stores each
record the moment it arrives, so a crash or Ctrl-C loses at most the episodes in progress and
the same command resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapid_env.episode import WALL_CLOCK_FIELDS, overhead_fields, run_episode
from rapid_env.eval.backends import Backend, make_backend
from rapid_env.eval.execute import EpisodeRunner, is_episode_error, with_oracle
from rapid_env.eval.jobs import Cell, EpisodeJob, SweepSpec, cells, plan
from rapid_env.eval.store import OpenMode, Recorded, ResultsStore

__all__ = [
    "WALL_CLOCK_FIELDS", "Cell", "SweepResult", "SweepSpec", "cells", "iter_sweep",
    "overhead_fields", "plan", "run_episode", "run_sweep",
]


def iter_sweep(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    """Yield one record per episode in the serial order, in this process, storing nothing."""
    runner = EpisodeRunner()
    try:
        for job in plan(spec):
            yield runner.run(job)
    finally:
        runner.close()


@dataclass
class SweepResult:
    """What a sweep left in its store.

    Attributes:
        records: every stored record of the sweep, in the serial order (cell, then seed).
        ran: episodes run by this invocation.
        resumed: episodes that were already in the store.
        episode_errors: stored records whose episode could not run (harness faults).
        complete: every episode of the sweep has a record.
    """

    records: list[dict[str, Any]]
    ran: int
    resumed: int
    episode_errors: int
    complete: bool


def run_sweep(
    spec: SweepSpec,
    out_dir: Path,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    workers: int = 1,
    backend: Backend | None = None,
    mode: OpenMode = "resume",
    on_open: Callable[[ResultsStore, list[EpisodeJob]], None] | None = None,
    manifest_extra: Mapping[str, Any] | None = None,
    videos: int = 0,
    oracle: tuple[float, ...] = (),
) -> SweepResult:
    """Run the episodes of ``spec`` that ``out_dir`` does not hold yet; return all of them.

    Args:
        spec: the sweep.
        out_dir: the results store's folder.
        on_record: called with each new record after it is stored.
        workers: local worker processes, when no ``backend`` is given.
        backend: where the episodes run (default: the local backend with ``workers``).
        mode: how to treat a store that holds a sweep already (:class:`ResultsStore`).
        on_open: called once the store is open, with the store and the pending jobs (to report
            a resume, set up logging, ...), before any episode runs.
        manifest_extra: written into the manifest as it is (e.g. the command line).
        videos: record media (video, per-tick series, still) of the first ``videos`` seeds of
            every cell into ``out_dir/videos/`` (:mod:`rapid_env.eval.media`); the workers write
            the files and each such record gets a ``media`` field. Only episodes run now are
            recorded, so a resume that asks for videos of stored episodes is refused
            (:class:`~rapid_env.eval.store.StoreError`). 0: nothing is traced or rendered.
        oracle: run the redundancy oracle (:mod:`rapid_env.oracle`) with these tolerances in
            every episode run now (:class:`~rapid_env.eval.execute.OracleJob`); their records
            get the oracle's fields. The policy then runs at every tick, so episodes are slower.
            Episodes already in the store are not rerun, so a resume that adds tolerances to
            stored episodes is refused (:class:`~rapid_env.eval.store.StoreError`).
    """
    if videos < 0:
        raise ValueError(f"--videos {videos} must be >= 0")
    store = ResultsStore(out_dir)
    store.open(spec, mode, manifest_extra, Recorded(tuple(oracle), videos))
    jobs = plan(spec)
    pending = store.pending(jobs)
    resumed = len(jobs) - len(pending)
    if videos:
        from rapid_env.eval.media import MEDIA_DIR, with_media

        pending = with_media(pending, spec, videos, out_dir / MEDIA_DIR)
    if oracle:
        pending = with_oracle(pending, oracle)
    ran = 0
    owned = backend is None
    backend = backend or make_backend("local", workers)
    try:
        if on_open is not None:
            on_open(store, pending)
        for record in backend.run(pending):
            if store.append(record):
                ran += 1
                if on_record is not None:
                    on_record(record)
    finally:
        store.close()
        if owned:
            backend.close()
    records = store.ordered(jobs)
    return SweepResult(
        records=records,
        ran=ran,
        resumed=resumed,
        episode_errors=sum(is_episode_error(r) for r in records),
        complete=len(records) == len(jobs),
    )
