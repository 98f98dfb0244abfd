"""Closed-form checks of the link model (constant, trace, loss, outages), presets and estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rapid_env.controller import PartitionedController
from rapid_env.cost.model import InferencePlan, Stage
from rapid_env.decision import KEEP, Decision
from rapid_env.link import (
    LINK_FORMS,
    PRESETS,
    ConstantLink,
    IdealLink,
    Latency,
    LinkEstimator,
    TraceLink,
    TransferResult,
    parse_link,
)
from rapid_env.loss import GilbertElliott, GilbertElliottChannel
from rapid_env.noise import Clean
from rapid_env.traces import TRACE_DIR, BandwidthTrace
from tests.conftest import CountingPolicy

RNG = np.random.default_rng


def trace_link(times, rates_mbps, rtt_s=0.0, timeout_s=None, **kw) -> TraceLink:
    tr = BandwidthTrace(tuple(times), tuple(r * 1e6 for r in rates_mbps))
    link = TraceLink(tr, latency=Latency(rtt_s), random_start=False, timeout_s=timeout_s, **kw)
    link.reset(RNG(0))
    return link


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


# ---------------------------------------------------------------------- Gilbert-Elliott loss
def _bursts(lost: np.ndarray) -> np.ndarray:
    padded = np.concatenate(([0], lost.astype(np.int8), [0]))
    edges = np.diff(padded)
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def test_gilbert_loss_rate_and_mean_burst_match_parameters():
    model = GilbertElliott.from_loss(0.05, 4.0)
    assert model.loss_rate == pytest.approx(0.05) and model.mean_bad_run == pytest.approx(4.0)
    ch = GilbertElliottChannel(model, RNG(11))
    n = 1_000_000
    # in uneven pieces, as transfers would ask for them: state must carry across calls
    sizes = RNG(1).integers(1, 3000, 2000)
    sizes = sizes[np.cumsum(sizes) <= n]
    lost = np.concatenate([ch.sample(int(k)) for k in sizes])
    n = lost.size
    # loss rate: variance of a two-state chain's occupancy, inflated by its correlation
    pb, lam = model.stationary_bad, 1.0 - model.p - model.r
    sd_rate = math.sqrt(pb * (1 - pb) * (1 + lam) / (1 - lam) / n)
    assert abs(lost.mean() - 0.05) < 5 * sd_rate
    bursts = _bursts(lost)
    sd_burst = math.sqrt((1 - model.r) / model.r**2 / bursts.size)  # geometric burst lengths
    assert abs(bursts.mean() - 4.0) < 5 * sd_burst


def test_general_gilbert_elliott_loss_rate():
    model = GilbertElliott(p=0.02, r=0.2, loss_good=0.01, loss_bad=0.5)
    ch = GilbertElliottChannel(model, RNG(5))
    n = 400_000
    counted = sum(ch.count(1000) for _ in range(n // 1000))
    assert counted / n == pytest.approx(model.loss_rate, rel=0.1)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"p": 1.5, "r": 0.1}, "p must be in"),
        ({"p": 0.1, "r": 0.0}, "r must be > 0 when p > 0"),
        ({"p": 0.1, "r": 0.5, "loss_bad": -0.1}, "loss_bad must be in"),
    ],
)
def test_bad_gilbert_parameters(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        GilbertElliott(**kwargs)


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


# ---------------------------------------------------------------------- determinism
def _run(link, seed: int) -> list[float | None]:
    link.reset(RNG(seed))
    out = []
    t = 0.0
    for i in range(200):
        up = link.transfer(30_000 + 1000 * (i % 7), t, "up")
        out.append(up.arrival)
        out.append(link.transfer(800, (up.arrival or t) + 0.01, "down").arrival)
        t += 0.05
    return out


@pytest.mark.parametrize("spec", [s for s in LINK_FORMS if "<" not in s])
def test_every_preset_builds_and_same_seed_gives_identical_arrivals(spec):
    link = parse_link(spec)
    assert link.name == spec
    assert _run(link, 3) == _run(parse_link(spec), 3)
    assert link.mean_rtt_s >= 0 and link.mean_bandwidth_bps > 0
    if spec not in ("ideal",):
        assert _run(link, 3) != _run(link, 4)  # offset / jitter / loss really come from the seed


def test_presets_have_documented_sources_and_nominal_means():
    assert set(PRESETS) == {"wifi", "5g-driving", "5g-walking", "4g", "3g-train", "3g-bus",
                            "broadband-slow", "puffer"}
    for p in PRESETS.values():
        assert p.description and p.source and p.licence
    drive = parse_link("5g-driving")
    assert isinstance(drive, TraceLink)
    assert drive.mean_bandwidth_down_bps == pytest.approx(274.9e6, rel=1e-3)
    assert drive.mean_bandwidth_bps == pytest.approx(27.49e6, rel=1e-3)  # uplink = 0.1 x down
    assert drive.mean_rtt_s == pytest.approx(0.0624, abs=5e-4)


def test_trace_spec_with_path_and_scale(tmp_path):
    p = tmp_path / "my.tsv"
    p.write_text("0 1\n2 3\n4 1\n")
    link = parse_link(f"trace:{p}")
    assert link.mean_bandwidth_bps == pytest.approx(2e6)
    scaled = parse_link(f"trace:{p}:2.5")
    assert scaled.mean_bandwidth_bps == pytest.approx(5e6) and scaled.name == f"trace:{p}:2.5"
    bundled = parse_link(f"trace:{TRACE_DIR / 'hsdpa3g_bus_1.tsv'}")
    assert bundled.mean_bandwidth_bps > 0
    assert link.mean_rtt_s == pytest.approx(0.04)  # the default base RTT
    far = parse_link(f"trace:{p}:2.5:120")
    assert far.mean_bandwidth_bps == pytest.approx(5e6) and far.mean_rtt_s == pytest.approx(0.12)
    far.reset(np.random.default_rng(0))
    small = far.transfer(1, 0.0, "up")  # one byte: arrival is half the RTT after sending
    assert small.arrival == pytest.approx(0.06, abs=1e-5)
    odd_dir = tmp_path / "a:b"
    odd_dir.mkdir()
    (odd_dir / "t.tsv").write_text("0 1\n2 3\n4 1\n")
    assert parse_link(f"trace:{odd_dir / 't.tsv'}:2").mean_bandwidth_bps == pytest.approx(4e6)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("dialup", "unknown link 'dialup'; allowed: ideal, constant:<Mbps>:<rtt_ms>, wifi, "
                   "5g-driving, 5g-walking, 4g, 3g-train, 3g-bus, broadband-slow, puffer, "
                   r"trace:<path>\[:scale\[:rtt_ms\]\]"),
        ("constant:abc:10", "malformed link 'constant:abc:10'"),
        ("constant:10", "malformed link 'constant:10'"),
        ("constant:-1:10", "Mbps must be > 0"),
        ("trace:/nonexistent/x.tsv", r"link 'trace:/nonexistent/x.tsv': trace file .* not exist"),
        ("trace:/nonexistent/x.tsv:0", "scale must be a finite number > 0"),
        ("trace:/nonexistent/x.tsv:1:-5", "rtt_ms must be a finite number >= 0"),
    ],
)
def test_bad_specs(spec, needle):
    with pytest.raises(ValueError, match=needle):
        parse_link(spec)


def test_bad_link_arguments():
    tr = BandwidthTrace.constant(1e6)
    with pytest.raises(ValueError, match="reliability='sctp'; allowed: tcp, udp"):
        TraceLink(tr, reliability="sctp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="end='bounce'; allowed: loop, stop"):
        TraceLink(tr, end="bounce")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction='sideways'; allowed: up, down"):
        TraceLink(tr).transfer(1, 0.0, "sideways")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- estimator
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


def test_tcp_gives_up_a_transfer_that_keeps_losing():
    always = GilbertElliott(p=0.5, r=0.5, loss_good=1.0, loss_bad=1.0)
    link = TraceLink(BandwidthTrace.constant(1e6), loss=always, timeout_s=None)
    link.reset(RNG(0))
    r = link.transfer(10_000, 0.0, "up")  # 7 packets, every copy lost
    assert r.lost and not r.timed_out and r.retransmissions == 7 * 15
