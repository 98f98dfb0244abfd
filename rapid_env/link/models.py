"""Link models: :class:`IdealLink`, :class:`ConstantLink` and the trace-driven :class:`TraceLink`.

Kernel shaping (tc netem) is not available, so this is a model (see ``docs/network.md``):

* **serialisation** integrates the time-varying bandwidth of a
  :class:`~rapid_env.link.traces.BandwidthTrace` exactly (closed form, a bisection per transfer),
  so a transfer that spans a rate change or an outage takes exactly the right time;
* **propagation** is half a round-trip time drawn per transfer: a base RTT plus exponential jitter,
  or a sample of a measured RTT distribution (5Gophers ping logs); deliveries stay in order;
* **loss** (optional) is a per-direction Gilbert-Elliott chain over 1500-byte packets
  (:mod:`rapid_env.link.loss`); ``reliability="tcp"`` repairs lost packets after a fast
  retransmit (one RTT) or a retransmission timeout, ``"udp"`` loses the whole transfer;
* **timeouts**: a transfer that has not arrived ``timeout_s`` after it was ready is given up
  (``arrival=None``, ``timed_out=True``), so an outage longer than the timeout makes the
  controller's request timeout fire.

All randomness (trace start offset, jitter, loss) comes from the generator passed to ``reset``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rapid_env.link.base import DIRECTIONS, Direction, TransferResult
from rapid_env.link.latency import Latency
from rapid_env.link.loss import GilbertElliott, GilbertElliottChannel
from rapid_env.link.queue import GapQueue
from rapid_env.link.traces import MTU_BYTES, BandwidthTrace

Reliability = Literal["tcp", "udp"]
TraceEnd = Literal["loop", "stop"]


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r}; allowed: {', '.join(DIRECTIONS)}")


def waited(t_start: float, begin: float, done: float, pieces: list[tuple[float, float]]) -> float:
    """Seconds a transfer could not use the link because of traffic booked before it.

    In one piece: the wait before it began. Spread over gaps: its time from ready to done
    less the time it was on the link.
    """
    if len(pieces) == 1:
        return begin - t_start
    return (done - t_start) - sum(e - b for b, e in pieces)


@dataclass
class ConstantLink:
    """Constant bandwidth and RTT; FIFO per direction.

    Arrival = when the transfer's bits are through (its own serialisation, in the link's idle
    time from ``t_start`` on: :class:`~rapid_env.link.queue.GapQueue`) + rtt / 2. Booked in time
    order that is ``max(t_start, direction free) + 8 * nbytes / bandwidth + rtt / 2``.
    """

    bandwidth_bps: float
    rtt_s: float
    name: str = ""
    _queues: dict[str, GapQueue] = field(
        default_factory=lambda: {"up": GapQueue(), "down": GapQueue()})

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
        self._queues = {"up": GapQueue(), "down": GapQueue()}

    def transfer(self, nbytes: int, t_start: float, direction: Direction) -> TransferResult:
        """Queue, serialise at the constant rate, then propagate for half the RTT."""
        _check_direction(direction)
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        rate, queue = self.bandwidth_bps, self._queues[direction]
        begin, done, pieces = queue.place(
            t_start, 8.0 * nbytes, lambda t, bits: t + bits / rate,
            lambda t0, t1: (t1 - t0) * rate)
        queue.commit(pieces, done)
        return TransferResult(
            nbytes, direction, t_start, done + self.rtt_s / 2.0,
            wait_s=waited(t_start, begin, done, pieces),
        )


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


# ---------------------------------------------------------------------- trace-driven link
_DELAY_BATCH = 512
_MAX_REPAIR_ROUNDS = 15  # like Linux's tcp_retries2: a transfer that keeps losing is dropped


class _Direction:
    """Per-direction episode state: queue, last arrival, delay stream, loss chain."""

    __slots__ = ("trace", "queue", "delays", "di", "rng", "channel")

    def __init__(self, trace: BandwidthTrace) -> None:
        self.trace = trace
        self.queue = GapQueue()
        self.delays: list[float] = []
        self.di = 0
        self.rng = np.random.default_rng(0)
        self.channel: GilbertElliottChannel | None = None


class TraceLink:
    """A link driven by bandwidth traces, with jitter, bursty loss, outages and timeouts.

    Args:
        down: downlink bandwidth trace (cloud -> edge).
        up: uplink trace; default ``down`` scaled by ``uplink_ratio``, sharing its time axis (so a
            fade hits both directions at once).
        uplink_ratio: uplink / downlink rate when ``up`` is not given.
        latency: RTT model.
        loss: Gilbert-Elliott parameters per direction, or None for no packet loss (then a
            transfer costs O(log segments), no per-packet work).
        reliability: ``tcp`` (repair losses, delaying the transfer) or ``udp`` (any lost packet
            loses the transfer).
        timeout_s: give a transfer up when it has not arrived this long after it was ready
            (None: never; a transfer that can never finish is then still lost).
        end: ``loop`` the trace, or ``stop`` (zero bandwidth after its end).
        random_start: draw the trace start offset per episode, uniformly over the trace.
        rto_min_s: floor of the retransmission timeout (Linux: 200 ms).
        name: the spec string.

    Example:
        >>> link = TraceLink(BandwidthTrace.constant(8e6), latency=Latency(0.04))
        >>> link.reset(np.random.default_rng(0))
        >>> round(link.transfer(100_000, 1.0, "up").arrival, 6)  # 20 ms + 0.1 s
        1.12
    """

    def __init__(
        self,
        down: BandwidthTrace,
        up: BandwidthTrace | None = None,
        *,
        uplink_ratio: float = 1.0,
        latency: Latency | None = None,
        loss: GilbertElliott | None = None,
        reliability: Reliability = "tcp",
        timeout_s: float | None = 2.0,
        end: TraceEnd = "loop",
        random_start: bool = True,
        rto_min_s: float = 0.2,
        name: str = "",
    ) -> None:
        if reliability not in ("tcp", "udp"):
            raise ValueError(f"reliability={reliability!r}; allowed: tcp, udp")
        if end not in ("loop", "stop"):
            raise ValueError(f"end={end!r}; allowed: loop, stop")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 or None, got {timeout_s!r}")
        if not rto_min_s >= 0:
            raise ValueError(f"rto_min_s must be >= 0, got {rto_min_s!r}")
        self.down = down
        self.up = up if up is not None else down.scaled(uplink_ratio)
        self.latency = latency or Latency()
        self.loss = None if loss is None or loss.lossless else loss
        self.reliability = reliability
        self.timeout_s = math.inf if timeout_s is None else float(timeout_s)
        self.end = end
        self.loop = end == "loop"
        self.random_start = random_start
        self.name = name or f"trace:{down.name}"
        lat = self.latency
        # RFC 6298 with the nominal RTT statistics, floored like Linux's tcp_rto_min.
        self.rto_s = max(rto_min_s, lat.mean_rtt_s + 4.0 * lat.std_rtt_s)
        self.offset_s = 0.0
        self._half_rtt = lat.base_rtt_s / 2.0
        self._mean_rtt = lat.mean_rtt_s
        self._dirs: dict[str, _Direction] = {}
        self.reset(np.random.default_rng(0))

    @property
    def mean_bandwidth_bps(self) -> float:
        """Nominal mean uplink rate.

        The uplink carries the images / split activations, so it is the number a static split
        planner must be configured with (:attr:`mean_bandwidth_down_bps` has the other).
        """
        return self.up.mean_bps

    @property
    def mean_bandwidth_up_bps(self) -> float:
        """Nominal mean uplink rate."""
        return self.up.mean_bps

    @property
    def mean_bandwidth_down_bps(self) -> float:
        """Nominal mean downlink rate (the trace as measured)."""
        return self.down.mean_bps

    @property
    def mean_rtt_s(self) -> float:
        """Nominal mean RTT."""
        return self.latency.mean_rtt_s

    def bandwidth_at(self, t: float, direction: Direction = "up") -> float:
        """The trace's rate (bit/s) at episode time ``t``: for plots and traces, never deciders."""
        trace = self.down if direction == "down" else self.up
        return trace.rate_at(max(t, 0.0) + self.offset_s, self.loop)

    def reset(self, rng: np.random.Generator) -> None:
        """Empty the queues; draw the start offset, then seed each direction's own stream.

        Per-direction streams keep uplink draws independent of how many downlink transfers were
        made, and vice versa.
        """
        self.offset_s = float(rng.random()) * self.down.duration_s if self.random_start else 0.0
        seeds = rng.integers(0, 2**63 - 1, size=len(DIRECTIONS))
        self._dirs = {}
        for d, trace, seed in zip(DIRECTIONS, (self.up, self.down), seeds, strict=True):
            st = _Direction(trace)
            st.rng = np.random.default_rng(int(seed))
            if self.loss is not None:
                st.channel = GilbertElliottChannel(self.loss, st.rng)
            self._dirs[d] = st

    def _delay(self, st: _Direction) -> float:
        if not self.latency.random:
            return self._half_rtt
        if st.di >= len(st.delays):
            st.delays = self.latency.one_way(st.rng, _DELAY_BATCH).tolist()
            st.di = 0
        d = st.delays[st.di]
        st.di += 1
        return d

    def _serialise(self, trace: BandwidthTrace, t: float, bits: float) -> float:
        off = self.offset_s
        return trace.finish_time(t + off, bits, self.loop) - off

    def transfer(self, nbytes: int, t_start: float, direction: Direction) -> TransferResult:
        """Queue, serialise along the trace, repair or drop lost packets, then propagate."""
        st = self._dirs.get(direction)
        if st is None:
            _check_direction(direction)
            raise AssertionError  # unreachable
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        horizon = t_start + self.timeout_s
        trace, off, loop = st.trace, self.offset_s, self.loop
        begin, done, pieces = st.queue.place(
            t_start, 8.0 * nbytes, lambda t, bits: self._serialise(trace, t, bits),
            lambda t0, t1: trace.bits_until(t1 + off, loop) - trace.bits_until(t0 + off, loop))
        wait_s = waited(t_start, begin, done, pieces)
        retx = lost_pk = 0
        dropped = False
        if st.channel is not None and nbytes > 0:
            n_pk = -(-nbytes // MTU_BYTES)
            pending = st.channel.count(n_pk)
            lost_pk = pending
            if self.reliability == "udp":
                dropped, pending = pending > 0, 0
            sent, rounds = n_pk, 0
            while pending and done < horizon and rounds < _MAX_REPAIR_ROUNDS:
                # Enough later packets arrived to trigger three duplicate ACKs: fast retransmit
                # after about one RTT; otherwise (tail or whole-window loss) wait for the RTO.
                wait = self._mean_rtt if sent - pending >= 3 else self.rto_s
                rounds += 1
                retx += pending
                bits = 8.0 * min(pending * MTU_BYTES, nbytes)
                done = self._serialise(st.trace, done + wait, bits)
                sent = pending
                pending = st.channel.count(pending)
                lost_pk += pending
            if pending:
                dropped = True  # gave up repairing (horizon or too many rounds)
        delay = self._delay(st)
        # one bottleneck queue: a transfer does not overtake one that went out before it
        arrival = st.queue.in_order(done, done + delay)
        if arrival - t_start > self.timeout_s or math.isinf(arrival):
            # the sender gives up at the horizon; what it had sent by then used the link
            st.queue.commit(pieces, max(begin, min(done, horizon)))
            return TransferResult(nbytes, direction, t_start, None, retx, lost_pk, True, wait_s)
        st.queue.commit(pieces, done)
        if dropped:
            return TransferResult(nbytes, direction, t_start, None, retx, lost_pk, False, wait_s)
        st.queue.delivered(done, arrival)
        return TransferResult(nbytes, direction, t_start, arrival, retx, lost_pk, False, wait_s)
