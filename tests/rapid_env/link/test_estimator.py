"""The link estimator: what it learns, from what, and that it never reads the link's future."""

from __future__ import annotations

import pytest

from rapid_env.link.base import TransferResult
from rapid_env.link.estimator import LinkEstimator
from tests.rapid_env.link.conftest import trace_link


def test_estimator_learns_only_from_what_it_is_shown():
    est = LinkEstimator(alpha=1.0)
    est.observe(TransferResult(1_000, "up", 0.0, 0.05))  # small: one-way delay 50 ms
    assert est.rtt_s == pytest.approx(0.1)
    est.observe(TransferResult(1_000_000, "up", 0.0, 0.05 + 1.0))  # 8 Mbit in 1 s
    assert est.bandwidth_bps == pytest.approx(8e6)
    est.observe(TransferResult(1_000_000, "up", 0.0, None))  # lost: no information
    assert est.bandwidth_bps == pytest.approx(8e6)


def test_estimator_uses_harmonic_mean_and_discounts_queueing():
    est = LinkEstimator(alpha=1.0, prior_rtt_s=0.0, window=2)
    est.observe(TransferResult(1_000_000, "up", 0.0, 1.0))  # 8 Mbit/s
    est.observe(TransferResult(1_000_000, "up", 0.0, 3.0, wait_s=2.0))  # queued 2 s: 8 Mbit/s
    assert est.bandwidth_bps == pytest.approx(8e6)
    est.observe(TransferResult(1_000_000, "up", 0.0, 0.5))  # 16 Mbit/s; window drops the first
    assert est.bandwidth_bps == pytest.approx(2 / (1 / 8e6 + 1 / 16e6))


def test_estimator_never_reads_ahead():
    # two links identical until t=1, then one collapses to 0.5 Mbit/s right after
    same = trace_link((0.0, 1.0, 5.0), (8.0, 8.0), rtt_s=0.02)
    drop = trace_link((0.0, 1.0, 5.0), (8.0, 0.5), rtt_s=0.02)
    ests = []
    for link in (same, drop):
        est = LinkEstimator(prior_rtt_s=0.02)
        t = 0.0
        pending = []
        for _ in range(20):  # 50 kB every 50 ms, observed only once delivered by t=1
            pending.append(link.transfer(50_000, t, "up"))
            t += 0.05
        for r in pending:
            est.observe(r, now=1.0)  # transfers still on the wire at t=1 are refused
        ests.append((est.bandwidth_bps, est.rtt_s, est.samples))
    assert ests[0] == ests[1]
    assert ests[0][2] < 20  # some were in flight at t=1 and were not looked at
    assert ests[0][0] == pytest.approx(8e6, rel=1e-6)


def test_estimator_drops_on_a_timeout_observed_at_its_deadline():
    est = LinkEstimator(alpha=1.0, prior_rtt_s=0.0)
    est.observe(TransferResult(1_000_000, "up", 0.0, 1.0))
    lost = TransferResult(100_000, "up", 1.0, None, timed_out=True)
    est.observe(lost, now=3.0)  # at best 0.8 Mbit in 2 s
    assert est.bandwidth_bps == pytest.approx(2 / (1 / 8e6 + 1 / 0.4e6))
