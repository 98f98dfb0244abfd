"""Bursty packet loss: the Gilbert-Elliott two-state Markov chain, sampled run by run.

Wireless losses come in bursts (fades, interference), which an independent per-packet loss rate
cannot reproduce: one burst can stall a TCP transfer for a retransmission timeout while the same
number of scattered losses would be repaired in passing. The chain has a *good* and a *bad*
state; per packet it moves good -> bad with probability ``p`` and bad -> good with probability
``r``, and a packet is lost with probability ``loss_good`` / ``loss_bad`` in each state
(Gilbert 1960; Elliott 1963). With the classic ``loss_good = 0, loss_bad = 1`` (the "Gilbert"
model) the loss rate is ``p / (p + r)`` and loss bursts are geometric with mean ``1 / r``.

Sampling needs no per-packet Python loop: the sojourn in each state is geometric, so the channel
draws whole runs (``Generator.geometric``, 256 at a time), walks the few runs a transfer spans, and
expands them with ``numpy.repeat`` when per-packet flags are asked for. The chain is indexed by
packets, not time: it does not move while the link is idle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_GOOD, _BAD = 0, 1
_BATCH = 256
_FOREVER = 1 << 62


@dataclass(frozen=True)
class GilbertElliott:
    """Parameters of the chain (per packet).

    Attributes:
        p: probability good -> bad.
        r: probability bad -> good (> 0 unless ``p`` is 0: the bad state must be left).
        loss_good: loss probability in the good state.
        loss_bad: loss probability in the bad state.
    """

    p: float
    r: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    def __post_init__(self) -> None:
        for name in ("p", "r", "loss_good", "loss_bad"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0.0 <= v <= 1.0):
                raise ValueError(f"Gilbert-Elliott {name} must be in [0, 1], got {v!r}")
        if self.p > 0 and self.r <= 0:
            raise ValueError(f"Gilbert-Elliott r must be > 0 when p > 0 (got p={self.p}, r=0)")

    @classmethod
    def from_loss(cls, loss_rate: float, mean_burst: float) -> GilbertElliott:
        """The Gilbert model (lossless good, lossy bad) with this loss rate and burst length."""
        if not 0.0 <= loss_rate < 1.0:
            raise ValueError(f"loss_rate must be in [0, 1), got {loss_rate}")
        if not mean_burst >= 1.0:
            raise ValueError(f"mean_burst must be >= 1 packet, got {mean_burst}")
        r = 1.0 / mean_burst
        return cls(p=loss_rate * r / (1.0 - loss_rate), r=r)

    @property
    def stationary_bad(self) -> float:
        """Long-run fraction of packets sent in the bad state."""
        return 0.0 if self.p == 0 else self.p / (self.p + self.r)

    @property
    def loss_rate(self) -> float:
        """Long-run packet loss rate."""
        b = self.stationary_bad
        return (1.0 - b) * self.loss_good + b * self.loss_bad

    @property
    def mean_bad_run(self) -> float:
        """Mean sojourn in the bad state, in packets (the mean loss burst when loss_bad = 1)."""
        return math.inf if self.r == 0 else 1.0 / self.r

    @property
    def lossless(self) -> bool:
        """Whether no packet can ever be lost."""
        return self.loss_rate == 0.0 and self.loss_good == 0.0


class GilbertElliottChannel:
    """One direction's chain state, advanced by the packets sent through it.

    The initial state and its residual sojourn are drawn from the stationary distribution (the
    geometric sojourn is memoryless), so every episode starts in steady state.
    """

    def __init__(self, model: GilbertElliott, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self._lens: list[int] = []
        self._states: list[int] = []
        self._pos = 0
        if model.p == 0:
            self._state, self._left = _GOOD, _FOREVER
        else:
            self._state = _BAD if rng.random() < model.stationary_bad else _GOOD
            self._left = self._sojourn(self._state)
        self._last = self._state  # state of the last run drawn so far

    def _sojourn(self, state: int) -> int:
        leave = self.model.p if state == _GOOD else self.model.r
        return int(self.rng.geometric(leave)) if leave > 0 else _FOREVER

    def _refill(self) -> None:
        # One vectorised draw of a batch of sojourns, alternating from the last state drawn.
        states = ((1 - self._last) + np.arange(_BATCH)) % 2
        leave = np.where(states == _GOOD, self.model.p, self.model.r)
        self._lens = self._lens[self._pos :] + self.rng.geometric(leave).tolist()
        self._states = self._states[self._pos :] + states.tolist()
        self._pos = 0
        self._last = int(states[-1])

    def _consume(self, n: int) -> tuple[list[int], list[int]]:
        """Advance the chain by ``n`` packets; return the (state, length) runs they fell in.

        A transfer spans a handful of runs, so walking the pre-drawn runs in Python is cheaper
        than numpy's per-call overhead.
        """
        take = min(self._left, n)
        states, lens = [self._state], [take]
        self._left -= take
        need = n - take
        while need > 0:
            if self._pos >= len(self._lens):
                self._refill()
            state, length = self._states[self._pos], self._lens[self._pos]
            self._pos += 1
            take = min(length, need)
            states.append(state)
            lens.append(take)
            need -= take
            self._state, self._left = state, length - take
        return states, lens

    def runs(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The states and run lengths of the next ``n`` packets (lengths sum to ``n``)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        states, lens = self._consume(n)
        return np.asarray(states, dtype=np.int8), np.asarray(lens, dtype=np.int64)

    def sample(self, n: int) -> np.ndarray:
        """Per-packet loss flags of the next ``n`` packets (True = lost)."""
        states, lens = self.runs(n)
        bad = np.repeat(states == _BAD, lens)
        m = self.model
        if m.loss_good == 0.0 and m.loss_bad == 1.0:
            return bad
        return self.rng.random(n) < np.where(bad, m.loss_bad, m.loss_good)

    def count(self, n: int) -> int:
        """How many of the next ``n`` packets are lost (cheaper than :meth:`sample`)."""
        if n == 0:
            return 0
        if self._left >= n:  # common case: the current sojourn covers the transfer, no numpy
            self._left -= n
            n_bad = n if self._state == _BAD else 0
        else:
            states, lens = self._consume(n)
            n_bad = sum(k for st, k in zip(states, lens, strict=True) if st == _BAD)
        m = self.model
        lost = 0
        for k, prob in ((n - n_bad, m.loss_good), (n_bad, m.loss_bad)):
            if k == 0 or prob == 0.0:
                continue
            lost += k if prob == 1.0 else int(self.rng.binomial(k, prob))
        return lost
