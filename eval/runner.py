"""The sweep runner: tasks x agents x noises x links on paired seeds, into a results store.

Paired seeds: episode i of every cell uses seed ``seed + i``, so every decider meets the same
layouts, the same noise draws and the same link draws, and differences between cells are the
deciders' doing. :func:`run_sweep` opens the store (:mod:`rapid_env.eval.store`), hands the
episodes it does not hold yet to a backend (:mod:`rapid_env.eval.backends`) and stores each
record the moment it arrives, so a crash or Ctrl-C loses at most the episodes in progress and
the same command resumes. Whoever watches a sweep (a progress bar, a W&B logger) does so through
one :class:`SweepObserver`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rapid_env.episode import WALL_CLOCK_FIELDS, overhead_fields, run_episode
from rapid_env.eval.backends import Backend, make_backend
from rapid_env.eval.execute import EpisodeRunner, is_episode_error, with_oracle
from rapid_env.eval.jobs import Cell, EpisodeJob, SweepSpec, cells, plan
from rapid_env.eval.store import OpenMode, Recorded, ResultsStore
from rapid_env.record import invalid_reason

__all__ = [
    "EXIT_FAILED", "EXIT_INTERRUPTED", "WALL_CLOCK_FIELDS", "Cell", "SweepObserver", "SweepResult",
    "SweepSpec", "cells", "iter_sweep", "overhead_fields", "plan", "run_episode", "run_sweep",
]

EXIT_INTERRUPTED = 130
"""The exit code :meth:`SweepObserver.on_close` gets when the sweep stopped on Ctrl-C."""
EXIT_FAILED = 1
"""The exit code :meth:`SweepObserver.on_close` gets when the sweep stopped on an error."""


class SweepObserver(Protocol):
    """What watches a sweep as it runs: one object, so its parts share state without closures.

    :func:`run_sweep` calls :meth:`on_open` once, :meth:`on_record` per new record and
    :meth:`on_close` exactly once at the end, also when a call before it raised.
    """

    def on_open(self, store: ResultsStore, pending: list[EpisodeJob]) -> None:
        """The store is open and ``pending`` are the jobs to run; no episode has run yet.

        The place to report a resume, set up logging and write run ids into
        ``store.manifest`` (then ``store.write_manifest()``).
        """

    def on_record(self, record: dict[str, Any]) -> None:
        """A new record, already stored (flushed to ``episodes.jsonl``)."""

    def on_close(self, exit_code: int) -> None:
        """The sweep stopped and the store is closed.

        ``exit_code``: 0 when every pending job was run, :data:`EXIT_INTERRUPTED` on Ctrl-C,
        :data:`EXIT_FAILED` on any other error (which :func:`run_sweep` then raises).
        """


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
        resumed: episodes that were already in the store (valid ones: an invalid record is
            run again).
        episode_errors: stored records whose episode could not run (harness faults).
        complete: every episode of the sweep has a record.
        invalid: the stored records that are invalid (infrastructure faults, ``episode_error``
            ones included, :func:`~rapid_env.record.invalid_reason`): ``rapid-eval`` exits 3,
            and the same command runs them again.
    """

    records: list[dict[str, Any]]
    ran: int
    resumed: int
    episode_errors: int
    complete: bool
    invalid: list[dict[str, Any]] = field(default_factory=list)


def run_sweep(
    spec: SweepSpec,
    out_dir: Path,
    observer: SweepObserver | None = None,
    workers: int = 1,
    backend: Backend | None = None,
    mode: OpenMode = "resume",
    manifest_extra: Mapping[str, Any] | None = None,
    videos: int = 0,
    oracle: tuple[float, ...] = (),
) -> SweepResult:
    """Run the episodes of ``spec`` that ``out_dir`` holds no valid record of; return all of them.

    Args:
        spec: the sweep.
        out_dir: the results store's folder.
        observer: told when the store is open (with the pending jobs), of each new record after
            it is stored, and when the sweep stops (:class:`SweepObserver`).
        workers: local worker processes, when no ``backend`` is given.
        backend: where the episodes run (default: the local backend with ``workers``).
        mode: how to treat a store that holds a sweep already (:class:`ResultsStore`).
        manifest_extra: written into the manifest as it is (e.g. the command line).
        videos: record media (video, per-tick series, still) of the first ``videos`` seeds of
            every cell into ``out_dir/videos/`` (:mod:`rapid_env.eval.media`); the workers write
            the files and each such record gets a ``media`` field. Only episodes run now are
            recorded, so a resume that asks for videos of stored episodes is refused
            (:class:`~rapid_env.eval.store.StoreError`). 0: nothing is traced or rendered.
        oracle: run the redundancy oracle (:mod:`rapid_env.oracle`) with these tolerances in
            every episode run now (the jobs' ``oracle`` option); their records
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
    exit_code = EXIT_FAILED
    try:
        if observer is not None:
            observer.on_open(store, pending)
        for record in backend.run(pending):
            if store.append(record):
                ran += 1
                if observer is not None:
                    observer.on_record(record)
        exit_code = 0
    except KeyboardInterrupt:
        exit_code = EXIT_INTERRUPTED
        raise
    finally:
        store.close()
        if owned:
            backend.close()
        if observer is not None:
            observer.on_close(exit_code)
    records = store.ordered(jobs)
    return SweepResult(
        records=records,
        ran=ran,
        resumed=resumed,
        episode_errors=sum(is_episode_error(r) for r in records),
        complete=len(records) == len(jobs),
        invalid=[r for r in records if invalid_reason(r) is not None],
    )
