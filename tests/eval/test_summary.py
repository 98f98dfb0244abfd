from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from rapid_env.eval.summary import (
    CELL_KEYS,
    EPISODE_FIELDS,
    dedupe,
    summarize,
    t_half_width,
    wilson_interval,
    write_summary,
)
from rapid_env.eval.table import DEFAULT_COLUMNS, format_table


def record(seed: int, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "task": "reach",
        "agent": "rapid",
        "noise": "none",
        "link": "wifi",
        "seed": seed,
        "policy": "chunk-regress",
        "profile": "openvla-7b",
        "edge": "jetson-agx-orin",
        "cloud": "a100",
        "split": 0,
        "success": seed % 2 == 0,
        "steps": 100 + seed,
        "sim_time_s": 5.0 + seed / 10,
        "inferences": 10,
        "offloads": seed,
        "latency_ms_mean": 40.0 + seed,
        "latency_ms_p95": 60.0 + seed,
        "edge_ms_mean": 0.0,
        "uplink_ms_mean": 20.0,
        "cloud_ms_mean": 10.0,
        "downlink_ms_mean": 20.0 + seed,
        "edge_memory_gb": 0.0,
        "bytes_up": 1000 * seed,
        "bytes_down": 200,
        "time_to_success_s": 2.0 + seed / 10 if seed % 2 == 0 else None,
        "stall_steps": 0,
        "rms_jerk": 1.5,
        "ldlj": -6.0 - seed / 10,
        "sparc": -1.5,
        "decision_model_ms": 0.0,
        "decision_overhead_pct": 0.01,
        "wall_time_s": 0.1 * seed,
        "fault": None,
    }
    # the schema's other fields, as null: they play no part in these tests
    base.update({k: None for k in EPISODE_FIELDS if k not in base})
    base.update(overrides)
    return base


def test_record_helper_carries_the_contract_fields() -> None:
    assert set(EPISODE_FIELDS) <= set(record(0))
    assert CELL_KEYS == ("task", "agent", "noise", "link")


def test_one_row_per_cell_in_first_seen_order() -> None:
    recs = [
        record(0, agent="edge"),
        record(0),
        record(1, agent="edge"),
        record(0, link="5g"),
        record(1),
    ]
    rows = summarize(recs)
    assert [(r["agent"], r["link"]) for r in rows] == [
        ("edge", "wifi"),
        ("rapid", "wifi"),
        ("rapid", "5g"),
    ]
    assert [r["episodes"] for r in rows] == [2, 2, 1]


def test_means_and_t_interval_match_scipy() -> None:
    recs = [record(s) for s in range(6)]
    (row,) = summarize(recs)
    values = np.array([40.0 + s for s in range(6)])
    assert row["latency_ms_mean"] == pytest.approx(values.mean())
    low, high = stats.t.interval(0.95, 5, loc=values.mean(), scale=stats.sem(values))
    assert row["latency_ms_mean_ci95"] == pytest.approx((high - low) / 2)
    assert row["latency_ms_mean_nan"] == 0
    assert row["stall_steps_ci95"] == 0.0  # constant metric: zero width, not nan


def test_success_rate_and_wilson_interval() -> None:
    recs = [record(s) for s in range(10)]  # seeds 0, 2, 4, 6, 8 succeed
    (row,) = summarize(recs)
    assert row["successes"] == 5
    assert row["success_rate"] == 0.5
    # Wilson 95 % for 5/10, textbook value (e.g. Newcombe 1998): 0.2366 .. 0.7634.
    assert row["success_ci_low"] == pytest.approx(0.2366, abs=1e-4)
    assert row["success_ci_high"] == pytest.approx(0.7634, abs=1e-4)


def test_wilson_edges() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0.25 < high < 0.35
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and 0.65 < low < 0.75
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_nan_values_are_ignored_and_counted() -> None:
    recs = [
        record(0, sparc=float("nan"), latency_ms_mean=None),
        record(1, sparc=-2.0),
        record(2, sparc=-4.0, latency_ms_mean=float("inf")),
    ]
    (row,) = summarize(recs)
    assert row["sparc"] == pytest.approx(-3.0)
    assert row["sparc_nan"] == 1
    assert row["latency_ms_mean"] == pytest.approx(41.0)
    assert row["latency_ms_mean_nan"] == 2
    assert math.isnan(row["latency_ms_mean_ci95"])  # one finite value: no interval


def test_all_nan_metric_gives_nan_mean() -> None:
    (row,) = summarize([record(0, ldlj=float("nan"))])
    assert math.isnan(row["ldlj"]) and row["ldlj_nan"] == 1


def test_faults_seeds_and_extra_fields() -> None:
    recs = [
        record(0, fault="NaN action from model"),
        record(1, extra_metric=3.0),
        record(2),
    ]
    (row,) = summarize(recs)
    assert row["faults"] == 1
    assert row["seeds"] == 3 and row["episodes"] == 3
    assert row["extra_metric"] == 3.0 and row["extra_metric_nan"] == 2
    assert "seed" not in row and "fault_nan" not in row


def test_one_episode_is_never_counted_twice() -> None:
    recs = [record(0), record(1), record(1)]
    with pytest.raises(ValueError, match=r"records 1 and 2 are the same episode .*seed 1"):
        summarize(recs)
    unique, dropped = dedupe(recs)
    assert dropped == 1 and summarize(unique)[0]["episodes"] == 2
    keyed = [{**record(1), "episode_key": "a"}, {**record(1), "episode_key": "b"}]
    assert dedupe(keyed)[1] == 0  # the key, when present, is what identifies an episode


def test_result_does_not_depend_on_record_order() -> None:
    recs = [record(s, latency_ms_mean=40.0 + s * 0.1) for s in range(20)]
    shuffled = recs[:]
    random.Random(3).shuffle(shuffled)
    assert json.dumps(summarize(recs)) == json.dumps(summarize(shuffled))


def test_bad_records_fail_and_name_the_problem() -> None:
    bad = record(0)
    del bad["link"]
    with pytest.raises(ValueError, match="link"):
        summarize([bad])
    with pytest.raises(ValueError, match="success"):
        summarize([record(0, success="yes")])


def test_numpy_scalars_are_accepted() -> None:
    (row,) = summarize([record(0, success=np.bool_(True), steps=np.int64(7), ldlj=np.float32(-5))])
    assert row["success_rate"] == 1.0 and row["steps"] == 7.0 and row["ldlj"] == -5.0


def test_empty_input() -> None:
    assert summarize([]) == []


def test_t_half_width_small_samples() -> None:
    assert math.isnan(t_half_width([]))
    assert math.isnan(t_half_width([1.0]))
    assert t_half_width([1.0, 3.0]) == pytest.approx(stats.t.ppf(0.975, 1) * 1.0)


def test_write_summary_json_and_csv(tmp_path: Path) -> None:
    rows = summarize([record(0), record(1), record(0, agent="edge", sparc=float("nan"))])
    rows[0]["only_here"] = "x"  # a key not every row has still gets a column
    json_path, csv_path = write_summary(rows, tmp_path / "out")
    assert json_path == tmp_path / "out" / "summary.json"
    text = json_path.read_text()
    assert "NaN" not in text  # strict JSON
    loaded = json.loads(text)
    assert len(loaded) == 2 and loaded[1]["sparc"] is None
    assert loaded[0]["task"] == "reach"

    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        csv_rows = list(reader)
    assert header is not None
    assert header[:4] == list(CELL_KEYS)
    assert "only_here" in header
    assert csv_rows[1]["only_here"] == "" and csv_rows[1]["sparc"] == ""
    assert float(csv_rows[0]["success_rate"]) == pytest.approx(0.5)
    assert not list(tmp_path.glob("out/.*.tmp"))


def test_write_summary_is_deterministic(tmp_path: Path) -> None:
    recs = [record(s) for s in range(5)]
    write_summary(summarize(recs), tmp_path / "a")
    write_summary(summarize(list(reversed(recs))), tmp_path / "b")
    for name in ("summary.json", "summary.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_format_table_default_columns() -> None:
    rows = summarize([record(0), record(1), record(0, agent="cloud-only", rms_jerk=float("nan"))])
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == list(DEFAULT_COLUMNS)
    assert set(lines[1]) <= {"-", " "}
    assert len(lines) == 2 + len(rows)
    assert "cloud-only" in lines[3] and lines[3].split()[-3] == "-"  # nan jerk
    # fixed width: every data line lines up with the header's column starts
    start = lines[0].index("agent")
    assert all(line[start:].startswith(("rapid", "cloud-only")) for line in lines[2:])


def test_format_table_custom_columns_and_edge_cases() -> None:
    rows = [{"a": 1, "b": 0.123456789, "c": None}, {"a": 22, "b": 1e9}]
    lines = format_table(rows, columns=["a", "b", "c", "missing"]).splitlines()
    assert lines[0].split() == ["a", "b", "c"]
    assert lines[2].split() == ["1", "0.1235", "-"]
    assert lines[3].split() == ["22", "1e+09", "-"]  # missing key prints as '-'
    assert lines[2].index("1") == lines[3].index("22") + 1  # numbers right-aligned
    assert format_table([], columns=["x"]).splitlines()[0] == "x"
    assert format_table([]).splitlines()[0].split() == list(DEFAULT_COLUMNS)


def test_oracle_ratios_are_pooled_from_their_counts_not_averaged():
    def rec(seed: int, ticks: int, requests: int, nonred: int, hits: int) -> dict:
        return {"task": "reach", "agent": "rapid", "noise": "clean", "link": "wifi",
                "seed": seed, "success": True, "oracle_ticks": ticks,
                "oracle_requests": requests, "oracle_empty_ticks": 0,
                "oracle_nonredundant_0.1": nonred, "oracle_hits_0.1": hits,
                "trigger_precision_0.1": hits / requests}

    (row,) = summarize([rec(0, 20, 2, 10, 2), rec(1, 200, 40, 100, 10)])
    assert row["trigger_precision_0.1"] == pytest.approx((1.0 + 0.25) / 2)  # episode mean
    assert row["pooled_trigger_precision_0.1"] == pytest.approx(12 / 42)
    assert row["pooled_trigger_recall_0.1"] == pytest.approx(12 / 110)
    assert row["pooled_redundant_share_0.1"] == pytest.approx(110 / 220)
    (plain,) = summarize([{"task": "reach", "agent": "rapid", "noise": "clean", "link": "wifi",
                           "seed": 0, "success": True}])
    assert not any(k.startswith("pooled_") for k in plain)


def test_fair_oracle_scores_are_pooled_and_missing_ones_are_nan():
    def rec(seed: int, cached: int, eligible: int, events: int, caught: int, **extra) -> dict:
        return {"task": "reach", "agent": "rapid", "noise": "clean", "link": "wifi",
                "seed": seed, "success": True, "oracle_ticks": 100, "oracle_requests": 10,
                "oracle_empty_ticks": 100 - cached, "oracle_nonredundant_0.1": 50,
                "oracle_hits_0.1": 5, "oracle_cached_ticks": cached,
                "oracle_eligible_ticks": eligible, "oracle_eligible_requests": 4,
                "oracle_redundant_cached_0.1": cached // 2,
                "oracle_eligible_nonredundant_0.1": eligible // 2,
                "oracle_eligible_hits_0.1": 2, "oracle_events_0.1": events,
                "oracle_events_caught_0.1": caught, "oracle_event_lead_ticks_0.1": caught,
                "oracle_noise_spreads": [0.0], "oracle_drifts": [0.04], **extra}

    (row,) = summarize([rec(0, 60, 20, 4, 1), rec(1, 80, 40, 6, 5)])
    assert row["pooled_redundant_of_cached_0.1"] == pytest.approx(70 / 140)
    assert row["pooled_precision_eligible_0.1"] == pytest.approx(4 / 8)
    assert row["pooled_chance_eligible_0.1"] == pytest.approx(30 / 60)
    assert row["pooled_event_recall_0.1"] == pytest.approx(6 / 10)
    assert row["pooled_event_lead_ticks_0.1"] == pytest.approx(1.0)
    assert row["pooled_oracle_cached_ticks"] == 140 and row["pooled_oracle_stall_ticks"] == 60
    assert row["pooled_oracle_noise_floor"] == 0.0
    assert row["pooled_oracle_drift_median"] == pytest.approx(0.04)
    old = rec(1, 80, 40, 6, 5)
    del old["oracle_cached_ticks"], old["oracle_noise_spreads"]
    (row,) = summarize([rec(0, 60, 20, 4, 1), old])
    assert math.isnan(row["pooled_redundant_of_cached_0.1"])
    assert math.isnan(row["pooled_oracle_noise_floor"])


def test_time_to_success_counts_its_successes_and_stall_share_pools_ticks():
    rows = summarize([record(0, stall_steps=20), record(1, stall_steps=0),
                      record(2, stall_steps=10)])
    (row,) = rows
    assert row["time_to_success_n"] == 2  # seeds 0 and 2 succeed
    assert row["time_to_success_s"] == pytest.approx((2.0 + 2.2) / 2)
    assert row["stall_share"] == pytest.approx(30 / (100 + 101 + 102))
    header = format_table(rows).splitlines()[0].split()
    assert header.index("latency_ms_mean") < header.index("time_to_success_s")
    assert "stall_share" in header
