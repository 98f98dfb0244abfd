"""Proprioception buffer: arm joint state sampled at every physics substep (400 Hz in Meta-World).

RAPID's trigger reads joint acceleration and joint-torque change at a much higher rate than the
control loop runs, so the task writes one sample per physics substep into this fixed-size ring
buffer and deciders read the most recent window. Preallocated arrays keep the per-substep cost to a
few array writes.

The buffer is shared ground between the task suites (which write it) and the control loop and its
deciders (which read it), so it lives in the package's bottom layer and imports only numpy: a
decider reads a :class:`ProprioWindow` without importing any simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_ARM_JOINTS = 7
"""Joints of the Sawyer arm Meta-World drives: the buffer's default width. An arm with another
number of joints passes its own ``n_joints``."""


@dataclass(frozen=True)
class ProprioWindow:
    """A copy of the most recent samples, oldest first.

    Attributes:
        t: sample times in simulated seconds, shape (n,).
        q: joint positions (rad), shape (n, n_joints).
        qd: joint velocities (rad/s), shape (n, n_joints).
        qdd: joint accelerations (rad/s^2), differenced from consecutive velocities as a robot's
            driver would do, shape (n, n_joints).
        tau: joint torques (N m) applied by the arm's drive, shape (n, n_joints).
    """

    t: np.ndarray
    q: np.ndarray
    qd: np.ndarray
    qdd: np.ndarray
    tau: np.ndarray

    def __len__(self) -> int:
        return int(self.t.shape[0])


class ProprioBuffer:
    """Fixed-capacity ring buffer of per-substep joint samples."""

    def __init__(self, capacity: int = 1024, n_joints: int = N_ARM_JOINTS) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self.n_joints = n_joints
        self._t = np.zeros(capacity)
        self._data = np.zeros((4, capacity, n_joints))  # q, qd, qdd, tau
        self._next = 0
        self._count = 0
        self.total = 0  # samples ever written since reset

    def clear(self) -> None:
        """Forget all samples (at episode reset)."""
        self._next = 0
        self._count = 0
        self.total = 0

    def append(
        self, t: float, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray, tau: np.ndarray
    ) -> None:
        """Write one sample, overwriting the oldest when full."""
        i = self._next
        self._t[i] = t
        d = self._data
        d[0, i] = q
        d[1, i] = qd
        d[2, i] = qdd
        d[3, i] = tau
        self._next = (i + 1) % self.capacity
        if self._count < self.capacity:
            self._count += 1
        self.total += 1

    def __len__(self) -> int:
        return self._count

    def last(self, n: int | None = None) -> ProprioWindow:
        """Return a copy of the last ``n`` samples (all held samples when ``n`` is None)."""
        n = self._count if n is None else min(n, self._count)
        idx = (self._next - n + np.arange(n)) % self.capacity
        d = self._data[:, idx]
        return ProprioWindow(self._t[idx].copy(), d[0], d[1], d[2], d[3])
