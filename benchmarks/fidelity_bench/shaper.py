"""Bandwidth on ``lo`` with ``tc``: an htb root that only classifies, a tbf leaf per direction.

``tbf`` meters wire bytes (IP, TCP and the 14-byte link header) while the model's bandwidth is a
rate of payload bytes, so in ``goodput`` mode the tbf rate is the spec's x 1514/1448. A trace is
followed in wall time by :class:`TraceShaper`, which changes both rates at every step.
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

MTU = 1500
FRAME = MTU + 14  # what tbf meters for a full segment on lo (Ethernet-style header)
MSS = MTU - 52  # IPv4 20 + TCP 20 + timestamps 12
GOODPUT_FACTOR = FRAME / MSS
BURST_BYTES = 1600  # the least bucket: one full frame (tbf refuses less than the largest packet)
BUCKET_S = 0.002
"""How long the bucket lasts at the rate (see :func:`bucket_bytes`)."""
TBF_LIMIT_BYTES = 32 << 20  # least queue room: no drops even with a whole blob queued in tbf
LIMIT_S = 0.25  # ... and at least this much of the rate
UNSHAPED_BPS = 10e9


def bucket_bytes(rate_bps: float, bucket_s: float = BUCKET_S) -> int:
    """The tbf bucket (``burst``) for a wire rate: ``bucket_s`` of the rate, whole frames, >= 1600.

    WHY: ``tbf`` only sends when the kernel runs its dequeue (a timer or the next packet); tokens
    earned while the bucket is full are lost. A bucket of one frame (1600 bytes) is full again
    after one frame time, 40 us at 300 Mbit/s, far below the scheduling latency of a loaded
    2-core machine, so at high rates the shaper wastes tokens and runs below its rate (a raw
    transfer at 300 Mbit/s took +53 % with 1600 bytes). A bucket of ``bucket_s`` of the rate
    keeps every token earned during a scheduling gap of up to ``bucket_s``. Rounded up to whole
    frames, at least 1600 bytes: below about 6 Mbit/s one frame already lasts 2 ms. The price is
    a head start: a transfer that begins with a full bucket sends ``burst`` bytes at once, so it
    is up to ``bucket_s`` faster than the model (2 ms; ``docs/fidelity.md``, *Biases*). At 2 ms
    the bucket also holds a whole 64 KB GSO packet from 300 Mbit/s up, so fast links are not cut
    into single frames (which the user-space delay line would have to handle one by one).
    """
    if not (math.isfinite(rate_bps) and rate_bps > 0):
        raise ValueError(f"tbf rate must be a finite number > 0 bit/s, got {rate_bps!r}")
    if not (math.isfinite(bucket_s) and bucket_s > 0):
        raise ValueError(f"bucket time must be a finite number > 0 s, got {bucket_s!r}")
    frames = math.ceil(rate_bps / 8.0 * bucket_s / FRAME)
    return max(BURST_BYTES, frames * FRAME)


def limit_bytes(rate_bps: float, burst: int) -> int:
    """The tbf queue limit: the bucket plus ``LIMIT_S`` of the rate, at least 32 MiB.

    WHY: the shaper must never drop (loss is injected on purpose, elsewhere); 32 MiB holds the
    largest payload many times over, and from about 1 Gbit/s the queue grows with the rate.
    """
    return max(TBF_LIMIT_BYTES, burst + int(rate_bps / 8.0 * LIMIT_S))


def _tc(*commands: str) -> None:
    """Run ``tc`` commands (one process, ``-batch``)."""
    proc = subprocess.run(
        ["tc", "-force", "-batch", "-"], input="\n".join(commands) + "\n",
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tc failed: {proc.stderr.strip()}\n{commands}")


def _tbf(handle: int, rate_bps: float, burst: int | None = None, verb: str = "change",
         bucket_s: float = BUCKET_S) -> str:
    rate = max(int(rate_bps), 8_000)  # tbf needs a positive rate: an outage is 8 kbit/s here
    burst = bucket_bytes(rate, bucket_s) if burst is None else burst
    return (
        f"qdisc {verb} dev lo parent 1:{handle} handle {handle}: tbf rate {rate}bit "
        f"burst {burst} limit {limit_bytes(rate, burst)}"
    )


class Shaper:
    """``lo``: htb root (classification only) with a tbf leaf per direction."""

    def __init__(self, rate_mode: str, bucket_s: float = BUCKET_S) -> None:
        self.factor = GOODPUT_FACTOR if rate_mode == "goodput" else 1.0
        self.bucket_s = bucket_s
        self.calibration = 1.0  # tbf rate x this, when the raw check found tbf off (see run.py)
        run = subprocess.run
        run(["ip", "link", "set", "lo", "up"], check=True)
        run(["ip", "link", "set", "lo", "mtu", str(MTU)], check=True)
        # Every row's connection starts fresh: no RTT or ssthresh inherited from the last one.
        Path("/proc/sys/net/ipv4/tcp_no_metrics_save").write_text("1")
        _tc(
            "qdisc add dev lo root handle 1: htb default 30",
            *(f"class add dev lo parent 1: classid 1:{c} htb rate 10gbit quantum 200000"
              for c in (10, 20, 30)),
            _tbf(10, UNSHAPED_BPS, 1 << 20, "add"),
            _tbf(20, UNSHAPED_BPS, 1 << 20, "add"),
        )

    def classify(self, port: int) -> None:
        """Traffic to ``port`` is "up", from it "down"."""
        _tc(
            f"filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport {port} 0xffff "
            "flowid 1:10",
            f"filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport {port} 0xffff "
            "flowid 1:20",
        )

    def set(self, up_bps: float, down_bps: float) -> None:
        """The payload rates (bit/s) of both directions."""
        scale = self.factor * self.calibration
        _tc(_tbf(10, up_bps * scale, bucket_s=self.bucket_s),
            _tbf(20, down_bps * scale, bucket_s=self.bucket_s))

    @staticmethod
    def segment(on: bool) -> None:
        """One segment per packet (``gso_max_segs 1``) for connections opened while on.

        A socket takes ``lo``'s GSO limits when it connects. A diagnostic (``--one-segment``):
        the user-space delay line then handles every 1514-byte frame on its own, which shows
        what per-packet handling costs it (it cannot keep up with 300 Mbit/s that way).
        """
        segs = 1 if on else 65535
        subprocess.run(["ip", "link", "set", "lo", "gso_max_segs", str(segs)], check=True)

    def unshaped(self) -> None:
        """Both directions at 10 Gbit/s with a 1 MiB bucket: no shaping to speak of."""
        _tc(_tbf(10, UNSHAPED_BPS, 1 << 20), _tbf(20, UNSHAPED_BPS, 1 << 20))

    @staticmethod
    def drops() -> int:
        """Packets the qdiscs on ``lo`` dropped so far."""
        out = subprocess.run(["tc", "-s", "qdisc", "show", "dev", "lo"], capture_output=True,
                             text=True).stdout
        total = 0
        for part in out.split("(dropped ")[1:]:
            total += int(part.split(",")[0])
        return total


class TraceShaper(threading.Thread):
    """Follow a trace link's rates in wall time from trace time ``offset``: one step per row."""

    def __init__(self, shaper: Shaper, link: Any, offset: float) -> None:
        super().__init__(daemon=True)
        self.shaper, self.link, self.offset = shaper, link, offset
        self.stop_event = threading.Event()
        self.lags: list[float] = []
        self.t0 = 0.0

    def _apply(self, tau: float) -> None:
        up = self.link.up.rate_at(tau, True)
        down = self.link.down.rate_at(tau, True)
        self.shaper.set(up, down)

    def begin(self) -> float:
        """Set the rates at the offset and start following; returns the wall time of trace 0."""
        self._apply(self.offset)
        self.t0 = time.perf_counter()
        self.start()
        return self.t0

    def run(self) -> None:
        """Sleep to each next step of the trace, then set its rates."""
        times = self.link.up.times_s
        period = times[-1]
        tau = self.offset
        while not self.stop_event.is_set():
            base = math.floor(tau / period) * period
            nxt = next((base + b for b in times if base + b > tau + 1e-9), base + period)
            target = self.t0 + (nxt - self.offset)
            if self.stop_event.wait(max(0.0, target - time.perf_counter())):
                return
            self._apply(nxt + 1e-9)
            self.lags.append(time.perf_counter() - target)
            tau = nxt

    def halt(self) -> None:
        """Stop following the trace."""
        self.stop_event.set()
        self.join(5)
