"""The policy's camera: the task's rendered frame with the scenario's visual noise, once per tick.

Rendering costs more than a physics tick, so a frame is rendered only when someone reads it (the
policy, or a decider that declares ``needs_image``) and then shared by every reader of that tick.
"""

from __future__ import annotations

import numpy as np

from rapid_env.noise import ImageNoise
from rapid_env.tasks.metaworld_task import MetaWorldTask


class NoisyCamera:
    """Renders the task's camera through an :class:`ImageNoise`, at most once per tick."""

    def __init__(self, task: MetaWorldTask, noise: ImageNoise) -> None:
        self.task = task
        self.noise = noise
        self._rng = np.random.default_rng(0)
        self._frame: np.ndarray | None = None

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode: the noise draws from ``rng`` (the episode's noise stream)."""
        self.noise.reset(self.task, rng)
        self._rng = rng
        self._frame = None

    def next_tick(self) -> None:
        """The scene moved: the cached frame is stale."""
        self._frame = None

    def frame(self) -> np.ndarray:
        """This tick's noisy frame, rendered on first read."""
        if self._frame is None:
            self._frame = self.noise(self.task.render_image(), self._rng)
        return self._frame
