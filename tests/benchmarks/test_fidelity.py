"""The pure logic of benchmarks/fidelity.py: bucket sizing, cases, the model's side, the table.

The benchmark itself needs a network namespace, ``tc`` and ``iptables`` and runs for minutes; it is
run by hand (docs/fidelity.md). These tests cover what it computes, not how long anything takes.
"""

from __future__ import annotations

import importlib
import math
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def fb(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    """The benchmark's modules, imported as the script does (its folder on ``sys.path``)."""
    monkeypatch.syspath_prepend(str(BENCH))
    names = ("shaper", "model", "delay_line", "run", "bench")
    mods = {n: importlib.import_module(f"fidelity_bench.{n}") for n in names}
    mods["script"] = importlib.import_module("fidelity")
    yield mods
    for name in [m for m in sys.modules if m == "fidelity" or m.startswith("fidelity_bench")]:
        del sys.modules[name]


def test_bucket_lasts_two_ms_of_the_rate_in_whole_frames(fb: dict[str, ModuleType]) -> None:
    sh = fb["shaper"]
    for rate in (20e6, 300e6, 1e9):
        burst = sh.bucket_bytes(rate)
        assert burst % sh.FRAME == 0
        assert rate / 8 * 0.002 <= burst < rate / 8 * 0.002 + sh.FRAME
    # from 300 Mbit/s a whole 64 KB GSO packet fits (tbf would cut it into frames otherwise)
    assert sh.bucket_bytes(300e6 * sh.GOODPUT_FACTOR) > 65536
    # below about 6 Mbit/s one frame lasts longer than 2 ms: the least bucket, one frame
    assert sh.bucket_bytes(5e6) == sh.BURST_BYTES == 1600
    assert sh.bucket_bytes(1e9, 0.004) > sh.bucket_bytes(1e9, 0.002)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_bucket_rejects_a_bad_rate(fb: dict[str, ModuleType], bad: float) -> None:
    with pytest.raises(ValueError, match="tbf rate"):
        fb["shaper"].bucket_bytes(bad)


def test_queue_limit_never_below_32_mib_and_grows_with_the_rate(
    fb: dict[str, ModuleType],
) -> None:
    sh = fb["shaper"]
    assert sh.limit_bytes(20e6, 1600) == 32 << 20
    big = sh.limit_bytes(10e9, sh.bucket_bytes(10e9))
    assert big > 32 << 20 and big >= 10e9 / 8 * sh.LIMIT_S


def test_default_cases_cover_the_papers_regime_and_all_build(fb: dict[str, ModuleType]) -> None:
    cases = fb["script"].DEFAULT_CASES.split(",")
    for case in ("constant:20:40", "constant:5:80", "5g-driving", "constant:300:10",
                 "constant:1000:2", "lab-wifi6"):
        assert case in cases
    for case in cases:
        fb["model"].build_link(case)
    assert set(fb["script"].DEFAULT_LOOP_CASES.split(",")) <= set(cases)


def test_jitter_case_is_lab_wifi6_without_loss(fb: dict[str, ModuleType]) -> None:
    model = fb["model"]
    link = model.build_link("jitter:300:8:1")
    wifi6 = model.build_link("lab-wifi6")
    assert link.latency == wifi6.latency
    assert link.mean_bandwidth_bps == wifi6.mean_bandwidth_bps
    assert link.loss is None and wifi6.loss is not None
    assert model.loss_params("jitter:300:8:1") is None
    p, r, good, bad = model.loss_params("lab-wifi6")
    assert math.isclose(p / (p + r), 0.002, rel_tol=1e-9) and 1 / r == 2.0


@pytest.mark.parametrize("bad", ["jitter:300:8", "jitter:a:8:1", "jitter:0:8:1",
                                 "jitter:300:-1:1"])
def test_jitter_case_rejects_bad_values(fb: dict[str, ModuleType], bad: str) -> None:
    with pytest.raises(ValueError, match="jitter:"):
        fb["model"].build_link(bad)


def test_model_run_is_the_link_arithmetic_on_a_constant_link(fb: dict[str, ModuleType]) -> None:
    model = fb["model"]
    steps = model.round_trips([2_260_992, 8192], 160)
    total, delays = model.model_run("constant:300:10", steps, 1.0, 0, 0.0)
    expect = sum(8 * n / 300e6 + 0.005 for _, n in steps)
    assert total == pytest.approx(expect, rel=1e-12)
    assert delays == [0.005] * 4
    assert model.model_delays("constant:300:10", steps, 0, 0.0) == [(0.005, 0.005)] * 2


def test_model_run_reads_the_links_own_jitter_draws(fb: dict[str, ModuleType]) -> None:
    model = fb["model"]
    steps = model.round_trips([50_000, 8192, 8192], 160)
    for spec in ("jitter:300:8:1", "lab-wifi6"):
        total, delays = model.model_run(spec, steps, 0.5, 7, 0.0)
        # the same transfers on a fresh link, by hand: the wrapper changed nothing
        link = model.fresh_link(spec, 7, 0.0)
        now = 0.5
        for kind, n in steps:
            now = link.transfer(n, now, kind).arrival
        assert total == pytest.approx(now - 0.5, abs=1e-12)
        assert len(delays) == len(steps) and len(set(delays)) == len(delays)  # jittered
        assert all(d >= 0.004 for d in delays)  # base RTT / 2 plus one-sided jitter
        assert model.model_run(spec, steps, 0.5, 7, 0.0) == (total, delays)  # deterministic


def test_loop_rows_follow_the_cost_models_plan(fb: dict[str, ModuleType]) -> None:
    ups = fb["run"].loop_ups(5)
    assert len(ups) == 7 and ups[0] == fb["run"].large_nbytes()
    with pytest.raises(ValueError, match="--loop-split 3"):
        fb["run"].loop_ups(3)


def _packet(payload: int, ihl: int = 5, doff: int = 8) -> bytes:
    total = ihl * 4 + doff * 4 + payload
    ip = bytes([0x40 | ihl, 0]) + struct.pack("!H", total & 0xFFFF) + bytes(ihl * 4 - 4)
    tcp = bytes(12) + bytes([doff << 4]) + bytes(doff * 4 - 13)
    return (ip + tcp)[:60]


def test_segments_of_a_packet_from_its_headers(fb: dict[str, ModuleType]) -> None:
    seg = fb["delay_line"].segments
    assert seg(_packet(0)) == 0  # a pure ACK is not subject to loss
    assert seg(_packet(160)) == 1
    assert seg(_packet(1448)) == 1 and seg(_packet(1449)) == 2
    assert seg(_packet(45 * 1448)) == 45  # a GSO packet counts as its segments
    assert seg(b"") == 0 and seg(bytes([0x60]) + bytes(59)) == 0  # short, or not IPv4


def test_net_error_subtracts_the_stacks_fixed_cost_per_round_trip(
    fb: dict[str, ModuleType],
) -> None:
    run, bench = fb["run"], fb["bench"]

    def row(case: str, payload: str, path: str, measured: float, rpcs: int = 1) -> object:
        return bench.Row(case, payload, path, 1, [bench.Sample(measured, 0.0)], None, rpcs=rpcs)

    rows = [row("loopback", "image", "infer", 0.003), row("loopback", "image", "check", 0.002),
            row("loopback", "large", "echo", 0.020)]
    base = run.stack_baselines(rows)
    assert base == {"infer": 0.003, "check": 0.002, "echo": 0.002, "loop": 0.002}
    assert run.net_error(0.150, 0.130, 7 * base["loop"]) == pytest.approx(0.006 / 0.130)
    assert np.isnan(run.median([]))


def test_an_outage_gets_the_least_rate_and_bucket(fb: dict[str, ModuleType]) -> None:
    # a trace's zero-rate seconds: tbf needs a positive rate, and the bucket follows the clamp
    line = fb["shaper"]._tbf(10, 0.0)
    assert "rate 8000bit burst 1600 limit 33554432" in line


def test_a_bad_case_is_refused_before_anything_starts(
    fb: dict[str, ModuleType], capsys: pytest.CaptureFixture[str],
) -> None:
    assert fb["script"].main(["--cases", "constant:300:10,bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fidelity: --cases: unknown link 'bogus'") and "jitter:" in err
    assert len(err.splitlines()) == 1
