"""The paired comparison against a baseline agent: pairing by seed, the intervals, paired.csv."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from rapid_env.eval.paired import (
    PAIRED_COLUMNS,
    newcombe_paired_interval,
    paired_rows,
    resolve_baseline,
    write_paired,
)
from rapid_env.eval.summary import wilson_interval

BASE_SUCCESS = [True, True, False, False, True]
AGENT_SUCCESS = [True, False, True, True, True]  # pairs: both, only base, only agent x2, both
LATENCY_GAIN = [10.0, 20.0, 30.0, 40.0, 50.0]


def rec(agent: str, seed: int, success: bool, **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"task": "reach", "agent": agent, "noise": "clean", "link": "wifi",
                         "seed": seed, "success": success, "latency_ms_mean": 100.0,
                         "rms_jerk": 5.0, "offloads": 4, "sim_time_s": 2.0, "fault": None}
    r.update(extra)
    return r


def records() -> list[dict[str, Any]]:
    out = []
    for i, (b, a) in enumerate(zip(BASE_SUCCESS, AGENT_SUCCESS, strict=True)):
        out.append(rec("base", 1000 + i, b, offloads=2))
        out.append(rec("a", 1000 + i, a, latency_ms_mean=100.0 + LATENCY_GAIN[i],
                       rms_jerk=5.0 - 1.0, offloads=2 + i))
    # seed 1005: the agent's episode could not run, so the pair is dropped
    out.append(rec("base", 1005, True))
    out.append(rec("a", 1005, False, fault="episode_error: RuntimeError: no simulator",
                   latency_ms_mean=None))
    # seed 1006: the baseline has no record: the agent's episode has no partner
    out.append(rec("a", 1006, True))
    return out


def test_known_differences() -> None:
    (row,) = paired_rows(records(), "base")
    assert list(row) == list(PAIRED_COLUMNS)
    assert (row["agent"], row["baseline"], row["n_pairs"], row["unpaired"]) == ("a", "base", 5, 2)
    assert row["d_success"] == pytest.approx((2 - 1) / 5)  # two agent-only, one base-only
    assert (row["agent_success"], row["baseline_success"]) == (0.8, 0.6)
    assert (row["d_success_lo"], row["d_success_hi"]) == newcombe_paired_interval(2, 2, 1, 0)
    assert row["d_success_lo"] < row["d_success"] < row["d_success_hi"]
    assert row["d_latency_ms"] == pytest.approx(30.0)
    half = stats.t.ppf(0.975, 4) * math.sqrt(250.0) / math.sqrt(5)  # s of 10..50 is sqrt(250)
    assert row["d_latency_ms_ci95"] == pytest.approx(half)
    assert row["n_latency"] == 5
    assert row["d_jerk"] == pytest.approx(-1.0) and row["d_jerk_ci95"] == pytest.approx(0.0)
    assert row["d_offloads"] == pytest.approx(2.0)  # 0..4 more offloads per episode
    assert row["d_offload_rate"] == pytest.approx((20 - 10) / 10.0)  # per simulated second


def test_the_baseline_is_the_first_agent_by_default_and_can_be_swapped() -> None:
    first = paired_rows(records())
    assert [r["baseline"] for r in first] == ["base"]
    (swapped,) = paired_rows(records(), "a")
    assert swapped["agent"] == "base" and swapped["n_pairs"] == 5
    assert swapped["d_success"] == pytest.approx(-0.2)
    assert swapped["d_latency_ms"] == pytest.approx(-30.0)
    assert paired_rows(records(), agents=["a", "base"])[0]["baseline"] == "a"


def test_an_unknown_baseline_names_the_agents() -> None:
    with pytest.raises(ValueError, match=r"'nope' is not an agent of the sweep; its agents: "
                                         r"base, a$"):
        paired_rows(records(), "nope")
    with pytest.raises(ValueError, match="its agents: rapid, cloud-only"):
        resolve_baseline("edge-only", ["rapid", "cloud-only"])
    assert resolve_baseline(None, ["rapid", "cloud-only"]) == "rapid"


def test_agreeing_pairs_keep_an_honest_interval() -> None:
    # two pairs that both succeed: the mean difference is 0, but two seeds prove little
    low, high = newcombe_paired_interval(2, 0, 0, 0)
    wilson_low = wilson_interval(2, 2)[0]
    assert (low, high) == pytest.approx((-(1 - wilson_low), 1 - wilson_low))
    assert high > 0.6
    # more agreeing pairs: narrower, still around 0
    assert newcombe_paired_interval(20, 0, 0, 0)[1] < high


def test_all_discordant_pairs_stay_inside_minus_one_one() -> None:
    low, high = newcombe_paired_interval(0, 5, 0, 0)  # the agent wins every pair
    w_low, _ = wilson_interval(5, 5)
    _, w_high = wilson_interval(0, 5)
    # the marginals are degenerate (phi = 0): the Wilson errors add in quadrature
    assert low == pytest.approx(1 - math.hypot(1 - w_low, w_high))
    assert high == 1.0
    assert newcombe_paired_interval(0, 0, 5, 0) == pytest.approx((-1.0, -low))
    assert all(math.isnan(v) for v in newcombe_paired_interval(0, 0, 0, 0))


def test_positive_correlation_narrows_the_interval() -> None:
    # the same marginals (6/10 vs 4/10), once with concordant pairs and once without
    correlated = newcombe_paired_interval(4, 2, 0, 4)
    independent_like = newcombe_paired_interval(2, 4, 2, 2)
    assert correlated[1] - correlated[0] < independent_like[1] - independent_like[0]


def test_paired_csv(tmp_path: Path) -> None:
    returned = write_paired(records(), tmp_path, "base")
    path = tmp_path / "paired.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and len(returned) == 1 and returned[0]["agent"] == rows[0]["agent"]
    assert list(rows[0]) == list(PAIRED_COLUMNS)
    assert float(rows[0]["d_success"]) == pytest.approx(0.2)
    one_agent = [r for r in records() if r["agent"] == "base"]
    assert write_paired(one_agent, tmp_path) == []
    header_only = path.read_text()
    assert header_only == ",".join(PAIRED_COLUMNS) + "\n"


def test_cells_are_paired_separately() -> None:
    both = records() + [{**r, "noise": "gaussian_noise:3", "success": not r["success"]}
                        for r in records()]
    rows = paired_rows(both, "base")
    assert [(r["noise"], r["n_pairs"]) for r in rows] == [("clean", 5), ("gaussian_noise:3", 5)]
    assert rows[1]["d_success"] == pytest.approx(-rows[0]["d_success"])
