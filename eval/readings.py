"""``rapid-paper --readings``: the paper's regime rerun under every modelling reading.

docs/paper.md reconstructs the paper's regime with one reading of each thing the paper does not
say; each headline verdict rests on one of those readings. A :class:`Reading` names one choice per
axis, each an ordinary ``rapid-eval`` switch:

* ``placement``: which end of the model the edge holds within its memory budget
  (``--placement edge-prefix|edge-suffix|best``);
* ``loop_cost``: what a cut inside the decoding loop costs (``--loop-cost per-pass|once``);
* ``baseline``: what the vision-triggered baseline does when its trigger does not fire
  (``vision-entropy(mode=escalate,untriggered=early-exit|cross)``);
* ``max_in_flight``: refills that may be outstanding at once (``--max-in-flight N``);
* ``link``: the network (``--links``);
* ``action_contract``: what one call of the model returns (``--action-contract chunk|single``;
  ``single`` is OpenVLA-7B as released: one action per 7-token call; off the default grid).

The grid is the product of the axes. Each reading runs two sweeps, deduplicated across readings
that share them: RAPID on its 2.4 GiB partition with the redundancy oracle (the baseline's mode
does not touch RAPID), and the vision-triggered baseline on its 4.7 GiB partition in every scene.
Edge-only runs once (no reading moves the whole model on the edge). Every sweep is a resumable
results store under ``OUT/readings/<sweep id>/``, so a rerun of the same command resumes.
:mod:`rapid_env.eval.sensitivity` turns the records into the claims table.
"""

from __future__ import annotations

import argparse
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rapid_env.eval.paper import (
    RAPID_BUDGET_GIB,
    VISION_BUDGET_GIB,
    episode_s_argv,
    read_records,
)
from rapid_env.eval.paper_tables import EDGE_ONLY, RAPID, TOLERANCES, VISION

PLACEMENTS: tuple[str, ...] = ("edge-prefix", "edge-suffix", "best")
LOOP_COSTS: tuple[str, ...] = ("per-pass", "once")
BASELINES: tuple[str, ...] = ("early-exit", "cross")
CONTRACTS: tuple[str, ...] = ("chunk", "single")
MAX_MAX_IN_FLIGHT = 8
"""More refills in flight than this buys nothing on any link we model (a chunk is 8 actions)."""

DEFAULT_AXES: dict[str, tuple[str, ...]] = {
    "placement": ("edge-prefix", "edge-suffix"),
    "loop_cost": LOOP_COSTS,
    "baseline": BASELINES,
    "max_in_flight": ("1", "2"),
    "link": ("lab-wifi6", "constant:1000:2"),
    "action_contract": ("chunk",),
}
"""The default grid: 2 x 2 x 2 x 2 x 2 = 32 readings. ``constant:1000:2`` is a wired lab link
(1 Gbit/s, 2 ms RTT), the fastest plausible; ``lab-wifi6`` the regime's own."""

NOISES_FULL: tuple[str, ...] = ("clean", "visual-noise", "interference")
NOISES_QUICK: tuple[str, ...] = ("clean", "visual-noise")
"""``--quick`` leaves ``interference`` out (the claim about it then has no figure, ``holds``
null): it halves the baseline's episodes."""


@dataclass(frozen=True)
class Reading:
    """One choice per axis. ``id`` names it in files, tables and W&B."""

    placement: str
    loop_cost: str
    baseline: str
    max_in_flight: int
    link: str
    action_contract: str = "chunk"

    @property
    def id(self) -> str:
        """E.g. ``edge-suffix.once.cross.mif2.lab-wifi6``."""
        return ".".join((self.placement, self.loop_cost, self.baseline,
                         f"mif{self.max_in_flight}", _safe(self.link), *self._contract))

    @property
    def _contract(self) -> tuple[str, ...]:
        """The contract's part of a name: nothing for the default, so ids stay as they were."""
        return () if self.action_contract == "chunk" else (self.action_contract,)

    @property
    def rapid_sweep(self) -> str:
        """The folder of RAPID's sweep: the baseline's mode does not change RAPID."""
        return ".".join(("rapid", self.placement, self.loop_cost, f"mif{self.max_in_flight}",
                         _safe(self.link), *self._contract))

    @property
    def vision_sweep(self) -> str:
        """The folder of the vision-triggered baseline's sweep."""
        return f"vision.{self.id}"

    @property
    def undefined(self) -> str | None:
        """Why the baseline cannot run under this reading, or None when it can.

        An early exit answers from the edge's own blocks; under ``edge-suffix`` the edge holds
        the model's tail, which needs the cloud's prefix first, so there is nothing to exit from.
        """
        if self.placement == "edge-suffix" and self.baseline == "early-exit":
            return ("an early exit needs the model's first blocks on the edge; under edge-suffix "
                    "the edge holds the tail")
        return None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON: every axis by name."""
        return asdict(self)


def _safe(text: str) -> str:
    """A folder-safe form of a link spec (``constant:1000:2`` -> ``constant-1000-2``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def parse_axis(name: str, text: str) -> tuple[str, ...]:
    """One axis of the grid from a comma list; unknown values raise naming the allowed ones."""
    values = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    if not values:
        raise ValueError(f"--{name.replace('_', '-')} {text!r}: give at least one value")
    allowed = {"placement": PLACEMENTS, "loop_cost": LOOP_COSTS, "baseline": BASELINES,
               "action_contract": CONTRACTS}
    if name in allowed:
        bad = [v for v in values if v not in allowed[name]]
        if bad:
            raise ValueError(f"--{name.replace('_', '-')} {bad[0]!r}; allowed: "
                             f"{', '.join(allowed[name])}")
    elif name == "max_in_flight":
        for v in values:
            if not v.isdigit() or not 1 <= int(v) <= MAX_MAX_IN_FLIGHT:
                raise ValueError(f"--max-in-flight {v!r}; allowed: integers in "
                                 f"1..{MAX_MAX_IN_FLIGHT}")
    return values


def grid(axes: Mapping[str, Sequence[str]]) -> list[Reading]:
    """Every reading of the product of ``axes`` (keys as :data:`DEFAULT_AXES`), in order."""
    return [
        Reading(p, lc, b, int(m), link, c)
        for p, lc, b, m, link, c in itertools.product(
            axes["placement"], axes["loop_cost"], axes["baseline"], axes["max_in_flight"],
            axes["link"], axes.get("action_contract", ("chunk",)))
    ]


def rapid_agent(reading: Reading) -> str:
    """RAPID's spec under ``reading`` (``max_in_flight`` comes from the sweep flag)."""
    return RAPID


def vision_agent(reading: Reading) -> str:
    """The vision-triggered baseline's spec: escalation mode, untriggered as the reading says."""
    if reading.baseline == "early-exit":
        return VISION  # the default mode's spec, unchanged, so its records keep their name
    return f"vision-entropy(mode=escalate,untriggered={reading.baseline})"


def sweep_argv(
    reading: Reading, scheme: str, args: argparse.Namespace, out: Path
) -> list[str]:
    """The ``rapid-eval`` arguments of one of a reading's sweeps (``scheme``: rapid or vision)."""
    noises: tuple[str, ...]
    if scheme == "rapid":
        agent, noises, budget = rapid_agent(reading), ("clean",), RAPID_BUDGET_GIB
        folder, oracle = reading.rapid_sweep, True
    else:
        agent = vision_agent(reading)
        noises = NOISES_QUICK if args.quick else NOISES_FULL
        budget, folder, oracle = VISION_BUDGET_GIB, reading.vision_sweep, False
    argv = [
        "--tasks", args.tasks, "--agents", agent, "--noise", ",".join(noises),
        "--links", reading.link, "--episodes", str(args.episodes), "--seed", str(args.seed),
        "--policy", args.policy, *episode_s_argv(args.max_episode_s),
        "--workers", str(args.workers), "--out", str(out / "readings" / folder),
        "--group", f"readings-{out.name}", "--job-type", "readings",
        "--edge-budget-gib", f"{budget:g}",
        "--placement", reading.placement, "--loop-cost", reading.loop_cost,
        "--max-in-flight", str(reading.max_in_flight),
        "--action-contract", reading.action_contract,
        "--no-report",
    ]
    if oracle:
        argv += ["--oracle", ",".join(f"{t:g}" for t in TOLERANCES)]
    if args.wandb is not None:
        argv += ["--wandb", args.wandb]
    if args.quiet:
        argv.append("--quiet")
    return argv


def edge_only_argv(args: argparse.Namespace, out: Path) -> list[str]:
    """Edge-only's sweep: the whole model on the edge, the same under every reading."""
    argv = [
        "--tasks", args.tasks, "--agents", EDGE_ONLY, "--noise", "clean",
        "--links", "lab-wifi6", "--episodes", str(args.episodes), "--seed", str(args.seed),
        "--policy", args.policy, *episode_s_argv(args.max_episode_s),
        "--workers", str(args.workers), "--out", str(out / "readings" / "edge-only"),
        "--group", f"readings-{out.name}", "--job-type", "readings", "--no-report",
    ]
    if args.wandb is not None:
        argv += ["--wandb", args.wandb]
    if args.quiet:
        argv.append("--quiet")
    return argv


REFERENCE = "rapid.reference.ideal"
"""RAPID on an ideal link (no transfer time), the oracle on: the never-stalling reference the
redundancy claim is also read against, so the share is not one of a stalling robot."""


def reference_argv(readings: Sequence[Reading], args: argparse.Namespace,
                   out: Path) -> list[str]:
    """The reference sweep: RAPID, ideal link, the grid's deepest pipelining, the oracle on."""
    reading = Reading("edge-prefix", "per-pass", "early-exit",
                      max(r.max_in_flight for r in readings), "ideal")
    argv = sweep_argv(reading, "rapid", args, out)
    argv[argv.index("--out") + 1] = str(out / "readings" / REFERENCE)
    return argv


def sweeps(readings: Sequence[Reading], args: argparse.Namespace,
           out: Path) -> dict[str, list[str]]:
    """Every distinct sweep of the grid: folder name -> ``rapid-eval`` arguments, in run order."""
    plan: dict[str, list[str]] = {"edge-only": edge_only_argv(args, out),
                                  REFERENCE: reference_argv(readings, args, out)}
    for reading in readings:
        plan.setdefault(reading.rapid_sweep, sweep_argv(reading, "rapid", args, out))
        if reading.undefined is None:
            plan.setdefault(reading.vision_sweep, sweep_argv(reading, "vision", args, out))
    return plan


def reading_records(out: Path, reading: Reading,
                    cache: dict[str, list[dict[str, Any]]] | None = None
                    ) -> dict[str, list[dict[str, Any]]]:
    """A reading's records in the shape :func:`~rapid_env.eval.paper_tables.build_tables` reads.

    Each sweep holds one scheme, so its records are relabelled with the regime's agent names
    (``rapid``, ``vision-entropy(mode=escalate)``) whatever spec the reading ran them under (a
    ``max_in_flight`` or ``untriggered`` parameter); the spec each ran under stays in
    ``agent_spec``.
    """
    cache = {} if cache is None else cache

    def load(folder: str) -> list[dict[str, Any]]:
        if folder not in cache:
            cache[folder] = read_records(out / "readings" / folder)
        return cache[folder]

    def relabel(records: list[dict[str, Any]], agent: str) -> list[dict[str, Any]]:
        return [{**r, "agent_spec": r.get("agent"), "agent": agent} for r in records]

    return {
        "rapid": relabel(load(reading.rapid_sweep), RAPID),
        "vision": relabel(load(reading.vision_sweep), VISION),
        "edge-only": load("edge-only"),
    }
