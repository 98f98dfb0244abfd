"""Helpers shared by the link tests."""

from __future__ import annotations

import numpy as np

from rapid_env.link.latency import Latency
from rapid_env.link.models import TraceLink
from rapid_env.link.traces import BandwidthTrace

RNG = np.random.default_rng


def trace_link(times, rates_mbps, rtt_s=0.0, timeout_s=None, **kw) -> TraceLink:
    tr = BandwidthTrace(tuple(times), tuple(r * 1e6 for r in rates_mbps))
    link = TraceLink(tr, latency=Latency(rtt_s), random_start=False, timeout_s=timeout_s, **kw)
    link.reset(RNG(0))
    return link
