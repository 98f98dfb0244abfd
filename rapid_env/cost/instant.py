"""A cost model with the compute taken out: for zero-latency reference runs and benchmarks.

Wrapping a real :class:`~rapid_env.cost.model.CostModel` keeps its split points and its transfer
sizes, so with the ``ideal`` link every chunk arrives on the tick it was requested: the upper bound
that any partitioning scheme is measured against ("the expert with zero latency").
"""

from __future__ import annotations

from rapid_env.cost.model import CostModel, InferencePlan, Stage


class InstantCost:
    """The real cost model's plans with every compute stage taking no time."""

    def __init__(self, inner: CostModel) -> None:
        self.inner = inner
        self.n_blocks = inner.n_blocks

    def plan(self, k: int) -> InferencePlan:
        """The inner plan with every compute stage taking no time."""
        p = self.inner.plan(k)
        stages = tuple(Stage(s.kind, 0.0, s.nbytes) for s in p.stages)
        return InferencePlan(p.split, stages)

    def best_split(self, bandwidth_bps: float, rtt_s: float) -> int:
        """Delegate to the real planner."""
        return self.inner.best_split(bandwidth_bps, rtt_s)
