"""``chunk-threshold``: LeRobot async inference's trigger.

LeRobot's ``RobotClient`` sends a fresh observation whenever its action queue, as a fraction of
the chunk length, has fallen to ``chunk_size_threshold`` (``queue_size / actions_per_chunk <=
chunk_size_threshold``; 0.5 in LeRobot's examples and docs), and the ``PolicyServer`` keeps one
pending observation at a time. The trigger reads nothing but the queue: not the scene, not the
robot's motion, not the latency.

Our version requests when ``chunk_remaining / chunk_size <= threshold`` and fewer than
``max_in_flight`` requests are outstanding (one by default: the server's single-slot observation
queue; LeRobot's client sends every tick while under the threshold and the server drops the
extras, which in our controller would only show up as refused requests). An empty buffer is under
any threshold, so the robot is refilled however long the latency is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rapid_env.agents.refill import check_max_in_flight
from rapid_env.decision import KEEP, DeciderBase, DeciderObservation, Decision


@dataclass(frozen=True)
class ChunkThresholdConfig:
    """Parameters of the chunk-threshold trigger.

    Attributes:
        threshold: request when the remaining fraction of the chunk is at or below this
            (LeRobot's ``chunk_size_threshold``; 0.5 as in LeRobot). 0 waits for an empty buffer
            (synchronous inference), 1 requests whenever nothing is in flight.
        max_in_flight: outstanding requests allowed before the trigger holds back (an int in
            1..64; the same knob as the other deciders' ``max_in_flight``: this trigger is its
            own refill rule, and 2 or more lets it ask again before the last chunk lands).
        split: split point for requests; None lets the controller's planner choose.
    """

    threshold: float = 0.5
    max_in_flight: int = 1
    split: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        check_max_in_flight(self.max_in_flight)
        if self.split is not None and self.split < 0:
            raise ValueError(f"split must be None or >= 0, got {self.split!r}")


class ChunkThresholdDecider(DeciderBase):
    """Requests a chunk when the buffer's remaining fraction falls to a threshold."""

    needs_image = False

    def __init__(
        self, config: ChunkThresholdConfig | None = None, name: str = "chunk-threshold"
    ) -> None:
        self.config = config or ChunkThresholdConfig()
        self.name = name

    def reset(self, rng: np.random.Generator) -> None:
        """Stateless; nothing to reset."""

    def decide(self, obs: DeciderObservation) -> Decision:
        """Infer when the queue is at or below the threshold and a request slot is free."""
        cfg = self.config
        if obs.in_flight >= cfg.max_in_flight:
            return KEEP
        if obs.chunk_remaining / max(obs.chunk_size, 1) > cfg.threshold:
            return KEEP
        return Decision("infer", split=cfg.split)
