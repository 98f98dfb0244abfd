"""Baselines that always split the model at the same place: edge-only and cloud-only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rapid_env.agents.refill import refill_due
from rapid_env.decision import KEEP, DeciderBase, DeciderObservation, Decision


@dataclass(frozen=True)
class FixedSplitConfig:
    """Parameters of edge-only / cloud-only: none.

    The split is what the registered name means (``edge-only``, ``cloud-only``), not an option;
    the empty config still lets ``edge-only(...)`` specs fail with the list of allowed fields.
    """


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
        if not refill_due(obs):
            return KEEP
        split = obs.n_splits - 1 if self.where == "edge" else 0
        return Decision("infer", split=split)
