"""Simulated link transfers per second on one core: constant, trace, and trace + loss, in one run.

The target (network-link issue) is >= 100,000 simulated transfers per second on one core. Each row
times ``--transfers`` transfers alternating a 60 kB uplink (41 packets: an image or split
activation) and a 1 kB downlink (an action chunk), one request every 50 ms of simulated time, so
the queues stay mostly empty as in a control loop:

* ``constant``: :class:`ConstantLink` (``constant:20:40``);
* ``trace``: a real trace with an empirical RTT distribution (``5g-driving``; no loss): one
  bisection per transfer, no per-packet work;
* ``trace+loss``: ``wifi`` (Gilbert-Elliott loss with TCP repair and exponential jitter);
* ``trace+loss 1MB``: as above with 1 MB uplinks (667 packets, one request every 0.5 s), which
  often span several loss runs: the vectorised run-length path.

``arrived`` is the share of transfers not lost (outages longer than the 2 s timeout, or loss).

Usage: ``python benchmarks/bench_link.py [--transfers 200000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rapid_env.link import Link, parse_link

TARGET_PER_S = 100_000


def time_link(
    link: Link, n: int, up_bytes: int, every_s: float, seed: int = 0
) -> tuple[float, int]:
    """Transfers per second over ``n`` transfers, and how many arrived."""
    link.reset(np.random.default_rng(seed))
    transfer = link.transfer
    t = 0.0
    arrived = 0
    t0 = time.perf_counter()
    for _ in range(n // 2):
        up = transfer(up_bytes, t, "up")
        down = transfer(1_000, up.arrival if up.arrival is not None else t, "down")
        arrived += (up.arrival is not None) + (down.arrival is not None)
        t += every_s
    return (n // 2 * 2) / (time.perf_counter() - t0), arrived


def main() -> None:
    """Print one row per link kind and the ratio to the target."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transfers", type=int, default=200_000)
    args = ap.parse_args()
    rows = [
        ("constant", "constant:20:40", 60_000),
        ("trace", "5g-driving", 60_000),
        ("trace+loss", "wifi", 60_000),
        ("trace+loss 1MB", "wifi", 1_000_000),
    ]
    print(f"{'link':16s} {'spec':16s} {'transfers/s':>12s} {'x target':>9s} {'arrived':>8s}")
    for label, spec, up_bytes in rows:
        big = up_bytes >= 1_000_000
        n = args.transfers // 4 if big else args.transfers
        rate, arrived = time_link(parse_link(spec), n, up_bytes, 0.5 if big else 0.05)
        print(f"{label:16s} {spec:16s} {rate:12,.0f} {rate / TARGET_PER_S:9.2f} {arrived / n:8.1%}")


if __name__ == "__main__":
    main()
