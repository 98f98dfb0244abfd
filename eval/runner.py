"""The sweep runner: tasks x agents x noises x links on paired seeds, one episode at a time.

Paired seeds: episode i of every cell uses seed ``seed + i``, so every decider meets the same
layouts, the same noise draws and the same link draws, and differences between cells are the
deciders' doing. Each finished episode is appended to ``episodes.jsonl`` and flushed at once, so a
crash loses nothing already finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from rapid_env.compose import build_controller, build_decider
from rapid_env.config import EnvConfig
from rapid_env.controller import PartitionedController
from rapid_env.episode import WALL_CLOCK_FIELDS, overhead_fields, run_episode

__all__ = [
    "WALL_CLOCK_FIELDS", "Cell", "EpisodeWriter", "SweepSpec", "cells", "iter_sweep",
    "iter_sweep_parallel", "overhead_fields", "run_cell", "run_episode", "run_sweep",
]


@dataclass(frozen=True)
class SweepSpec:
    """The cross product to run."""

    tasks: tuple[str, ...]
    agents: tuple[str, ...]
    noises: tuple[str, ...] = ("clean",)
    links: tuple[str, ...] = ("constant:20:40",)
    episodes: int = 3
    seed: int = 0
    base: EnvConfig = field(default_factory=EnvConfig)

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    def seeds(self) -> list[int]:
        """The paired episode seeds shared by every cell."""
        return [self.seed + i for i in range(self.episodes)]

    def n_episodes(self) -> int:
        """Total episodes in the sweep."""
        return (
            len(self.tasks) * len(self.agents) * len(self.noises) * len(self.links) * self.episodes
        )


Cell = tuple[str, str, str, str]
"""(task, noise, link, agent): one cell of the sweep, run over all paired seeds."""


def cells(spec: SweepSpec) -> list[Cell]:
    """The sweep's cells in the fixed record order (task, noise, link, agent)."""
    return [
        (task, noise, link, agent)
        for task in spec.tasks
        for noise in spec.noises
        for link in spec.links
        for agent in spec.agents
    ]


def run_cell(
    spec: SweepSpec, cell: Cell, controllers: dict[tuple[str, str, str, bool], Any]
) -> Iterator[dict[str, Any]]:
    """Yield the records of one cell, seed by seed; faults become records, not crashes.

    ``controllers`` caches built controllers by (task, noise, link, needs_image): building one
    loads MuJoCo and the policy, which costs more than a short episode.
    """
    task, noise, link, agent = cell
    cfg = replace(spec.base, task=task, noise=noise, link=link)
    for seed in spec.seeds():
        head = {"task": task, "agent": agent, "noise": noise, "link": link, "seed": seed,
                "policy": cfg.policy, "profile": cfg.profile, "edge": cfg.edge,
                "cloud": cfg.cloud}
        try:
            decider = build_decider(agent)
            key = (task, noise, link, bool(decider.needs_image))
            if key not in controllers:
                controllers[key] = build_controller(cfg, key[3])
            body = run_episode(controllers[key], decider, seed)
        except Exception as exc:  # record and go on: the sweep must finish
            body = {"success": False, "faults": 1,
                    "fault": f"episode_error: {type(exc).__name__}: {exc}"}
        yield {**head, **body}


def iter_sweep(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    """Yield one record per episode, in a fixed order; faults become records, not crashes."""
    controllers: dict[tuple[str, str, str, bool], PartitionedController] = {}
    previous: tuple[str, str, str] | None = None
    for cell in cells(spec):
        if previous is not None and cell[:3] != previous:
            _close_all(controllers)
        previous = cell[:3]
        yield from run_cell(spec, cell, controllers)
    _close_all(controllers)


def _close_all(controllers: dict[tuple[str, str, str, bool], PartitionedController]) -> None:
    for c in controllers.values():
        c.task.close()
    controllers.clear()


_WORKER_CONTROLLERS: dict[tuple[str, str, str, bool], PartitionedController] = {}


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker: the small models run fastest on one thread


def _worker_cell(args: tuple[SweepSpec, Cell]) -> list[dict[str, Any]]:
    spec, cell = args
    return list(run_cell(spec, cell, _WORKER_CONTROLLERS))


def iter_sweep_parallel(spec: SweepSpec, workers: int) -> Iterator[dict[str, Any]]:
    """Like :func:`iter_sweep` over ``workers`` processes, one cell per job.

    Records are identical to the serial run's (paired seeds; every random draw is seeded per
    episode); they arrive cell by cell in completion order, so ``episodes.jsonl`` is ordered
    differently, and a crash loses at most the cells in progress.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1:
        yield from iter_sweep(spec)
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # MuJoCo's EGL context and torch do not survive fork
    with ctx.Pool(workers, initializer=_worker_init) as pool:
        for records in pool.imap_unordered(_worker_cell, [(spec, c) for c in cells(spec)]):
            yield from records


class EpisodeWriter:
    """Appends records to ``episodes.jsonl``, one line each, flushed immediately."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: TextIO = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append and flush one record."""
        self._fh.write(json.dumps(record, sort_keys=False, default=_json_default) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def run_sweep(
    spec: SweepSpec,
    out_dir: Path,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Run the sweep, appending each record to ``out_dir/episodes.jsonl``; return all records.

    With ``workers > 1`` the returned list is put back in the serial order (cell, then seed).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = EpisodeWriter(out_dir / "episodes.jsonl")
    records: list[dict[str, Any]] = []
    try:
        for record in iter_sweep_parallel(spec, workers):
            writer.write(record)
            records.append(record)
            if on_record is not None:
                on_record(record)
    finally:
        writer.close()
    if workers > 1:
        order = {c: i for i, c in enumerate(cells(spec))}
        records.sort(key=lambda r: (order[(r["task"], r["noise"], r["link"], r["agent"])],
                                    r["seed"]))
    return records
