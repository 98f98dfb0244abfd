"""Plan consistency: how far a policy's plans move by themselves, against the oracle's tolerance.

The redundancy oracle (:mod:`rapid_env.oracle`) calls a tick redundant when the action the
cached chunk holds for it and a fresh plan's first action differ by less than ``tol`` (max-abs
over the action's components, :func:`rapid_env.oracle.action_distance`; 0.05 / 0.1 / 0.2). That
is only a statement about the world if ``tol`` clears what the policy does on its own. This
benchmark measures, with the oracle's distance, at every tick of zero-latency episodes (instant
compute, ideal link, clean camera, the edge-only decider: a new chunk when the last one runs out,
so the action cached for a tick was planned 1 to ``chunk_size - 1`` ticks earlier):

(a) the **fresh-vs-fresh spread**, two fresh plans at the same tick:

    * ``seed``: the same observation, two draws of the policy's own randomness (the flow
      family's initial noise; the policy's ``reset`` seeds its ``torch.Generator`` from a numpy
      Generator of this benchmark's). 0 by construction for a deterministic policy (the expert,
      ``chunk-regress``, ``ar-token``): reported, not assumed;
    * ``frame``: two frames of the same tick, each drawn independently through a mild sensor
      noise (``--frame-noise``, default ``gaussian_noise:1``, on every camera the policy reads),
      with the same policy draw for both, so only the pixels differ. 0 for a policy that reads no
      image (the expert);

(b) the **cached-vs-fresh gap by plan age** ``k``: the action the cached chunk holds for this tick
    (planned ``k`` ticks ago) against a fresh plan's first action now, the very comparison the
    oracle makes.

Nothing disturbs the episode: the frame is taken with ``NoisyCamera.policy_input(peek=True)``,
the probe's plans run inside the oracle's :func:`~rapid_env.oracle.policy_rng_kept` and
:func:`~rapid_env.oracle.physics_kept`, and the probe draws only from its own generators (seeded
from the episode seed), so the episodes are the ones ``rapid-train eval`` would run.

Usage::

    python benchmarks/plan_consistency.py                     # defaults below, a few minutes
    python benchmarks/plan_consistency.py --tasks push --seeds 1 --policies chunk-regress@v1
    python benchmarks/plan_consistency.py --seeds 2 --out /tmp/plan_consistency.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rapid_env.agents.fixed_split import FixedSplitDecider
from rapid_env.agents.registry import POLICIES
from rapid_env.controller import PartitionedController
from rapid_env.cost import build_cost_model
from rapid_env.cost.instant import InstantCost
from rapid_env.decision import Decider, DeciderObservation, Decision
from rapid_env.episode import run_episode
from rapid_env.link import IdealLink
from rapid_env.noise import Clean, corrupt
from rapid_env.noise.corruptions import CORRUPTIONS
from rapid_env.observer import ObserverBase
from rapid_env.oracle import action_distance, physics_kept, policy_rng_kept
from rapid_env.policy import Policy, PolicyInput, run_policy
from rapid_env.tasks.metaworld_task import MetaWorldTask

DEFAULT_POLICIES = ("chunk-regress", "flow", "ar-token", "expert")
DEFAULT_TASKS = ("push", "pick-place", "drawer-open", "peg-insert-side")
CONTROL_HZ = 20.0  # the harness's default control rate (rapid-eval --control-hz)
SALT = 0x504C414E  # "PLAN": the probe's streams are its own, never the episode's


def parse_frame_noise(spec: str) -> tuple[str, int]:
    """``name:severity`` of a pixel corruption (a frame-level noise, no scene edit)."""
    name, _, sev = spec.partition(":")
    if name not in CORRUPTIONS or not sev.isdigit() or not 1 <= int(sev) <= 5:
        raise ValueError(
            f"--frame-noise {spec!r}; allowed: <pixel corruption>:<1-5> with a corruption of "
            f"{', '.join(sorted(CORRUPTIONS))}"
        )
    return name, int(sev)


def noisy_input(inp: PolicyInput, noise: tuple[str, int], rng: np.random.Generator) -> PolicyInput:
    """``inp`` with every camera frame through ``noise``, drawn from ``rng``."""
    name, sev = noise
    image = None if inp.image is None else corrupt(name, inp.image, sev, rng)
    images = {cam: corrupt(name, frame, sev, rng) for cam, frame in inp.images.items()}
    return PolicyInput(image, inp.proprio, inp.instruction, inp.sim, images)


@dataclass
class Samples:
    """The distances of one (policy, task) cell, pooled over its episodes."""

    seed: list[float] = field(default_factory=list)
    frame: list[float] = field(default_factory=list)
    gap: dict[int, list[float]] = field(default_factory=dict)
    ticks: int = 0
    episodes: int = 0
    successes: int = 0

    def extend(self, other: Samples) -> None:
        """Pool ``other``'s samples into these."""
        self.seed += other.seed
        self.frame += other.frame
        for k, v in other.gap.items():
            self.gap.setdefault(k, []).extend(v)
        self.ticks += other.ticks
        self.episodes += other.episodes
        self.successes += other.successes


class ConsistencyProbe(ObserverBase):
    """An episode observer that measures (a) and (b) before every tick's decision is applied."""

    def __init__(self, noise: tuple[str, int], samples: Samples) -> None:
        self.noise = noise
        self.samples = samples
        self._c: PartitionedController | None = None
        self._rng = np.random.default_rng(0)
        self._last_request: int | None = None

    def start(self, seed: int) -> None:
        """Seed the probe's own stream from the episode seed (call before the episode)."""
        self._rng = np.random.default_rng([SALT, seed])

    def on_reset(self, controller: PartitionedController, decider: Decider) -> None:
        """Remember the controller; no chunk yet."""
        self._c = controller
        self._last_request = None

    def on_decision(self, obs: DeciderObservation, decision: Decision) -> None:
        """Measure this tick: the spreads of (a) and, on a cached tick, the gap of (b)."""
        c = self._c
        assert c is not None
        tick = int(obs.tick)
        seed_a, seed_b, seed_f1, seed_f2 = (int(s) for s in self._rng.integers(0, 2**62, 4))
        inp = c.camera.policy_input(c.policy, peek=True)
        plan_a = self._plan(inp, seed_a)
        plan_b = self._plan(inp, seed_b)
        f1 = self._plan(noisy_input(inp, self.noise, np.random.default_rng(seed_f1)), seed_a)
        f2 = self._plan(noisy_input(inp, self.noise, np.random.default_rng(seed_f2)), seed_a)
        s = self.samples
        s.ticks += 1
        s.seed.append(action_distance(plan_a[0], plan_b[0]))
        s.frame.append(action_distance(f1[0], f2[0]))
        if decision.kind == "infer":
            self._last_request = tick  # zero latency: this tick executes the new chunk's first
            return
        cached = copy.copy(c.buffer).pop()
        if cached is None or self._last_request is None:
            return
        age = tick - self._last_request
        chunk = int(getattr(c.policy, "chunk_size", 8))
        if c.buffer.remaining != chunk - age:  # the set-up above guarantees it; say if not
            raise RuntimeError(
                f"tick {tick}: {c.buffer.remaining} cached actions, expected {chunk - age} "
                f"(age {age}); the benchmark needs zero latency and the edge-only decider"
            )
        s.gap.setdefault(age, []).append(action_distance(plan_a[0], cached))

    def _plan(self, inp: PolicyInput, seed: int) -> np.ndarray:
        """A fresh chunk for ``inp`` with the policy's randomness seeded from ``seed``."""
        c = self._c
        assert c is not None
        with policy_rng_kept(c.policy), physics_kept(c.task):
            c.policy.reset(np.random.default_rng(seed))
            result = run_policy(c.policy, inp, 0, 0, c.action_dim)
        if result.chunk is None:
            raise RuntimeError(f"policy fault in a probe plan: {result.fault}")
        return result.chunk


def run_cell(
    policy_name: str,
    task_name: str,
    seeds: list[int],
    noise: tuple[str, int],
    image_size: int,
    max_ticks: int | None,
) -> tuple[Samples, bool]:
    """The samples of one policy on one task over ``seeds``, and whether the policy reads images.

    ``max_ticks`` ends each episode after that many ticks (at 20 Hz), success or not.
    """
    policy: Policy = POLICIES.create(policy_name, task_name)
    torch = sys.modules.get("torch")  # loaded by a VLA policy: one thread, as rapid-train eval
    if torch is not None:  # (on a shared CPU, more threads spin against each other, ~20x slower)
        torch.set_num_threads(1)
    task = (
        MetaWorldTask(task_name, image_size=image_size, control_hz=CONTROL_HZ)
        if max_ticks is None
        else MetaWorldTask(task_name, image_size=image_size, control_hz=CONTROL_HZ,
                           max_episode_s=max_ticks / CONTROL_HZ)
    )
    ctrl = PartitionedController(
        task, policy, InstantCost(build_cost_model()), IdealLink(), Clean()
    )
    out = Samples()
    try:
        for seed in seeds:
            one = Samples()
            probe = ConsistencyProbe(noise, one)
            probe.start(seed)
            record = run_episode(ctrl, FixedSplitDecider("edge"), seed, observers=(probe,))
            one.episodes, one.successes = 1, int(bool(record["success"]))
            out.extend(one)
    finally:
        task.close()
    return out, bool(getattr(policy, "needs_image", True))


def stats(values: list[float]) -> dict[str, Any]:
    """Count, median and 90th percentile (None when empty)."""
    if not values:
        return {"n": 0, "median": None, "p90": None}
    arr = np.asarray(values, dtype=np.float64)
    return {"n": int(arr.size), "median": float(np.median(arr)),
            "p90": float(np.percentile(arr, 90))}


def summarise(policy: str, task: str, s: Samples, reads_image: bool) -> dict[str, Any]:
    """One row of the JSON: the cell's sizes and the statistics of (a) and (b)."""
    return {
        "policy": policy, "task": task, "episodes": s.episodes, "successes": s.successes,
        "ticks": s.ticks, "reads_image": reads_image,
        "seed_spread": stats(s.seed), "frame_spread": stats(s.frame),
        "gap_by_age": {str(k): stats(s.gap[k]) for k in sorted(s.gap)},
    }


def _cell(st: dict[str, Any]) -> str:
    if st["median"] is None:
        return "-"
    return f"{st['median']:.3f}/{st['p90']:.3f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table: median/p90 of (a) and of (b) per age."""
    ages = sorted({int(k) for r in rows for k in r["gap_by_age"]})
    head = ["policy", "task", "ticks", "seed spread", "frame spread",
            *(f"gap k={k}" for k in ages)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        gaps = [_cell(r["gap_by_age"].get(str(k), {"median": None})) for k in ages]
        lines.append("| " + " | ".join([
            f"`{r['policy']}`", r["task"], str(r["ticks"]), _cell(r["seed_spread"]),
            _cell(r["frame_spread"]), *gaps]) + " |")
    return "\n".join(lines)


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table, write the JSON with ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--policies", default=",".join(DEFAULT_POLICIES),
                   help="comma-separated policy registry names (e.g. chunk-regress@v1, ckpt:<dir>)")
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated MT10 tasks")
    p.add_argument("--seeds", type=int, default=3, help="episodes per cell")
    p.add_argument("--first-seed", type=int, default=2000)
    p.add_argument("--frame-noise", default="gaussian_noise:1",
                   help="pixel noise of the two frames of (a) frame: <corruption>:<1-5>")
    p.add_argument("--image-size", type=int, default=64, help="camera side in pixels")
    p.add_argument("--max-ticks", type=int, default=None,
                   help="end each episode after N ticks (default: the task's 10 s, 200 ticks)")
    p.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = p.parse_args(argv)
    policies, tasks = _names(args.policies), _names(args.tasks)
    for name in policies:
        POLICIES.check(name)
    if args.seeds < 1:
        p.error(f"--seeds {args.seeds}; allowed: >= 1")
    noise = parse_frame_noise(args.frame_noise)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    rows: list[dict[str, Any]] = []
    for pol in policies:
        pooled = Samples()
        reads_image = True
        for task in tasks:
            t0 = time.perf_counter()
            s, reads_image = run_cell(pol, task, seeds, noise, args.image_size, args.max_ticks)
            print(f"{pol} {task}: {s.episodes} episodes, {s.ticks} ticks, "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            rows.append(summarise(pol, task, s, reads_image))
            pooled.extend(s)
        if len(tasks) > 1:
            rows.append(summarise(pol, "all", pooled, reads_image))
    print(table(rows))
    if args.out is not None:
        doc = {
            "config": {
                "policies": policies, "tasks": tasks, "seeds": seeds,
                "frame_noise": args.frame_noise, "image_size": args.image_size,
                "max_ticks": args.max_ticks, "distance": "max-abs over all action components",
                "decider": "edge-only", "cost": "instant", "link": "ideal", "noise": "clean",
            },
            "rows": rows,
        }
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
