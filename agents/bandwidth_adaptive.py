"""``bandwidth-adaptive``: re-plan the split point from the live link estimate (RoboECC-style).

RoboECC (arXiv 2603.20711, from RAPID's group) searches a layer split per VLA architecture and
re-adjusts it when the network changes; Edgent and SPINN do the same for CNNs. Our version re-plans
at every request from the estimate built from completed transfers (``obs.link_bandwidth_bps``,
``obs.link_rtt_s``) with the episode's cost model, and keeps the current split unless the new one
is predicted to be faster by more than a hysteresis margin, so that estimator jitter does not make
the split flap. *When* to request is the shared refill rule (:mod:`rapid_env.agents.refill`).

With ``hysteresis=0`` this is exactly the controller's default for ``Decision(split=None)``; the
margin is what the baseline adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rapid_env.agents.refill import check_max_in_flight, refill_due
from rapid_env.decision import KEEP, DeciderBase, DeciderContext, DeciderObservation, Decision

if TYPE_CHECKING:
    from rapid_env.controller import CostPlanner


@dataclass(frozen=True)
class BandwidthAdaptiveConfig:
    """Parameters of the bandwidth-adaptive split.

    Attributes:
        hysteresis: relative latency gain (predicted, on the current estimate) a new split must
            offer before the decider moves to it; 0 re-plans greedily at every request. 0.1 keeps
            the split unless moving saves over 10%, larger than the swing of the EWMA estimate
            between two transfers on the stock traces.
        max_in_flight: refills the shared refill rule keeps in flight at once (1: wait for each
            chunk; 2 or more: pipelined, :func:`rapid_env.agents.refill.refill_due`).
    """

    hysteresis: float = 0.1
    max_in_flight: int = 1

    def __post_init__(self) -> None:
        check_max_in_flight(self.max_in_flight)
        if not 0 <= self.hysteresis < 1:
            raise ValueError(f"hysteresis must be in [0, 1), got {self.hysteresis!r}")


class BandwidthAdaptiveDecider(DeciderBase):
    """Refills on time at the split that is best for the current link estimate."""

    needs_image = False

    def __init__(
        self, config: BandwidthAdaptiveConfig | None = None, name: str = "bandwidth-adaptive"
    ) -> None:
        self.config = config or BandwidthAdaptiveConfig()
        self.name = name
        self.cost: CostPlanner | None = None
        self.split: int | None = None
        self.replans = 0

    def reset(self, rng: np.random.Generator) -> None:
        """Forget the last split; deterministic otherwise."""
        self.split = None
        self.replans = 0

    def bind(self, context: DeciderContext) -> None:
        """Keep the cost planner; the link is read live from each observation."""
        self.cost = context.cost

    def plan(self, bandwidth_bps: float, rtt_s: float) -> int:
        """The split to use now: the planner's best, unless the current one is within margin."""
        if self.cost is None:
            raise RuntimeError("bandwidth-adaptive was not bound: call bind(context) after reset")
        best = int(self.cost.best_split(bandwidth_bps, rtt_s))
        if self.split is None:
            self.split = best
            return best
        if best != self.split:
            new = self.cost.plan(best).latency_s(bandwidth_bps, rtt_s)
            cur = self.cost.plan(self.split).latency_s(bandwidth_bps, rtt_s)
            if new < (1.0 - self.config.hysteresis) * cur:
                self.split = best
                self.replans += 1
        return self.split

    def decide(self, obs: DeciderObservation) -> Decision:
        """When a refill is due, re-plan the split from the link estimate and request."""
        if not refill_due(obs, self.config.max_in_flight):
            return KEEP
        return Decision("infer", split=self.plan(obs.link_bandwidth_bps, obs.link_rtt_s))
