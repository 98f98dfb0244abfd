"""The seam between the control loop and the network: :class:`Link` and what a transfer returns.

A :class:`Link` answers one question: a transfer of ``nbytes`` that is ready at ``t_start`` in one
direction, when does it arrive -- or is it lost? Uplink and downlink are separate queues; transfers
in the same direction queue behind each other, as packets on one bottleneck (and one TCP stream)
do. The control loop, the estimator and the deciders see a link only through this protocol and the
:class:`TransferResult` it returns; the models live in :mod:`rapid_env.link.models`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

Direction = Literal["up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down")


@dataclass(frozen=True)
class TransferResult:
    """One transfer's fate. ``arrival`` is None when the transfer was lost.

    Attributes:
        nbytes: payload bytes.
        direction: ``up`` (edge -> cloud) or ``down``.
        start: when the payload was ready to send.
        arrival: when its last byte arrived, or None if lost (UDP loss or timeout).
        retransmissions: packets sent again (TCP repair of lost packets).
        lost_packets: packets the loss model dropped (including lost retransmissions).
        timed_out: given up because it had not arrived ``timeout_s`` after ``start``.
        wait_s: time spent queued behind earlier transfers in the same direction (the sender
            knows this: it is its own queue), so the estimator can tell queueing from bandwidth.
    """

    nbytes: int
    direction: Direction
    start: float
    arrival: float | None
    retransmissions: int = 0
    lost_packets: int = 0
    timed_out: bool = False
    wait_s: float = 0.0

    @property
    def lost(self) -> bool:
        """Whether the transfer never arrived."""
        return self.arrival is None

    def record(self) -> dict[str, Any]:
        """Plain-data form for the per-episode link timeline (JSON-ready)."""
        return {
            "direction": self.direction,
            "nbytes": self.nbytes,
            "start": self.start,
            "arrival": self.arrival,
            "retransmissions": self.retransmissions,
            "lost_packets": self.lost_packets,
            "lost": self.arrival is None,
            "timed_out": self.timed_out,
            "wait_s": self.wait_s,
        }


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
