"""Closed-form checks of the constant link and the estimator."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.link import ConstantLink, IdealLink, LinkEstimator, TransferResult, parse_link


def test_constant_link_closed_form():
    link = parse_link("constant:8:40")
    link.reset(np.random.default_rng(0))
    r = link.transfer(100_000, 1.0, "up")
    assert r.arrival == pytest.approx(1.0 + 0.020 + 8 * 100_000 / 8e6)


def test_transfers_queue_per_direction_only():
    link = ConstantLink(8e6, 0.0)
    a = link.transfer(1_000_000, 0.0, "up")  # 1 s of serialisation
    b = link.transfer(1_000_000, 0.5, "up")  # waits for a
    c = link.transfer(1_000_000, 0.5, "down")  # other direction: no wait
    assert a.arrival == pytest.approx(1.0)
    assert b.arrival == pytest.approx(2.0)
    assert c.arrival == pytest.approx(1.5)
    link.reset(np.random.default_rng(0))
    assert link.transfer(0, 0.0, "up").arrival == 0.0


def test_ideal_link_is_instant():
    assert IdealLink().transfer(10**9, 3.0, "down").arrival == 3.0


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("dialup", "unknown link 'dialup'; allowed: ideal, constant:<Mbps>:<rtt_ms>"),
        ("constant:abc:10", "malformed link 'constant:abc:10'"),
        ("constant:10", "malformed link 'constant:10'"),
        ("constant:-1:10", "Mbps must be > 0"),
    ],
)
def test_bad_specs(spec, needle):
    with pytest.raises(ValueError, match=needle):
        parse_link(spec)


def test_estimator_learns_only_from_what_it_is_shown():
    est = LinkEstimator(alpha=1.0)
    est.observe(TransferResult(1_000, "up", 0.0, 0.05))  # small: one-way delay 50 ms
    assert est.rtt_s == pytest.approx(0.1)
    est.observe(TransferResult(1_000_000, "up", 0.0, 0.05 + 1.0))  # 8 Mbit in 1 s
    assert est.bandwidth_bps == pytest.approx(8e6)
    est.observe(TransferResult(1_000_000, "up", 0.0, None))  # lost: no information
    assert est.bandwidth_bps == pytest.approx(8e6)
