"""Trace loaders (TSV, mahimahi, 5Gophers, RTT logs), their validation, and the rate model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rapid_env.link.traces import (
    MTU_BYTES,
    TRACE_DIR,
    BandwidthTrace,
    bundled,
    load_5gophers,
    load_mahimahi,
    load_rtt_samples,
    load_trace,
    load_tsv,
    sniff_format,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_tsv_rate_covers_the_interval_ending_at_its_row(tmp_path):
    p = write(tmp_path, "t.tsv", "0.0 9.0\n1.0 2.0\n3.0 4.0\n")
    tr = load_tsv(p)
    # the row at t=0 measured nothing; 2 Mbps over (0, 1], 4 Mbps over (1, 3]
    assert tr.times_s == (0.0, 1.0, 3.0)
    assert tr.rates_bps == (2e6, 4e6)
    assert tr.duration_s == 3.0
    assert tr.mean_bps == pytest.approx((2e6 + 8e6) / 3)
    assert tr.rate_at(0.5) == 2e6 and tr.rate_at(1.5) == 4e6 and tr.rate_at(3.5) == 2e6


def test_tsv_first_row_after_zero_covers_from_zero(tmp_path):
    tr = load_tsv(write(tmp_path, "t.tsv", "0.5 8\n1.5 4\n"))
    assert tr.times_s == (0.0, 0.5, 1.5) and tr.rates_bps == (8e6, 4e6)


def test_mahimahi_packets_per_millisecond_and_gaps_are_outages(tmp_path):
    # two packets in ms 1, none in ms 2, one in ms 3 -> period 3 ms
    tr = load_mahimahi(write(tmp_path, "m.down", "1\n1\n3\n"))
    assert tr.duration_s == pytest.approx(0.003)
    per_ms = 1500 * 8 * 1000.0
    assert tr.rate_at(0.0005) == pytest.approx(2 * per_ms)
    assert tr.rate_at(0.0015) == 0.0
    assert tr.rate_at(0.0025) == pytest.approx(per_ms)
    assert tr.bits_per_period == pytest.approx(3 * 1500 * 8)
    assert sniff_format(tmp_path / "m.down") == "mahimahi"


def test_5gophers_car_trace_needs_a_carrier():
    path = bundled("5gophers/car-driving-trace-1.csv")
    with pytest.raises(ValueError, match="carrier=None; allowed: Sprint, TMobile, Verizon"):
        load_5gophers(path)
    tr = load_5gophers(path, carrier="Verizon")
    assert tr.duration_s == 120.0  # 120 rows, gaps in seq_num closed up
    assert tr.mean_bps == pytest.approx(274.9e6, rel=1e-3)
    assert min(tr.rates_bps) == 0.0  # outages are kept


def test_5gophers_walking_radio_filter():
    path = bundled("5gophers/walking-trace.csv")
    assert load_5gophers(path).duration_s == 603.0
    lte = load_5gophers(path, radio="4G")
    assert lte.duration_s == 315.0
    assert lte.mean_bps == pytest.approx(159.2e6, rel=1e-3)
    with pytest.raises(ValueError, match="no rows with radio_type='3G'; present: 4G, 5G"):
        load_5gophers(path, radio="3G")


def test_rtt_samples_with_filters():
    rtt = load_rtt_samples(
        bundled("5gophers/round-trip-times.csv"), carrier="VERIZON", server_location="US-East"
    )
    assert len(rtt) == 120 and rtt.mean() == pytest.approx(0.0624, abs=5e-4)
    ping = load_rtt_samples(bundled("5gophers/ping-trace-02.log"), network_type="4G")
    assert len(ping) == 60 and 0.049 < ping.min() and ping.max() < 0.070
    with pytest.raises(ValueError, match="filter column 'nope'; allowed: rtt_ms"):
        load_rtt_samples(bundled("5gophers/round-trip-times.csv"), nope="x")
    with pytest.raises(ValueError, match="is an RTT log, not a bandwidth trace"):
        load_trace(bundled("5gophers/ping-trace-02.log"))


@pytest.mark.parametrize(
    "name", ["hsdpa3g_train_1.tsv", "hsdpa3g_bus_1.tsv", "fcc_broadband_3.tsv", "puffer_1.tsv"]
)
def test_bundled_tsv_traces_match_their_files(name):
    raw = np.loadtxt(TRACE_DIR / name)
    tr = load_trace(bundled(name))
    assert tr.duration_s == pytest.approx(raw[-1, 0])
    # time-weighted mean straight from the rows (interval ending at each row)
    expect = float(np.sum(np.diff(raw[:, 0]) * raw[1:, 1])) / raw[-1, 0] * 1e6
    assert tr.mean_bps == pytest.approx(expect)


def test_bundled_traces_have_attribution():
    text = (TRACE_DIR / "ATTRIBUTION.md").read_text()
    for f in TRACE_DIR.rglob("*"):
        if f.is_file() and f.name not in ("ATTRIBUTION.md", "LICENSE", "README.md"):
            assert f.name in text, f"{f.name} has no attribution entry"
    assert (TRACE_DIR / "5gophers" / "LICENSE").read_text().startswith("5Gophers 1.0")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty trace"),
        ("# only a comment\n", "empty trace"),
        ("0 1\n1 abc\n", r"t\.tsv: line 2: throughput is not a number"),
        ("0 1\nx 2\n", r"t\.tsv: line 2: time is not a number"),
        ("0 1\n2 1\n1 1\n", r"t\.tsv: line 3: time is not after the previous row's \(line 2\)"),
        ("0 1\n1 1\n1 1\n", r"t\.tsv: line 3: time is not after"),
        ("0 1\n1 -2\n", r"t\.tsv: line 2: bandwidth is negative"),
        ("0 1\n1 2 3\n", r"t\.tsv: line 2: expected 2 columns"),
        ("0 1\n1 0\n2 0\n", "bandwidth is zero throughout"),
        ("0 5\n", "no interval of positive length"),
        ("0 1\n1 nan\n", r"t\.tsv: line 2: throughput is not finite"),
        ("0 1\n" + "9" * 38 + " 1\n", r"t\.tsv: line 2: time out of range; allowed: at most 1e"),
        ("0 1\n1 1e400\n", r"t\.tsv: line 2: throughput is not finite"),
    ],
)
def test_bad_tsv_names_file_and_line(tmp_path, text, needle):
    p = write(tmp_path, "t.tsv", text)
    with pytest.raises(ValueError, match=needle):
        load_tsv(p)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("5\n3\n", r"m\.up: line 2: timestamp is before the previous line's"),
        ("1\n2.5\n", r"m\.up: line 2: timestamp is not an integer"),
        ("-1\n", r"m\.up: line 1: timestamp is negative"),
        ("9" * 38 + "\n", r"m\.up: line 1: timestamp out of range; allowed: at most 1e\+15 ms"),
        ("1\n" + "9" * 5000 + "\n", r"m\.up: line 2: timestamp is not an integer"),
        ("\n", "empty trace"),
    ],
)
def test_bad_mahimahi_names_file_and_line(tmp_path, text, needle):
    with pytest.raises(ValueError, match=needle):
        load_mahimahi(write(tmp_path, "m.up", text))


def test_bad_5gophers_names_file_and_line(tmp_path):
    head = "protocol,num_tcp_conn,seq_num,radio_type,throughput_mbps\n"
    p = write(tmp_path, "g.csv", head + "TCP,8,1,4G,10\nTCP,8,2,4G,-1\n")
    with pytest.raises(ValueError, match=r"g\.csv: line 3: bandwidth is negative"):
        load_5gophers(p)
    p = write(tmp_path, "g.csv", head + "TCP,8,2,4G,10\nTCP,8,1,4G,1\n")
    with pytest.raises(ValueError, match=r"g\.csv: line 3: seq_num is not after the previous"):
        load_5gophers(p)
    p = write(tmp_path, "g.csv", head + "TCP,8,1,4G,fast\n")
    with pytest.raises(ValueError, match=r"g\.csv: line 2: throughput_mbps is not a number"):
        load_5gophers(p)
    with pytest.raises(ValueError, match="empty trace"):
        load_5gophers(write(tmp_path, "g.csv", head))


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.tsv"
    for loader in (load_tsv, load_mahimahi, load_trace):
        with pytest.raises(ValueError, match=r"nope\.tsv' does not exist"):
            loader(missing)


def test_finish_time_inverts_the_cumulative_curve():
    rng = np.random.default_rng(0)
    times = np.concatenate(([0.0], np.cumsum(rng.uniform(0.1, 2.0, 40))))
    rates = rng.uniform(0, 5e6, 40)
    rates[rng.integers(0, 40, 8)] = 0.0  # outages
    tr = BandwidthTrace(tuple(times), tuple(rates))
    for _ in range(300):
        tau = float(rng.uniform(0, 3 * tr.duration_s))
        bits = float(rng.uniform(1, 3 * tr.bits_per_period))
        end = tr.finish_time(tau, bits)
        assert end >= tau
        assert tr.bits_until(end) - tr.bits_until(tau) == pytest.approx(bits, rel=1e-9)
        # earliest: a moment before, the bits were not all out yet
        assert tr.bits_until(end - 1e-6) - tr.bits_until(tau) < bits


def test_finish_time_without_looping_never_finishes_past_the_end():
    tr = BandwidthTrace((0.0, 1.0), (8e6,))
    assert tr.finish_time(0.5, 4e6, loop=False) == pytest.approx(1.0)
    assert math.isinf(tr.finish_time(0.5, 4e6 + 1, loop=False))


def test_scaled_and_invalid_traces():
    tr = BandwidthTrace((0.0, 1.0, 2.0), (1e6, 3e6), "x")
    assert tr.scaled(2.0).mean_bps == pytest.approx(4e6)
    with pytest.raises(ValueError, match="scale must be a finite number > 0, got -1"):
        tr.scaled(-1.0)
    with pytest.raises(ValueError, match="strictly increase"):
        BandwidthTrace((0.0, 1.0, 1.0), (1e6, 1e6))
    with pytest.raises(ValueError, match="rates must be finite and >= 0"):
        BandwidthTrace((0.0, 1.0), (-1.0,))
    with pytest.raises(ValueError, match="no bundled trace 'nope.tsv'; allowed: "):
        bundled("nope.tsv")


def _dense_mahimahi(stamps: list[int]) -> tuple[list[float], list[float]]:
    """The straightforward per-millisecond construction, as a reference for small traces."""
    period = max(stamps[-1], 1)
    bins = np.bincount(np.maximum(np.asarray(stamps) - 1, 0), minlength=period)[:period]
    rates = bins.astype(float) * MTU_BYTES * 8 * 1000.0
    starts = np.concatenate(([0], np.flatnonzero(np.diff(rates)) + 1))
    return (np.concatenate((starts, [period])) / 1000.0).tolist(), rates[starts].tolist()


@pytest.mark.parametrize("seed", range(20))
def test_sparse_mahimahi_equals_the_dense_construction(tmp_path, seed):
    rng = np.random.default_rng(seed)
    stamps = sorted(int(x) for x in rng.integers(0, 60, size=int(rng.integers(1, 40))))
    path = tmp_path / "t.mahi"
    path.write_text("\n".join(map(str, stamps)) + "\n")
    trace = load_mahimahi(path)
    bounds, rates = _dense_mahimahi(stamps)
    assert list(trace.times_s) == pytest.approx(bounds) and list(trace.rates_bps) == rates


def test_a_huge_timestamp_costs_no_memory(tmp_path):
    path = tmp_path / "far.mahi"
    path.write_text("10000000000000\n")
    trace = load_mahimahi(path)  # one packet after 317 years: two segments, not 10^13 bins
    assert len(trace.rates_bps) == 2 and trace.times_s[-1] == 1e10
