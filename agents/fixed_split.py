"""Baselines that always split the model at the same place: edge-only and cloud-only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rapid_env.agents.refill import check_max_in_flight, refill_due
from rapid_env.decision import KEEP, DeciderBase, DeciderObservation, Decision


@dataclass(frozen=True)
class FixedSplitConfig:
    """Parameters of edge-only / cloud-only: only the refill rule's.

    The split is what the registered name means (``edge-only``, ``cloud-only``), not an option.

    Attributes:
        max_in_flight: refills the shared refill rule keeps in flight at once (1: wait for each
            chunk; 2 or more: pipelined, :func:`rapid_env.agents.refill.refill_due`).
    """

    max_in_flight: int = 1

    def __post_init__(self) -> None:
        check_max_in_flight(self.max_in_flight)


class FixedSplitDecider(DeciderBase):
    """Refills the chunk buffer on time, always at one split point.

    ``where="edge"`` runs every block on the robot (no link traffic); ``where="cloud"`` ships the
    raw observation and runs every block in the cloud.
    """

    needs_image = False

    def __init__(
        self, where: str, config: FixedSplitConfig | None = None, name: str | None = None
    ) -> None:
        if where not in ("edge", "cloud"):
            raise ValueError(f"where={where!r}; allowed: edge, cloud")
        self.where = where
        self.config = config or FixedSplitConfig()
        self.name = name or f"{where}-only"

    def reset(self, rng: np.random.Generator) -> None:
        """Stateless; nothing to reset."""

    def decide(self, obs: DeciderObservation) -> Decision:
        """Infer at the fixed split when a refill is due, else keep executing."""
        if not refill_due(obs, self.config.max_in_flight):
            return KEEP
        split = obs.n_splits - 1 if self.where == "edge" else 0
        return Decision("infer", split=split)
