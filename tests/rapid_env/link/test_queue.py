"""The out-of-order link queue: a transfer ready earlier goes out in the gaps of later bookings."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.link.latency import Latency
from rapid_env.link.models import ConstantLink, TraceLink
from rapid_env.link.queue import GapQueue
from rapid_env.link.traces import BandwidthTrace

RATE = 8e6  # 1 MB/s: 1,000 bytes per ms


def _rate_fns(rate: float = RATE):
    return (lambda t, bits: t + bits / rate), (lambda t0, t1: (t1 - t0) * rate)


def test_in_time_order_it_is_a_fifo():
    q, (ser, cap) = GapQueue(), _rate_fns()
    assert q.book(0.0, 8e4, ser, cap) == (0.0, pytest.approx(0.01))
    # ready at 5 ms while the first is still on the link: it waits, then serialises
    begin, done = q.book(0.005, 8e4, ser, cap)
    assert begin == pytest.approx(0.01) and done == pytest.approx(0.02)


def test_a_transfer_booked_later_but_ready_earlier_fills_the_gap():
    q, (ser, cap) = GapQueue(), _rate_fns()
    q.book(0.0, 8e4, ser, cap)  # [0, 10 ms]
    q.book(0.1, 8e3, ser, cap)  # [100, 101 ms], booked ahead of time
    begin, done = q.book(0.02, 8e4, ser, cap)  # ready at 20 ms: 10 ms fit before 100 ms
    assert begin == pytest.approx(0.02) and done == pytest.approx(0.03)


def test_one_that_does_not_fit_spills_over_the_busy_interval():
    q, (ser, cap) = GapQueue(), _rate_fns()
    q.book(0.05, 8e4, ser, cap)  # [50, 60 ms]
    begin, done = q.book(0.0, 8e5, ser, cap)  # 100 ms of bits: 50 before, 50 after
    assert begin == 0.0 and done == pytest.approx(0.11)
    # the link is busy from 0 to 110 ms now
    assert q.book(0.0, 8e3, ser, cap)[0] == pytest.approx(0.11)


def test_delivery_order_holds_only_against_transfers_that_went_out_first():
    q = GapQueue()
    q.delivered(0.10, 0.30)  # went out at 100 ms, arrives late (jitter)
    assert q.in_order(0.05, 0.06) == 0.06  # went out before it: may arrive before it
    assert q.in_order(0.12, 0.13) == 0.30  # went out after it: cannot overtake


def test_constant_link_pipelined_upload_does_not_wait_for_later_token_transfers():
    link = ConstantLink(300e6, 0.010)
    link.reset(np.random.default_rng(0))
    # request A: a 2.26 MB upload, then small uploads every 30 ms (a split in the decoding loop)
    link.transfer(2_260_000, 0.0, "up")
    for k in range(6):
        link.transfer(8_192, 0.08 + 0.03 * k, "up")
    # request B, sent at 100 ms: its upload uses the idle time between A's small uploads
    res = link.transfer(2_260_000, 0.1, "up")
    serialise = 8 * 2_260_000 / 300e6
    assert res.arrival < 0.1 + serialise + 0.005 + 6 * 8 * 8_192 / 300e6 + 1e-9
    assert 0 < res.wait_s < 0.001  # only the small uploads' own time held it up


def test_trace_link_fills_gaps_and_keeps_fifo_results_in_time_order():
    def link():
        lk = TraceLink(BandwidthTrace.constant(8e6), latency=Latency(0.04), random_start=False)
        lk.reset(np.random.default_rng(0))
        return lk

    a = link()
    first = a.transfer(100_000, 0.0, "up")
    second = a.transfer(100_000, 0.05, "up")  # queued behind the first: FIFO
    assert first.arrival == pytest.approx(0.12)
    assert second.arrival == pytest.approx(0.22) and second.wait_s == pytest.approx(0.05)
    b = link()
    b.transfer(10_000, 0.5, "up")  # booked ahead: [0.5, 0.51]
    early = b.transfer(100_000, 0.0, "up")  # ready at 0: 0.1 s fits before 0.5
    assert early.arrival == pytest.approx(0.12) and early.wait_s == 0.0
