"""run_sweep tells one SweepObserver: the store opened, each stored record, the sweep stopped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rapid_env.config import EnvConfig
from rapid_env.eval.backends import make_backend
from rapid_env.eval.jobs import EpisodeJob, SweepSpec
from rapid_env.eval.runner import EXIT_INTERRUPTED, SweepObserver, run_sweep
from rapid_env.eval.store import ResultsStore

SPEC = SweepSpec(tasks=("reach",), agents=("rapid", "edge-only"), episodes=1, seed=1000,
                 base=EnvConfig(policy="expert", image_size=16, max_episode_s=0.5))


class Recorder:
    """Keeps what it was told, in order (and what the store held when it was opened)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_open(self, store: ResultsStore, pending: list[EpisodeJob]) -> None:
        self.calls.append(("open", (len(store.records), [job.agent for job in pending])))

    def on_record(self, record: dict[str, Any]) -> None:
        self.calls.append(("record", record["agent"]))

    def on_close(self, exit_code: int) -> None:
        self.calls.append(("close", exit_code))


class StopAfterFirst:
    """The in-process backend, with a Ctrl-C after its first record."""

    def __init__(self) -> None:
        self.inner = make_backend("local", 1)

    def run(self, jobs: Sequence[EpisodeJob]) -> Iterator[dict[str, Any]]:
        for record in self.inner.run(jobs):
            yield record
            raise KeyboardInterrupt

    def close(self) -> None:
        self.inner.close()


def test_observer_sees_open_records_and_close(tmp_path: Path) -> None:
    seen = Recorder()
    observer: SweepObserver = seen  # the protocol is satisfied structurally
    result = run_sweep(SPEC, tmp_path, observer, backend=make_backend("local", 1))
    assert result.complete and result.ran == 2
    assert seen.calls == [("open", (0, ["rapid", "edge-only"])), ("record", "rapid"),
                          ("record", "edge-only"), ("close", 0)]
    again = Recorder()
    run_sweep(SPEC, tmp_path, again, backend=make_backend("local", 1))  # all stored: resume
    assert again.calls == [("open", (2, [])), ("close", 0)]


def test_observer_is_closed_with_130_on_ctrl_c(tmp_path: Path) -> None:
    seen = Recorder()
    backend = StopAfterFirst()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(SPEC, tmp_path, seen, backend=backend)  # type: ignore[arg-type]
    backend.close()
    assert seen.calls[-2:] == [("record", "rapid"), ("close", EXIT_INTERRUPTED)]
    assert len(ResultsStore(tmp_path).episodes_path.read_text().splitlines()) == 1  # kept
