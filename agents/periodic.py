"""``periodic``: re-plan every N control ticks, whatever the buffer holds.

The fixed-cadence recipe of most chunked-policy deployments: openpi's LIBERO client re-plans every
``replan_steps = 5`` of a 10-action chunk, and diffusion-policy / ACT evaluations execute a fixed
number of actions per chunk. The trigger is a clock; the shared refill rule
(:mod:`rapid_env.agents.refill`) still fires when the buffer would run dry before the next period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rapid_env.agents.refill import check_max_in_flight, refill_due
from rapid_env.decision import KEEP, DeciderBase, DeciderObservation, Decision


@dataclass(frozen=True)
class PeriodicConfig:
    """Parameters of the periodic trigger.

    Attributes:
        period_ticks: request every this many ticks (at ticks 0, N, 2N, ...). None: half the
            policy's chunk length (at least 1), openpi's ratio of 5 of 10, so each chunk is
            re-planned once halfway, the same cadence as chunk-threshold's steady state.
        split: split point for requests; None lets the controller's planner choose.
        max_in_flight: refills the shared refill rule keeps in flight at once (1: wait for each
            chunk; 2 or more: pipelined, :func:`rapid_env.agents.refill.refill_due`).
    """

    period_ticks: int | None = None
    split: int | None = None
    max_in_flight: int = 1

    def __post_init__(self) -> None:
        check_max_in_flight(self.max_in_flight)
        if self.period_ticks is not None and self.period_ticks < 1:
            raise ValueError(f"period_ticks must be None or >= 1, got {self.period_ticks!r}")
        if self.split is not None and self.split < 0:
            raise ValueError(f"split must be None or >= 0, got {self.split!r}")


class PeriodicDecider(DeciderBase):
    """Requests on a fixed tick schedule, plus the refill rule.

    A periodic request is sent whatever is in flight; when the controller's in-flight limit is
    reached it is refused and counted (``refused_requests``), which is part of what this baseline
    costs on a slow link.
    """

    needs_image = False

    def __init__(self, config: PeriodicConfig | None = None, name: str = "periodic") -> None:
        self.config = config or PeriodicConfig()
        self.name = name

    def reset(self, rng: np.random.Generator) -> None:
        """Stateless (the schedule is the tick count); nothing to reset."""

    def period(self, chunk_size: int) -> int:
        """The period in ticks for a policy with this chunk length."""
        if self.config.period_ticks is not None:
            return self.config.period_ticks
        return max(1, chunk_size // 2)

    def decide(self, obs: DeciderObservation) -> Decision:
        """Infer on schedule or when a refill is due, else keep executing."""
        on_schedule = obs.tick % self.period(obs.chunk_size) == 0
        if on_schedule or refill_due(obs, self.config.max_in_flight):
            return Decision("infer", split=self.config.split)
        return KEEP
