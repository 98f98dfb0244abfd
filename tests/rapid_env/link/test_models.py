"""Closed-form checks of the link models: constant, trace, outages, jitter, TCP/UDP repair."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.controller import PartitionedController
from rapid_env.cost.model import InferencePlan, Stage
from rapid_env.decision import KEEP, Decision
from rapid_env.link.latency import Latency
from rapid_env.link.loss import GilbertElliott
from rapid_env.link.models import ConstantLink, IdealLink, TraceLink
from rapid_env.link.spec import parse_link
from rapid_env.link.traces import BandwidthTrace
from rapid_env.noise import Clean
from tests.conftest import CountingPolicy
from tests.rapid_env.link.conftest import RNG, trace_link


# ---------------------------------------------------------------------- constant / closed form
def test_constant_link_closed_form():
    link = parse_link("constant:8:40")
    link.reset(RNG(0))
    r = link.transfer(100_000, 1.0, "up")
    assert r.arrival == pytest.approx(1.0 + 0.020 + 8 * 100_000 / 8e6)


@pytest.mark.parametrize("nbytes", [0, 1, 1500, 123_457, 5_000_000])
def test_trace_link_on_a_constant_trace_is_rtt_half_plus_serialisation(nbytes):
    link = trace_link((0.0, 7.0), (12.0,), rtt_s=0.05)
    r = link.transfer(nbytes, 3.0, "down")
    assert r.arrival == pytest.approx(3.0 + 0.025 + 8 * nbytes / 12e6, abs=1e-12)
    assert r.retransmissions == 0 and not r.lost and not r.timed_out


def test_transfers_queue_per_direction_only():
    link = ConstantLink(8e6, 0.0)
    a = link.transfer(1_000_000, 0.0, "up")  # 1 s of serialisation
    b = link.transfer(1_000_000, 0.5, "up")  # waits for a
    c = link.transfer(1_000_000, 0.5, "down")  # other direction: no wait
    assert a.arrival == pytest.approx(1.0)
    assert b.arrival == pytest.approx(2.0) and b.wait_s == pytest.approx(0.5)
    assert c.arrival == pytest.approx(1.5)
    link.reset(RNG(0))
    assert link.transfer(0, 0.0, "up").arrival == 0.0


def test_trace_link_queues_per_direction():
    link = trace_link((0.0, 100.0), (8.0,), rtt_s=0.02)
    a = link.transfer(1_000_000, 0.0, "up")
    b = link.transfer(1_000_000, 0.5, "up")
    c = link.transfer(1_000_000, 0.5, "down")
    assert (a.arrival, b.arrival, c.arrival) == pytest.approx((1.01, 2.01, 1.51))
    assert b.wait_s == pytest.approx(0.5)


def test_ideal_link_is_instant():
    assert IdealLink().transfer(10**9, 3.0, "down").arrival == 3.0


# ---------------------------------------------------------------------- rate changes and outages
def test_transfer_across_a_rate_step_takes_exactly_the_right_time():
    # 10 Mbit/s until t=1, then 2 Mbit/s; 8 Mbit ready at 0.5: 5 Mbit by t=1, 3 Mbit take 1.5 s
    link = trace_link((0.0, 1.0, 10.0), (10.0, 2.0), rtt_s=0.04)
    r = link.transfer(1_000_000, 0.5, "up")
    assert r.arrival == pytest.approx(2.5 + 0.02)


def test_transfer_across_the_loop_seam():
    # period 2 s: 4 Mbit/s then 1 Mbit/s; ready at 1.5: 0.5 Mbit by 2.0, then 3.5 Mbit at 4 Mbit/s
    link = trace_link((0.0, 1.0, 2.0), (4.0, 1.0))
    r = link.transfer(500_000, 1.5, "up")
    assert r.arrival == pytest.approx(2.0 + 3.5 / 4.0)


def test_short_outage_is_waited_out():
    link = trace_link((0.0, 1.0, 1.5, 10.0), (8.0, 0.0, 8.0), rtt_s=0.0)
    r = link.transfer(1_000_000, 0.5, "up")  # 4 Mbit before, 0.5 s of nothing, 4 Mbit after
    assert r.arrival == pytest.approx(2.0)


def test_outage_longer_than_the_timeout_is_a_timeout_event():
    link = trace_link((0.0, 1.0, 4.0, 10.0), (8.0, 0.0, 8.0), rtt_s=0.02, timeout_s=2.0)
    r = link.transfer(100_000, 1.2, "up")  # the link is dead until t=4
    assert r.lost and r.timed_out and r.arrival is None
    # the sender gave up at 3.2; the next transfer starts from the horizon, after the outage
    nxt = link.transfer(100_000, 4.5, "up")
    assert nxt.arrival == pytest.approx(4.5 + 0.1 + 0.01) and nxt.wait_s == 0.0


def test_stop_mode_link_dies_at_the_end_of_the_trace():
    link = trace_link((0.0, 1.0), (8.0,), end="stop", timeout_s=None)
    assert link.transfer(500_000, 0.0, "up").arrival == pytest.approx(0.5)
    late = link.transfer(1_000_000, 0.6, "up")
    assert late.lost and late.timed_out


def test_controller_times_out_a_request_lost_in_an_outage(reach_task):
    class SendCost:  # 10 kB up, 1 kB down, no compute
        n_blocks = 1

        def plan(self, k: int) -> InferencePlan:
            return InferencePlan(k, (Stage("up", 0.0, 10_000), Stage("down", 0.0, 1_000)))

        def best_split(self, bandwidth_bps: float, rtt_s: float) -> int:
            return 0

        def edge_memory_bytes(self, k: int) -> float:
            return 0.0

    link = trace_link((0.0, 1.0, 4.0, 10.0), (8.0, 0.0, 8.0), rtt_s=0.02, timeout_s=2.0)
    c = PartitionedController(reach_task, CountingPolicy(), SendCost(), link, Clean())
    c.reset(7, RNG(1), RNG(2), RNG(3))
    events: list[str] = []
    while reach_task.sim_time < 4.3:
        t = reach_task.sim_time
        infer = abs(t - 0.5) < 1e-9 or abs(t - 1.5) < 1e-9 or abs(t - 4.2) < 1e-9
        events += c.step(Decision("infer") if infer else KEEP).info["events"]
    assert "timeout" in events and events.count("lost") == 1 and events.count("arrive") == 2
    m = c.episode_metrics()
    assert m["lost_requests"] == 1 and m["lost_transfers"] == 1 and m["retransmissions"] == 0
    assert m["bytes_up"] == 30_000 and m["bytes_down"] == 2_000  # the lost request sent no down
    tl = c.link_timeline
    assert [r["direction"] for r in tl] == ["up", "down", "up", "up", "down"]
    assert tl[2]["lost"] and tl[2]["timed_out"] and tl[2]["arrival"] is None
    assert tl[0]["arrival"] == pytest.approx(0.5 + 0.01 + 0.01)
    # the estimator saw the timeout as (at best) 80 kbit in 2 s, far below the 8 Mbit/s before
    assert c.estimator.bandwidth_bps < 8e6 / 2


# ---------------------------------------------------------------------- jitter and RTT samples
def test_jitter_is_non_negative_and_deliveries_stay_in_order():
    link = TraceLink(BandwidthTrace.constant(100e6), latency=Latency(0.04, 0.01))
    link.reset(RNG(3))
    out = [link.transfer(10_000, 0.001 * i, "down") for i in range(2000)]
    arrivals = np.array([r.arrival for r in out])
    floor = np.array([0.001 * i + 0.02 + 8e4 / 100e6 for i in range(2000)])
    assert np.all(arrivals >= floor - 1e-12)
    assert np.all(np.diff(arrivals) >= 0)
    assert link.mean_rtt_s == pytest.approx(0.06)


def test_empirical_rtt_draws_come_from_the_samples():
    samples = [0.03, 0.05, 0.2]
    link = TraceLink(BandwidthTrace.constant(1e9), latency=Latency.empirical(samples))
    link.reset(RNG(0))
    one_way = {round(link.transfer(0, 10.0 * i, "up").arrival - 10.0 * i, 9) for i in range(300)}
    assert one_way == {s / 2 for s in samples}
    assert link.mean_rtt_s == pytest.approx(np.mean(samples))


# ---------------------------------------------------------------------- TCP / UDP repair
def test_tcp_repairs_losses_late_udp_loses_the_transfer():
    loss = GilbertElliott.from_loss(0.02, 2.0)
    tcp = TraceLink(BandwidthTrace.constant(50e6), latency=Latency(0.04), loss=loss,
                    reliability="tcp", random_start=False)
    tcp.reset(RNG(2))
    res = [tcp.transfer(150_000, 1.0 * i, "up") for i in range(400)]  # 100 packets each
    clean = 0.02 + 8 * 150_000 / 50e6
    hit = [r for r in res if r.lost_packets]
    assert hit and all(r.retransmissions >= r.lost_packets - r.retransmissions for r in hit)
    assert all(r.arrival is not None for r in res)
    for r in res:
        assert r.arrival is not None
        if r.retransmissions:
            assert r.arrival - r.start >= clean + 0.04 - 1e-9  # at least one RTT of repair
        else:
            assert r.arrival - r.start == pytest.approx(clean)
    udp = TraceLink(BandwidthTrace.constant(50e6), latency=Latency(0.04), loss=loss,
                    reliability="udp", random_start=False)
    udp.reset(RNG(2))
    ures = [udp.transfer(150_000, 1.0 * i, "up") for i in range(400)]
    assert [r.lost for r in ures] == [r.lost_packets > 0 for r in ures]
    assert 0 < sum(r.lost for r in ures) < 400


def test_tcp_gives_up_a_transfer_that_keeps_losing():
    always = GilbertElliott(p=0.5, r=0.5, loss_good=1.0, loss_bad=1.0)
    link = TraceLink(BandwidthTrace.constant(1e6), loss=always, timeout_s=None)
    link.reset(RNG(0))
    r = link.transfer(10_000, 0.0, "up")  # 7 packets, every copy lost
    assert r.lost and not r.timed_out and r.retransmissions == 7 * 15


# ---------------------------------------------------------------------- bad arguments
def test_bad_link_arguments():
    tr = BandwidthTrace.constant(1e6)
    with pytest.raises(ValueError, match="reliability='sctp'; allowed: tcp, udp"):
        TraceLink(tr, reliability="sctp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="end='bounce'; allowed: loop, stop"):
        TraceLink(tr, end="bounce")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction='sideways'; allowed: up, down"):
        TraceLink(tr).transfer(1, 0.0, "sideways")  # type: ignore[arg-type]
