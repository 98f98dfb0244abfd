"""The policy's camera: the task's rendered frame with the scenario's visual noise, once per tick.

Rendering costs more than a physics tick, so a frame is rendered only when someone reads it (the
policy, or a decider that declares ``needs_image``) and then shared by every reader of that tick.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from rapid_env.noise import ImageNoise
from rapid_env.task import Task


class NoisyCamera:
    """Renders the task's camera through an :class:`ImageNoise`, at most once per tick."""

    def __init__(self, task: Task, noise: ImageNoise) -> None:
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

    def peek(self) -> np.ndarray:
        """This tick's frame, exactly as a reader would get it, without consuming anything.

        :meth:`frame` draws the noise from the episode's noise stream, so reading it on a tick
        where nobody else does would shift every later draw and change the episode. A frame
        already rendered this tick is returned as it is; otherwise it is rendered with the noise
        stream's state (and the noise's own per-frame state: drifting occluders, a frozen
        sensor's last frame) saved before and put back after, and the cache is left empty, so
        the next real read renders the same frame from the same draws. For recordings and
        ``render()``: a render that fails gives a black frame (a recording never ends an episode).
        """
        if self._frame is not None:
            return self._frame
        try:
            with self._noise_kept():
                return self.frame()
        except Exception:  # noqa: BLE001 - a recording must not end the episode
            h, w = self.task.image_hw
            return np.zeros((h, w, 3), dtype=np.uint8)

    @contextmanager
    def _noise_kept(self) -> Iterator[None]:
        """Put the noise stream, the noise's per-frame state and the frame cache back."""
        rng_state = self._rng.bit_generator.state
        saved: list[tuple[object, str, Any]] = []
        for d in getattr(self.noise, "scene", ()):  # scene disturbances: per-frame state (drift)
            saved.append((d, "state", copy.deepcopy(d.state)))
        for f in getattr(self.noise, "sensors", ()):  # sensor faults: the last delivered frame
            saved.append((f, "last", f.last))
        try:
            yield
        finally:
            self._rng.bit_generator.state = rng_state
            for obj, name, value in saved:
                setattr(obj, name, value)
            self._frame = None
