"""The episode loop: a decider and a controller, tick by tick, from reset to the record.

It belongs to the core so that trainers (in the agents layer) and the sweep runner (in the
evaluation layer) run episodes the same way, and a trainer's held-out evaluation is the same
measurement as ``rapid-eval``'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rapid_env.controller import PartitionedController
from rapid_env.decision import Decider
from rapid_env.observer import EpisodeObserver
from rapid_env.record import WALL_CLOCK_FIELDS, assemble
from rapid_env.seeding import episode_streams, layout_seed

if TYPE_CHECKING:
    from rapid_env.oracle import RedundancyOracle
    from rapid_env.trace import EpisodeTrace

__all__ = ["WALL_CLOCK_FIELDS", "overhead_fields", "run_episode"]


def run_episode(
    controller: PartitionedController,
    decider: Decider,
    seed: int,
    trace: EpisodeTrace | None = None,
    oracle: RedundancyOracle | None = None,
    observers: Sequence[EpisodeObserver] = (),
) -> dict[str, Any]:
    """Run one episode to success or time limit; return its record (cell names not included).

    The record is assembled by :func:`rapid_env.record.assemble`, which checks it against the
    schema (docs/records.md); :data:`WALL_CLOCK_FIELDS` are the fields that differ between runs.

    ``observers`` (:class:`~rapid_env.observer.EpisodeObserver`) watch the episode: each is told
    of the reset, of every decision before it is applied, of every tick after it ran, and adds
    its fields to the record at the end, in the order given. They only read, so every other field
    is the same with or without them.

    ``trace`` and ``oracle`` are the two observers the harness ships, kept as keywords: ``trace``
    (:class:`rapid_env.trace.EpisodeTrace`) gets one row per tick; ``oracle``
    (:class:`rapid_env.oracle.RedundancyOracle`) runs the policy in a shadow pass before every
    tick's decision is applied and adds its fields (``redundant_share_<tol>``,
    ``trigger_precision_<tol>``, ...). They run after ``observers``.
    """
    watching: list[EpisodeObserver] = [
        o for o in (*observers, trace, oracle) if o is not None
    ]
    wall0 = time.perf_counter()
    s = episode_streams(seed)
    obs = controller.reset(layout_seed(controller.task, seed, s), s.noise, s.link, s.policy)
    decider.reset(s.decider)
    decider.bind(controller.context())
    for o in watching:
        o.on_reset(controller, decider)
    decide_ns = 0
    ticks = 0
    while True:
        c0 = time.perf_counter_ns()
        decision = decider.decide(obs)
        decide_ns += time.perf_counter_ns() - c0
        for o in watching:
            o.on_decision(obs, decision)
        out = controller.step(decision)
        ticks += 1
        for o in watching:
            o.on_tick(obs, decision, out)
        obs = out.obs
        if out.terminated or out.truncated:
            break
    loop = {
        "decision_cpu_us_mean": decide_ns / max(ticks, 1) / 1e3,
        **overhead_fields(decide_ns / 1e9, float(decider.model_overhead_s), controller),
    }
    observed: dict[str, Any] = {}  # the oracle's fields, and any declared with record.declare
    for o in watching:
        observed.update(o.on_end(controller))
    return assemble(
        metrics=controller.episode_metrics(),
        loop=loop,
        observers=observed or None,
        wall_time_s=time.perf_counter() - wall0,
    )


def overhead_fields(
    cpu_s: float, model_s: float, controller: PartitionedController
) -> dict[str, float | None]:
    """The decider's cost next to the inference latency it manages.

    ``decision_model_ms`` is the modelled edge time of model passes the decider ran for its own
    signal (deterministic); ``decision_overhead_pct`` adds the measured CPU time of every
    ``decide`` call (a wall-clock quantity) and divides by the episode's total modelled inference
    latency (sum over delivered chunks of edge + uplink + cloud + downlink).
    """
    total = float(sum(controller.latencies_s))
    return {
        "decision_model_ms": model_s * 1e3,
        "decision_overhead_pct": 100.0 * (cpu_s + model_s) / total if total > 0 else None,
    }
