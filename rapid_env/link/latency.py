"""Round-trip time model of a trace-driven link: a base RTT plus jitter, or a measured distribution.

Each transfer pays one draw of half an RTT (its propagation delay). Parametric jitter is
exponential and one-sided; an empirical distribution (5Gophers ping logs) is sampled uniformly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Latency:
    """Round-trip time model; each transfer pays one draw of half an RTT.

    Either parametric -- ``base_rtt_s`` plus, per direction, exponential jitter of mean
    ``jitter_s`` (queueing delay is one-sided: it never makes a packet faster than the base) --
    or empirical: ``samples_s`` is a measured RTT distribution sampled uniformly (jitter included).
    """

    base_rtt_s: float = 0.04
    jitter_s: float = 0.0
    samples_s: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base_rtt_s) and self.base_rtt_s >= 0):
            raise ValueError(f"base_rtt_s must be a finite number >= 0, got {self.base_rtt_s!r}")
        if not (math.isfinite(self.jitter_s) and self.jitter_s >= 0):
            raise ValueError(f"jitter_s must be a finite number >= 0, got {self.jitter_s!r}")
        if any(not (math.isfinite(s) and s > 0) for s in self.samples_s):
            raise ValueError("RTT samples must be finite and > 0 s")

    @classmethod
    def empirical(cls, samples_s: np.ndarray | list[float]) -> Latency:
        """A measured RTT distribution (seconds)."""
        s = tuple(float(x) for x in np.asarray(samples_s, dtype=float).ravel())
        if not s:
            raise ValueError("an empirical RTT distribution needs at least one sample")
        return cls(base_rtt_s=min(s), samples_s=s)

    @property
    def mean_rtt_s(self) -> float:
        """Mean RTT (base plus the mean jitter of both directions, or the samples' mean)."""
        if self.samples_s:
            return float(np.mean(self.samples_s))
        return self.base_rtt_s + 2.0 * self.jitter_s

    @property
    def std_rtt_s(self) -> float:
        """Standard deviation of the RTT (for the retransmission timeout)."""
        if self.samples_s:
            return float(np.std(self.samples_s))
        return math.sqrt(2.0) * self.jitter_s

    @property
    def random(self) -> bool:
        """Whether draws need the random stream."""
        return bool(self.samples_s) or self.jitter_s > 0

    def one_way(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` one-way delays (seconds)."""
        if self.samples_s:
            return np.asarray(self.samples_s)[rng.integers(0, len(self.samples_s), n)] / 2.0
        half = np.full(n, self.base_rtt_s / 2.0)
        if self.jitter_s > 0:
            half += rng.exponential(self.jitter_s, n)
        return half
