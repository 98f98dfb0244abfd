"""The action-chunk buffer: the actions the robot will execute next, one per control tick."""

from __future__ import annotations

import numpy as np


class ChunkBuffer:
    """Holds the remaining actions of the most recently installed chunk.

    A newly arrived chunk *replaces* the buffer (the newest plan wins), after dropping the actions
    whose time has already passed; see :meth:`install`.
    """

    def __init__(self) -> None:
        self._actions = np.zeros((0, 0), dtype=np.float32)  # no chunk yet: any action width
        self._next = 0

    @property
    def remaining(self) -> int:
        """Cached actions not yet executed."""
        return int(self._actions.shape[0] - self._next)

    def install(self, chunk: np.ndarray, skip: int) -> int:
        """Replace the buffer with ``chunk[skip:]``; return how many actions were installed."""
        if skip < 0:
            raise ValueError(f"skip must be >= 0, got {skip}")
        self._actions = np.asarray(chunk, dtype=np.float32)
        self._next = min(skip, self._actions.shape[0])
        return self.remaining

    def pop(self) -> np.ndarray | None:
        """Next action, or None when the chunk has run out."""
        if self._next >= self._actions.shape[0]:
            return None
        a = self._actions[self._next]
        self._next += 1
        return a

    def clear(self) -> int:
        """Drop the remaining actions (preemption); return how many were dropped."""
        dropped = self.remaining
        self._next = self._actions.shape[0]
        return dropped
