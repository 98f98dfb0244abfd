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
        return InferencePlan(p.split, stages, p.placement)

    def best_split(
        self, bandwidth_bps: float, rtt_s: float, memory_budget_bytes: float | None = None
    ) -> int:
        """Delegate to the real planner (so the reference runs use the same split)."""
        return self.inner.best_split(bandwidth_bps, rtt_s, memory_budget_bytes)

    def edge_memory_bytes(self, k: int) -> float:
        """Delegate to the real model: taking the time out does not free memory."""
        return self.inner.edge_memory_bytes(k)
