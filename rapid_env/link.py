"""The network link between robot (edge) and cloud, in simulated time.

A :class:`Link` answers one question: a transfer of ``nbytes`` that is ready at ``t_start`` in one
direction, when does it arrive? Transfers in the same direction queue behind each other, as packets
on one bottleneck do. This first version models a constant bandwidth and round-trip time; trace-
driven bandwidth, jitter, loss and outages implement the same protocol.

Spec strings (one registry for the CLI, the wrapper and W&B):

* ``ideal`` -- infinite bandwidth, zero delay (isolates compute latency);
* ``constant:<Mbps>:<rtt_ms>`` -- e.g. ``constant:20:40``; both directions get the bandwidth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

Direction = Literal["up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down")
LINK_FORMS = ("ideal", "constant:<Mbps>:<rtt_ms>")


@dataclass(frozen=True)
class TransferResult:
    """One transfer's fate. ``arrival`` is None when the transfer was lost."""

    nbytes: int
    direction: Direction
    start: float
    arrival: float | None
    retransmissions: int = 0

    @property
    def lost(self) -> bool:
        """Whether the transfer never arrived."""
        return self.arrival is None


class Link(Protocol):
    """A link in simulated time; see the module docstring."""

    name: str

    @property
    def mean_bandwidth_bps(self) -> float:
        """Nominal mean bandwidth (what a static planner would be configured with)."""
        ...

    @property
    def mean_rtt_s(self) -> float:
        """Nominal mean round-trip time."""
        ...

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode: forget queues; draw anything random from ``rng``."""
        ...

    def transfer(self, nbytes: int, t_start: float, direction: Direction) -> TransferResult:
        """Send ``nbytes`` ready at ``t_start``; return when (if) it arrives."""
        ...


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r}; allowed: {', '.join(DIRECTIONS)}")


@dataclass
class ConstantLink:
    """Constant bandwidth and RTT; FIFO per direction.

    Arrival = max(t_start, direction free) + 8 * nbytes / bandwidth + rtt / 2.
    """

    bandwidth_bps: float
    rtt_s: float
    name: str = ""
    _free_at: dict[str, float] = field(default_factory=lambda: {"up": 0.0, "down": 0.0})

    def __post_init__(self) -> None:
        if not self.bandwidth_bps > 0:
            raise ValueError(f"bandwidth must be > 0 bit/s, got {self.bandwidth_bps!r}")
        if not self.rtt_s >= 0:
            raise ValueError(f"rtt must be >= 0 s, got {self.rtt_s!r}")
        if not self.name:
            self.name = f"constant:{self.bandwidth_bps / 1e6:g}:{self.rtt_s * 1e3:g}"

    @property
    def mean_bandwidth_bps(self) -> float:
        """The constant bandwidth."""
        return self.bandwidth_bps

    @property
    def mean_rtt_s(self) -> float:
        """The constant RTT."""
        return self.rtt_s

    def reset(self, rng: np.random.Generator) -> None:
        """Empty both queues (a constant link draws nothing)."""
        self._free_at = {"up": 0.0, "down": 0.0}

    def transfer(self, nbytes: int, t_start: float, direction: Direction) -> TransferResult:
        """Queue, serialise at the constant rate, then propagate for half the RTT."""
        _check_direction(direction)
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        begin = max(t_start, self._free_at[direction])
        done = begin + 8.0 * nbytes / self.bandwidth_bps
        self._free_at[direction] = done
        return TransferResult(nbytes, direction, t_start, done + self.rtt_s / 2.0)


@dataclass
class IdealLink:
    """Infinite bandwidth, zero delay: every transfer arrives when it starts."""

    name: str = "ideal"
    mean_bandwidth_bps: float = math.inf
    mean_rtt_s: float = 0.0

    def reset(self, rng: np.random.Generator) -> None:
        """Nothing to reset."""

    def transfer(self, nbytes: int, t_start: float, direction: Direction) -> TransferResult:
        """Arrive instantly."""
        _check_direction(direction)
        return TransferResult(nbytes, direction, t_start, t_start)


def parse_link(spec: str) -> Link:
    """Build a link from its spec string; a bad spec raises naming it and the allowed forms."""
    if spec == "ideal":
        return IdealLink()
    parts = spec.split(":")
    if parts[0] == "constant":
        try:
            if len(parts) != 3:
                raise ValueError
            mbps, rtt_ms = float(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError(
                f"malformed link {spec!r}; expected constant:<Mbps>:<rtt_ms>, e.g. constant:20:40"
            ) from None
        if not (np.isfinite(mbps) and mbps > 0 and np.isfinite(rtt_ms) and rtt_ms >= 0):
            raise ValueError(f"link {spec!r}: Mbps must be > 0 and rtt_ms >= 0")
        return ConstantLink(mbps * 1e6, rtt_ms / 1e3, name=spec)
    raise ValueError(f"unknown link {spec!r}; allowed: {', '.join(LINK_FORMS)}")


class LinkEstimator:
    """Bandwidth and RTT estimated only from transfers that have already completed.

    Deciders must not read the link's future, so this sees a transfer only once its arrival time
    has passed (``observe`` is called by the controller at delivery time). Bandwidth is an EWMA of
    per-transfer goodput (bytes over arrival - start minus the RTT estimate); RTT is an EWMA of
    twice the smallest one-way delay seen for small transfers.
    """

    def __init__(self, alpha: float = 0.3, prior_bps: float = 10e6, prior_rtt_s: float = 0.05):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.prior_bps = prior_bps
        self.prior_rtt_s = prior_rtt_s
        self.reset()

    def reset(self) -> None:
        """Back to the priors at episode start."""
        self.bandwidth_bps = self.prior_bps
        self.rtt_s = self.prior_rtt_s
        self.samples = 0

    def observe(self, result: TransferResult) -> None:
        """Fold one completed transfer into the estimates."""
        if result.arrival is None:
            return
        duration = result.arrival - result.start
        if result.nbytes <= 1500:  # one packet: duration is ~ one-way delay
            self.rtt_s += self.alpha * (2.0 * duration - self.rtt_s)
        else:
            serial = max(duration - self.rtt_s / 2.0, 1e-6)
            self.bandwidth_bps += self.alpha * (8.0 * result.nbytes / serial - self.bandwidth_bps)
        self.samples += 1
