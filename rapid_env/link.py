"""The network link between robot (edge) and cloud, in simulated time.

A :class:`Link` answers one question: a transfer of ``nbytes`` that is ready at ``t_start`` in one
direction, when does it arrive -- or is it lost? Uplink and downlink are separate queues; transfers
in the same direction queue behind each other, as packets on one bottleneck (and one TCP stream)
do. Kernel shaping (tc netem) is not available, so this is a model (see ``docs/network.md``):

* **serialisation** integrates the time-varying bandwidth of a :class:`~rapid_env.traces.
  BandwidthTrace` exactly (closed form, a bisection per transfer), so a transfer that spans a rate
  change or an outage takes exactly the right time;
* **propagation** is half a round-trip time drawn per transfer: a base RTT plus exponential jitter,
  or a sample of a measured RTT distribution (5Gophers ping logs); deliveries stay in order;
* **loss** (optional) is a per-direction Gilbert-Elliott chain over 1500-byte packets
  (:mod:`rapid_env.loss`); ``reliability="tcp"`` repairs lost packets after a fast retransmit
  (one RTT) or a retransmission timeout, ``"udp"`` loses the whole transfer;
* **timeouts**: a transfer that has not arrived ``timeout_s`` after it was ready is given up
  (``arrival=None``, ``timed_out=True``), so an outage longer than the timeout makes the
  controller's request timeout fire.

All randomness (trace start offset, jitter, loss) comes from the generator passed to ``reset``.

Spec strings (one registry, :data:`LINKS`, for the CLI, the wrapper and W&B):

* ``ideal`` -- infinite bandwidth, zero delay (isolates compute latency);
* ``constant:<Mbps>:<rtt_ms>`` -- e.g. ``constant:20:40``; both directions get the bandwidth;
* presets ``wifi``, ``5g-driving``, ``5g-walking``, ``4g``, ``3g-train``, ``3g-bus``,
  ``broadband-slow``, ``puffer`` (sources and parameters in :data:`PRESETS`);
* ``trace:<path>[:scale[:rtt_ms]]`` -- a user's TSV / mahimahi / 5Gophers throughput file, rates
  times ``scale``, the same trace both ways, base RTT ``rtt_ms`` (default 40 ms).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from rapid_env.loss import GilbertElliott, GilbertElliottChannel
from rapid_env.registry import Registry
from rapid_env.traces import MTU_BYTES, BandwidthTrace, bundled, load_rtt_samples, load_trace

Direction = Literal["up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down")
Reliability = Literal["tcp", "udp"]
TraceEnd = Literal["loop", "stop"]


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
        return TransferResult(
            nbytes, direction, t_start, done + self.rtt_s / 2.0, wait_s=begin - t_start
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


# ---------------------------------------------------------------------- latency
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


# ---------------------------------------------------------------------- trace-driven link
_DELAY_BATCH = 512
_MAX_REPAIR_ROUNDS = 15  # like Linux's tcp_retries2: a transfer that keeps losing is dropped


class _Direction:
    """Per-direction episode state: queue, last arrival, delay stream, loss chain."""

    __slots__ = ("trace", "free_at", "last_arrival", "delays", "di", "rng", "channel")

    def __init__(self, trace: BandwidthTrace) -> None:
        self.trace = trace
        self.free_at = 0.0
        self.last_arrival = -math.inf
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
        begin = t_start if t_start > st.free_at else st.free_at
        horizon = t_start + self.timeout_s
        done = self._serialise(st.trace, begin, 8.0 * nbytes) if nbytes else begin
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
        arrival = done + delay
        if arrival < st.last_arrival:
            arrival = st.last_arrival  # one bottleneck queue: deliveries stay in order
        if arrival - t_start > self.timeout_s or math.isinf(arrival):
            # the sender gives up at the horizon; what it had sent by then used the link
            st.free_at = max(begin, min(done, horizon))
            return TransferResult(
                nbytes, direction, t_start, None, retx, lost_pk, True, begin - t_start
            )
        st.free_at = done
        if dropped:
            return TransferResult(
                nbytes, direction, t_start, None, retx, lost_pk, False, begin - t_start
            )
        st.last_arrival = arrival
        return TransferResult(
            nbytes, direction, t_start, arrival, retx, lost_pk, False, begin - t_start
        )


# ---------------------------------------------------------------------- presets
@dataclass(frozen=True)
class LinkPreset:
    """A named link: how to build it and where its numbers come from (for docs and W&B)."""

    name: str
    description: str
    source: str
    licence: str
    build: Callable[[], Link]


def _rtt_5g() -> Latency:
    # 5Gophers round-trip-times.csv: Verizon (the mmWave carrier of the paper), US-East server.
    path = bundled("5gophers/round-trip-times.csv")
    return Latency.empirical(load_rtt_samples(path, carrier="VERIZON", server_location="US-East"))


def _rtt_4g() -> Latency:
    # 5Gophers ping-trace-02.log: 4G ICMP probes to a US-East server (first-hop logs excluded:
    # a cloud is not the first hop).
    return Latency.empirical(load_rtt_samples(bundled("5gophers/ping-trace-02.log")))


def _tsv_preset(file: str, ratio: float, base_rtt_s: float, jitter_s: float, name: str) -> Link:
    return TraceLink(
        load_trace(bundled(file)),
        uplink_ratio=ratio,
        latency=Latency(base_rtt_s, jitter_s),
        name=name,
    )


PRESETS: dict[str, LinkPreset] = {
    p.name: p
    for p in (
        LinkPreset(
            "wifi",
            "parametric home/lab Wi-Fi: 40 Mbit/s both ways (802.11 shares one channel, so the "
            "same rate up and down), base RTT 20 ms + exponential jitter (mean 2 ms per "
            "direction), Gilbert-Elliott loss 1% in bursts of 2 packets (mean), TCP repair",
            "no trace bundled; bursty-loss shape after Carvalho et al., 'A New Packet Loss Model "
            "of the IEEE 802.11g Wireless Network for Multimedia Communications' (IEEE Trans. "
            "Consumer Electronics 2005); the numbers are this project's assumptions",
            "n/a (parametric)",
            lambda: TraceLink(
                BandwidthTrace.constant(40e6, "wifi"),
                latency=Latency(0.020, 0.002),
                loss=GilbertElliott.from_loss(0.01, 2.0),
                random_start=False,
                name="wifi",
            ),
        ),
        LinkPreset(
            "5g-driving",
            "Verizon mmWave 5G while driving (5Gophers car-driving-trace-1, Verizon column, "
            "120 s, mean 275 Mbit/s down, outages to 0); uplink = 0.1 x downlink; RTT sampled "
            "from 5Gophers Verizon US-East RTTs (mean 62 ms)",
            "5Gophers 1.0, Narayanan et al., WWW 2020",
            "CC BY 4.0",
            lambda: TraceLink(
                load_trace(bundled("5gophers/car-driving-trace-1.csv"), carrier="Verizon"),
                uplink_ratio=0.1,
                latency=_rtt_5g(),
                name="5g-driving",
            ),
        ),
        LinkPreset(
            "5g-walking",
            "mmWave 5G while walking (5Gophers walking-trace, 603 s, 4G/5G hand-offs, mean "
            "333 Mbit/s down); uplink = 0.1 x downlink; RTT as 5g-driving",
            "5Gophers 1.0, Narayanan et al., WWW 2020",
            "CC BY 4.0",
            lambda: TraceLink(
                load_trace(bundled("5gophers/walking-trace.csv")),
                uplink_ratio=0.1,
                latency=_rtt_5g(),
                name="5g-walking",
            ),
        ),
        LinkPreset(
            "4g",
            "LTE: the 4G-radio rows of the 5Gophers walking trace joined (315 s, mean "
            "159 Mbit/s down, drops to 0); uplink = 0.25 x downlink; RTT sampled from the 4G "
            "ping log to US-East (ping-trace-02, mean 57 ms)",
            "5Gophers 1.0, Narayanan et al., WWW 2020",
            "CC BY 4.0",
            lambda: TraceLink(
                load_trace(bundled("5gophers/walking-trace.csv"), radio="4G"),
                uplink_ratio=0.25,
                latency=_rtt_4g(),
                name="4g",
            ),
        ),
        LinkPreset(
            "3g-train",
            "HSDPA 3G on a commuter train (hsdpa3g_train_1, 299 s, time-weighted mean "
            "1.19 Mbit/s, deep fades); uplink = 0.5 x downlink; RTT 90 ms base + exponential "
            "jitter 15 ms/direction",
            "Riiser et al., MMSys 2013 (Telenor, Oslo), via Real-world-bandwidth-traces",
            "MIT (c) 2023 Nuowen Kan (collection)",
            lambda: _tsv_preset("hsdpa3g_train_1.tsv", 0.5, 0.090, 0.015, "3g-train"),
        ),
        LinkPreset(
            "3g-bus",
            "HSDPA 3G on a bus (hsdpa3g_bus_1, 155 s, mean 2.91 Mbit/s); uplink = 0.5 x "
            "downlink; RTT as 3g-train",
            "Riiser et al., MMSys 2013 (Telenor, Oslo), via Real-world-bandwidth-traces",
            "MIT (c) 2023 Nuowen Kan (collection)",
            lambda: _tsv_preset("hsdpa3g_bus_1.tsv", 0.5, 0.090, 0.015, "3g-bus"),
        ),
        LinkPreset(
            "broadband-slow",
            "slow fixed broadband (fcc_broadband_3, 1675 s, mean 0.49 Mbit/s, 9 zero-rate "
            "samples); uplink = 0.25 x downlink (asymmetric DSL); RTT 30 ms + jitter 2 ms",
            "FCC Measuring Broadband America 2016, filtered by Pensieve, via "
            "Real-world-bandwidth-traces",
            "MIT (c) 2023 Nuowen Kan (collection)",
            lambda: _tsv_preset("fcc_broadband_3.tsv", 0.25, 0.030, 0.002, "broadband-slow"),
        ),
        LinkPreset(
            "puffer",
            "residential access seen by a Puffer video client (puffer_1, 1248 s, mean "
            "2.02 Mbit/s, near-zero dips); uplink = 0.25 x downlink; RTT 40 ms + jitter 5 ms",
            "Puffer (Yan et al., NSDI 2020), 2022-02-18 sessions, via Real-world-bandwidth-traces",
            "MIT (c) 2023 Nuowen Kan (collection)",
            lambda: _tsv_preset("puffer_1.tsv", 0.25, 0.040, 0.005, "puffer"),
        ),
    )
}

LINK_FORMS = ("ideal", "constant:<Mbps>:<rtt_ms>", *PRESETS, "trace:<path>[:scale[:rtt_ms]]")


def _constant(arg: str) -> Link:
    spec = f"constant:{arg}"
    parts = arg.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        mbps, rtt_ms = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(
            f"malformed link {spec!r}; expected constant:<Mbps>:<rtt_ms>, e.g. constant:20:40"
        ) from None
    if not (math.isfinite(mbps) and mbps > 0 and math.isfinite(rtt_ms) and rtt_ms >= 0):
        raise ValueError(f"link {spec!r}: Mbps must be > 0 and rtt_ms >= 0")
    return ConstantLink(mbps * 1e6, rtt_ms / 1e3, name=spec)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _trace(arg: str) -> Link:
    """``trace:<path>[:scale[:rtt_ms]]``; numbers are peeled off the end (paths may hold ':')."""
    spec = f"trace:{arg}"
    path = arg
    numbers: list[float] = []
    while len(numbers) < 2:
        head, sep, tail = path.rpartition(":")
        value = _number(tail) if sep else None
        if value is None:
            break
        numbers.insert(0, value)
        path = head
    scale = numbers[0] if numbers else 1.0
    rtt_ms = numbers[1] if len(numbers) > 1 else 40.0
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"link {spec!r}: scale must be a finite number > 0, got {scale!r}")
    if not (math.isfinite(rtt_ms) and rtt_ms >= 0):
        raise ValueError(f"link {spec!r}: rtt_ms must be a finite number >= 0, got {rtt_ms!r}")
    try:
        trace = load_trace(path).scaled(scale)
    except ValueError as exc:
        raise ValueError(f"link {spec!r}: {exc}") from None
    return TraceLink(trace, latency=Latency(rtt_ms / 1e3), name=spec)


LINKS: Registry[Link] = Registry("link")
LINKS.register("ideal", IdealLink)
for _name, _preset in PRESETS.items():
    LINKS.register(_name, _preset.build)
LINKS.register_prefix("constant:", _constant)
LINKS.register_prefix("trace:", _trace)


def parse_link(spec: str) -> Link:
    """Build a link from its spec string; a bad spec raises naming it and the allowed forms."""
    if spec not in LINKS:
        raise ValueError(f"unknown link {spec!r}; allowed: {', '.join(LINK_FORMS)}")
    return LINKS.create(spec)


# ---------------------------------------------------------------------- estimator
class LinkEstimator:
    """Bandwidth and RTT estimated only from transfers that have already completed.

    Deciders must not read the link's future, so this sees a transfer only once its arrival time
    has passed (``observe`` is called by the controller at delivery time, and with ``now`` it
    refuses anything that arrives after ``now``). Bandwidth is the harmonic mean of the last
    ``window`` goodput samples (robust to one lucky fast sample, as in robustMPC, Yin et al.,
    SIGCOMM 2015); a goodput sample is bytes over the transfer's time on the wire
    (arrival - start - time queued - RTT / 2). A transfer given up at ``now`` contributes the
    goodput it at best achieved (bytes over ``now - start``), so an outage pulls the estimate
    down while it lasts. RTT is an EWMA (``alpha``) of twice the one-way delay of one-packet
    transfers.
    """

    def __init__(
        self,
        alpha: float = 0.3,
        prior_bps: float = 10e6,
        prior_rtt_s: float = 0.05,
        window: int = 5,
        small_bytes: int = MTU_BYTES,
    ):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.alpha = alpha
        self.prior_bps = prior_bps
        self.prior_rtt_s = prior_rtt_s
        self.window = window
        self.small_bytes = small_bytes
        self.reset()

    def reset(self) -> None:
        """Back to the priors at episode start."""
        self.bandwidth_bps = self.prior_bps
        self.rtt_s = self.prior_rtt_s
        self.samples = 0
        self._goodput: list[float] = []

    def _add_goodput(self, bps: float) -> None:
        self._goodput.append(bps)
        if len(self._goodput) > self.window:
            del self._goodput[0]
        self.bandwidth_bps = len(self._goodput) / sum(1.0 / g for g in self._goodput)

    def observe(self, result: TransferResult, now: float | None = None) -> None:
        """Fold one finished transfer into the estimates (nothing that arrives after ``now``)."""
        if result.arrival is None:
            if now is None or result.nbytes <= self.small_bytes or now <= result.start:
                return  # a lost small transfer says nothing about bandwidth
            self._add_goodput(max(8.0 * result.nbytes / (now - result.start), 1.0))
            self.samples += 1
            return
        if now is not None and result.arrival > now:
            return  # not delivered yet: that would be reading the link's future
        duration = result.arrival - result.start - result.wait_s
        if result.nbytes <= self.small_bytes:  # one packet: duration is ~ one-way delay
            self.rtt_s += self.alpha * (2.0 * duration - self.rtt_s)
        elif result.nbytes > 0:
            serial = max(duration - self.rtt_s / 2.0, 1e-6)
            self._add_goodput(8.0 * result.nbytes / serial)
        self.samples += 1
