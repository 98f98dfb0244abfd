"""The episode loop: a decider and a controller, tick by tick, from reset to the record.

It belongs to the core so that trainers (in the agents layer) and the sweep runner (in the
evaluation layer) run episodes the same way, and a trainer's held-out evaluation is the same
measurement as ``rapid-eval``'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rapid_env.controller import PartitionedController, TickOutcome
from rapid_env.decision import Decider, Decision
from rapid_env.observer import EpisodeObserver
from rapid_env.record import WALL_CLOCK_FIELDS, assemble
from rapid_env.seeding import episode_streams, layout_seed

if TYPE_CHECKING:
    from rapid_env.oracle import RedundancyOracle
    from rapid_env.trace import EpisodeTrace

__all__ = ["WALL_CLOCK_FIELDS", "EpisodeRun", "overhead_fields", "run_episode"]


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
    run = EpisodeRun(controller, decider, seed, [*observers, trace, oracle])
    while not run.done:
        run.after(controller.step(run.decide()))
    return run.record()


class EpisodeRun:
    """One episode, a tick at a time: what :func:`run_episode` loops over.

    A fleet (:mod:`rapid_env.fleet`) holds one per robot and interleaves their ticks in one
    virtual clock: every robot decides and sends (:meth:`decide`, then the controller's
    ``send``), the shared cloud is served, then every robot's tick runs (``run_tick``, then
    :meth:`after`). Alone, :func:`run_episode` is exactly that with one robot and ``step``.
    """

    def __init__(
        self,
        controller: PartitionedController,
        decider: Decider,
        seed: int,
        observers: Sequence[EpisodeObserver | None] = (),
    ) -> None:
        self.controller = controller
        self.decider = decider
        self.watching: list[EpisodeObserver] = [o for o in observers if o is not None]
        self._wall0 = time.perf_counter()
        s = episode_streams(seed)
        self.obs = controller.reset(
            layout_seed(controller.task, seed, s), s.noise, s.link, s.policy
        )
        decider.reset(s.decider)
        decider.bind(controller.context())
        for o in self.watching:
            o.on_reset(controller, decider)
        self._decide_ns = 0
        self.ticks = 0
        self.done = False
        self._decision: Decision | None = None
        self._wall_s = 0.0

    def decide(self) -> Decision:
        """The decider's decision on the current observation (observers are told)."""
        c0 = time.perf_counter_ns()
        decision = self.decider.decide(self.obs)
        self._decide_ns += time.perf_counter_ns() - c0
        for o in self.watching:
            o.on_decision(self.obs, decision)
        self._decision = decision
        return decision

    def after(self, out: TickOutcome) -> None:
        """The tick the last decision started has run into ``out``."""
        assert self._decision is not None
        self.ticks += 1
        for o in self.watching:
            o.on_tick(self.obs, self._decision, out)
        self.obs = out.obs
        if out.terminated or out.truncated:
            self.done = True
            self._wall_s = time.perf_counter() - self._wall0

    def record(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The episode's record (after it is done); ``extra``: observer fields of the caller's."""
        controller, decider = self.controller, self.decider
        ticks = self.ticks
        loop = {
            "decision_cpu_us_mean": self._decide_ns / max(ticks, 1) / 1e3,
            **overhead_fields(self._decide_ns / 1e9, float(decider.model_overhead_s), controller),
        }
        observed: dict[str, Any] = {}  # the oracle's fields, and any declared with record.declare
        for o in self.watching:
            observed.update(o.on_end(controller))
        observed.update(extra or {})
        return assemble(
            metrics=controller.episode_metrics(),
            loop=loop,
            observers=observed or None,
            wall_time_s=self._wall_s if self.done else time.perf_counter() - self._wall0,
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
