"""``static-split``: Neurosurgeon's latency-optimal split, chosen once for the nominal link.

Neurosurgeon (Kang et al., ASPLOS 2017) profiles each layer offline and, for the bandwidth it
expects, picks the one split point that minimises end-to-end latency; the split then stays put.
Here the expectation is the link's *nominal* mean bandwidth and RTT (what a deployment would be
configured with, :class:`~rapid_env.decision.DeciderContext`), the planner is the episode's cost
model, and requests follow the shared refill rule (:mod:`rapid_env.agents.refill`): the decider
differs from edge-only / cloud-only only in where it splits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rapid_env.agents.refill import check_max_in_flight, refill_due
from rapid_env.decision import KEEP, DeciderBase, DeciderContext, DeciderObservation, Decision


@dataclass(frozen=True)
class StaticSplitConfig:
    """Parameters of static-split: only the refill rule's.

    Neurosurgeon's split follows from the nominal link and the cost model alone.

    Attributes:
        max_in_flight: refills the shared refill rule keeps in flight at once (1: wait for each
            chunk; 2 or more: pipelined, :func:`rapid_env.agents.refill.refill_due`).
    """

    max_in_flight: int = 1

    def __post_init__(self) -> None:
        check_max_in_flight(self.max_in_flight)


class StaticSplitDecider(DeciderBase):
    """Refills on time, always at the split that is latency-optimal for the nominal link.

    The split is computed in :meth:`bind` (the runner calls it after ``reset``); an unbound
    decider refuses to decide rather than silently fall back to another planner.
    """

    needs_image = False

    def __init__(
        self, config: StaticSplitConfig | None = None, name: str = "static-split"
    ) -> None:
        self.config = config or StaticSplitConfig()
        self.name = name
        self.split: int | None = None

    def reset(self, rng: np.random.Generator) -> None:
        """Deterministic; the split comes from :meth:`bind`."""
        self.split = None

    def bind(self, context: DeciderContext) -> None:
        """Plan the split once for the link's nominal mean bandwidth and RTT.

        An ideal link (infinite bandwidth, zero RTT) is a valid input: transfers then cost
        nothing and the planner picks the fastest compute placement that fits the edge memory.
        """
        bw, rtt = context.link_mean_bandwidth_bps, context.link_mean_rtt_s
        if math.isnan(bw) or not bw > 0 or math.isnan(rtt) or rtt < 0:
            raise ValueError(
                f"static-split needs a nominal link with bandwidth > 0 and rtt >= 0, "
                f"got bandwidth_bps={bw!r}, rtt_s={rtt!r}"
            )
        self.split = int(context.cost.best_split(bw, rtt))

    def decide(self, obs: DeciderObservation) -> Decision:
        """Infer at the planned split when a refill is due, else keep executing."""
        if self.split is None:
            raise RuntimeError("static-split was not bound: call bind(context) after reset")
        if not 0 <= self.split < obs.n_splits:
            raise ValueError(f"planned split {self.split} out of range 0 .. {obs.n_splits - 1}")
        if not refill_due(obs, self.config.max_in_flight):
            return KEEP
        return Decision("infer", split=self.split)
