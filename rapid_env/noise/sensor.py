"""Camera sensor faults, seeded, with five severities each.

Sensor faults act on the delivered frame, on the episode's simulated clock:

* ``frame_freeze``: during freeze intervals (about ``0.1 * severity`` per second, each 0.15-0.45 s
  long x severity/2) the camera keeps returning the last frame delivered before the interval;
* ``frame_drop``: during drop intervals (same rates, shorter) it returns a black frame, the way a
  lost packet reaches a policy that does not check for one.

All draws come from the episode's noise stream (``reset(horizon_s, rng)``), so the same seed gives
the same fault intervals. In-scene disturbances, which change what MuJoCo renders, are in
:mod:`rapid_env.noise.scene`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SENSOR_NAMES = ("frame_freeze", "frame_drop")


@dataclass
class SensorFault:
    """``frame_freeze`` or ``frame_drop`` on the episode's simulated clock."""

    name: str
    severity: int
    intervals: list[tuple[float, float]] = field(default_factory=list)
    last: np.ndarray | None = None

    def reset(self, horizon_s: float, rng: np.random.Generator) -> None:
        """Draw the fault intervals of an episode of ``horizon_s`` seconds (Poisson starts)."""
        rate = 0.1 * self.severity  # faults per second
        scale = 1.0 if self.name == "frame_freeze" else 0.5
        self.intervals, self.last = [], None
        t = float(rng.exponential(1.0 / rate))
        while t < horizon_s:
            length = scale * rng.uniform(0.15, 0.45) * max(1.0, self.severity / 2)
            self.intervals.append((t, t + length))
            t += length + float(rng.exponential(1.0 / rate))

    def active(self, t: float) -> bool:
        """Whether the fault is on at simulated time ``t``."""
        return any(a <= t < b for a, b in self.intervals)

    def __call__(self, image: np.ndarray, t: float) -> np.ndarray:
        """The delivered frame at time ``t``."""
        if self.active(t):
            if self.name == "frame_drop":
                return np.zeros_like(image)
            if self.last is not None:
                return self.last.copy()
        self.last = image
        return image
