"""rapid-paper: exact pooling of the tables, their JSON shape, and the command end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rapid_env.cli.paper import LIBERO_QUICK_TASKS, QUICK_TASKS, main
from rapid_env.eval.paper import SETTINGS
from rapid_env.eval.paper_tables import (
    EDGE_ONLY,
    RAPID,
    TABLE2_TASKS,
    TRIGGER_AGENTS,
    VISION,
    build_tables,
    render_markdown,
)
from rapid_env.eval.pooling import oracle_stats, pooled_latency, time_and_stalls


def _record(agent: str, noise: str, latencies: list[float], **extra) -> dict:
    lat = np.asarray(latencies)
    rec = {
        "task": extra.pop("task", "pick-place"), "agent": agent, "noise": noise, "seed": 1000,
        "success": extra.pop("success", True), "sim_time_s": 10.0,
        "inferences": len(lat), "offloads": extra.pop("offloads", len(lat)), "early_exits": 0,
        "latency_ms_mean": float(lat.mean()), "latency_ms_std": float(lat.std()),
        "latency_n": len(lat), "edge_ms_mean": 50.0, "cloud_ms_mean": 70.0,
        "network_ms_mean": float(lat.mean()) - 120.0, "edge_memory_gb": 2.28e9 / 1e9,
        "decision_overhead_pct": 0.2,
    }
    rec.update(extra)
    return rec


def test_latency_pools_exactly_over_every_chunk():
    chunks = [[200.0, 260.0, 230.0], [300.0], [250.0, 251.0]]
    pooled = pooled_latency([_record(RAPID, "clean", c) for c in chunks])
    flat = np.concatenate(chunks)
    assert pooled["latency_ms_mean"] == pytest.approx(flat.mean())
    assert pooled["latency_ms_std"] == pytest.approx(flat.std())
    assert pooled["chunks"] == 6
    assert pooled_latency([])["latency_ms_mean"] is None


def test_oracle_shares_and_precision_recall_pool_from_the_counts():
    a = {"oracle_ticks": 100, "oracle_requests": 10, "oracle_empty_ticks": 4,
         "oracle_nonredundant_0.1": 20, "oracle_hits_0.1": 5,
         "oracle_beyond_refill_requests": 4, "oracle_beyond_refill_nonredundant_0.1": 12,
         "oracle_beyond_refill_hits_0.1": 1}
    b = {"oracle_ticks": 50, "oracle_requests": 30, "oracle_empty_ticks": 6,
         "oracle_nonredundant_0.1": 40, "oracle_hits_0.1": 25,
         "oracle_beyond_refill_requests": 6, "oracle_beyond_refill_nonredundant_0.1": 8,
         "oracle_beyond_refill_hits_0.1": 3}
    st = oracle_stats([a, b, {"oracle_ticks": None}], 0.1)
    assert st["redundant_share"] == pytest.approx((150 - 60) / 150)
    assert st["redundant_share_of_cached"] == pytest.approx(90 / 140)
    assert st["precision"] == pytest.approx(30 / 40)
    assert st["recall"] == pytest.approx(30 / 60)
    assert st["precision_beyond_refill"] == pytest.approx(4 / 10)
    assert st["recall_beyond_refill"] == pytest.approx(4 / 20)
    assert oracle_stats([], 0.1)["precision"] is None  # no denominator, no number


def test_fair_oracle_stats_pool_from_the_counts_and_lists():
    a = {"oracle_ticks": 10, "oracle_requests": 4, "oracle_empty_ticks": 4,
         "oracle_cached_ticks": 6, "oracle_eligible_ticks": 4, "oracle_eligible_requests": 2,
         "oracle_redundant_cached_0.1": 3, "oracle_eligible_nonredundant_0.1": 2,
         "oracle_eligible_hits_0.1": 1, "oracle_events_0.1": 2, "oracle_events_caught_0.1": 1,
         "oracle_event_lead_ticks_0.1": 2, "oracle_events_caught_own_0.1": 0,
         "oracle_noise_spreads": [0.01, 0.03], "oracle_drifts": [0.05],
         "oracle_own_requests": 1, "oracle_own_after_stall": 1, "oracle_own_preempt_fresh": 0}
    b = {**a, "oracle_cached_ticks": 4, "oracle_eligible_ticks": 2,
         "oracle_redundant_cached_0.1": 4, "oracle_events_caught_0.1": 2,
         "oracle_event_lead_ticks_0.1": 0, "oracle_events_caught_own_0.1": 2,
         "oracle_noise_spreads": [0.02], "oracle_drifts": [0.01, 0.02, 0.09],
         "oracle_own_preempt_fresh": 1}
    st = oracle_stats([a, b], 0.1)
    assert st["cached_ticks"] == 10 and st["stall_ticks"] == 8 and st["eligible_ticks"] == 6
    assert st["redundant_of_cached"] == pytest.approx(7 / 10)
    assert st["precision_eligible"] == pytest.approx(2 / 4)
    assert st["chance_eligible"] == pytest.approx(4 / 6)
    assert st["events"] == 4 and st["event_recall"] == pytest.approx(3 / 4)
    assert st["event_lead_ticks"] == pytest.approx(2 / 3)
    assert st["event_recall_own"] == pytest.approx(2 / 4)
    assert st["noise_floor"] == pytest.approx(0.02)  # the median of every tick's spread
    assert st["tol_over_floor"] == pytest.approx(5.0)
    assert st["drift_median"] == pytest.approx(0.035)
    assert (st["own_requests"], st["own_after_stall"], st["own_preempt_fresh"]) == (2, 2, 1)
    # a deterministic policy: floor 0, no multiple of it
    zero = oracle_stats([{**a, "oracle_noise_spreads": [0.0, 0.0]}], 0.1)
    assert zero["noise_floor"] == 0.0 and zero["tol_over_floor"] is None
    # a record that predates the fields makes the pooled values missing, not 0
    old = {k: v for k, v in a.items() if k in ("oracle_ticks", "oracle_requests",
                                                "oracle_empty_ticks")}
    for pool in ([old], [a, old]):
        st = oracle_stats(pool, 0.1)
        for key in ("cached_ticks", "redundant_of_cached", "precision_eligible",
                    "chance_eligible", "events", "event_recall", "noise_floor",
                    "tol_over_floor", "drift_median", "own_requests"):
            assert st[key] is None, key


def test_time_to_success_is_over_the_successes_and_stall_share_pools_ticks():
    recs = [_record(RAPID, "clean", [250.0], success=True, time_to_success_s=2.0,
                    stall_steps=10, steps=40),
            _record(RAPID, "clean", [250.0], success=True, time_to_success_s=3.0,
                    stall_steps=0, steps=60),
            _record(RAPID, "clean", [250.0], success=False, time_to_success_s=None,
                    stall_steps=50, steps=100)]
    st = time_and_stalls(recs)
    assert st["time_to_success_s"] == pytest.approx(2.5) and st["time_to_success_n"] == 2
    assert st["stall_share"] == pytest.approx(60 / 200)
    missing = time_and_stalls([_record(RAPID, "clean", [250.0], success=False)])
    assert missing == {"time_to_success_s": None, "time_to_success_n": 0, "stall_share": None}


def _regime_records() -> dict[str, list[dict]]:
    oracle = {"oracle_ticks": 100, "oracle_requests": 10, "oracle_empty_ticks": 4,
              **{f"oracle_nonredundant_{t}": 20 for t in ("0.05", "0.1", "0.2")},
              **{f"oracle_hits_{t}": 5 for t in ("0.05", "0.1", "0.2")}}
    return {
        "rapid": [_record(a, "clean", [250.0, 260.0], **oracle) for a in TRIGGER_AGENTS],
        "rapid-noise": [_record(RAPID, n, [255.0]) for n in ("visual-noise", "interference")],
        "vision": [_record(VISION, "clean", [190.0, 190.0, 380.0], offloads=1, **oracle)],
        "vision-noise": [_record(VISION, "visual-noise", [190.0, 380.0], offloads=1),
                         _record(VISION, "interference", [380.0], offloads=1)],
        "edge-only": [_record(EDGE_ONLY, "clean", [782.9], offloads=0, success=False,
                              edge_memory_gb=15.23)],
    }


def test_tables_have_the_issue_shape_with_the_paper_beside_ours():
    tables = json.loads(json.dumps(build_tables(_regime_records(), {"command": "x"}),
                                   allow_nan=False))
    assert {"table1", "table2", "table3", "trigger"} <= set(tables)
    for key in ("table1", "table2", "table3", "trigger"):
        assert isinstance(tables[key], list) and tables[key]
        for row in tables[key]:
            assert isinstance(row["ours"], dict)
            if "paper" in row:
                assert set(row["ratio"]) <= set(row["paper"])
    t1 = {r["row"]: r for r in tables["table1"]}
    vision = [t1[f"vision-triggered / {s}"] for s in ("standard", "visual-noise", "interference")]
    assert [r["paper"]["latency_ms_mean"] for r in vision] == [395.4, 520.6, 685.3]
    # our vision-triggered latency rises with its escalation rate, scene by scene
    means = [r["ours"]["latency_ms_mean"] for r in vision]
    assert means == sorted(means) and means[0] == pytest.approx(760 / 3)
    assert vision[0]["ratio"]["latency_ms_mean"] == pytest.approx(means[0] / 395.4)
    assert "paper" not in t1["RAPID / standard"]
    t2 = {r["row"]: r for r in tables["table2"]}
    assert t2["pick-place"]["paper"]["redundant_share"] == 0.825
    assert t2["pick-place"]["ours"]["redundant_share"] == pytest.approx(0.8)
    t3 = {r["row"]: r["ours"] for r in tables["table3"]}
    for field in ("latency_ms_mean", "latency_ms_std", "edge_ms", "cloud_ms", "edge_memory_gb",
                  "success", "decision_overhead_pct", "speedup_vs_edge_only"):
        assert field in t3["RAPID"]
    assert t3["edge-only"]["edge_memory_gb"] == pytest.approx(15.23e9 / 2**30)
    rapid_paper = next(r["paper"] for r in tables["table3"] if r["row"] == "RAPID")
    assert rapid_paper["cloud_ms"] == rapid_paper["cloud_plus_network_ms"] == 83.5
    assert rapid_paper["edge_ms"] == 139.4 and rapid_paper["edge_memory_gb"] == 2.4
    assert t3["RAPID"]["speedup_vs_edge_only"] == pytest.approx(782.9 / 255.0)
    assert t3["RAPID"]["success_gain_vs_edge_only_pct"] == pytest.approx(100.0)
    trig = {r["row"]: r["ours"] for r in tables["trigger"]}
    assert set(trig) >= {"RAPID", "rapid-no-preempt", "periodic", "chunk-threshold",
                         "vision-triggered"}
    assert trig["RAPID"]["precision"] == pytest.approx(0.5)
    assert trig["RAPID"]["recall"] == pytest.approx(0.25)
    for key in ("precision_eligible", "chance_eligible", "event_recall", "event_lead_ticks",
                "own_after_stall", "own_preempt_fresh", "time_to_success_s", "stall_share"):
        assert key in trig["RAPID"], key
    assert trig["RAPID"]["precision_eligible"] is None  # these records predate the fields
    for key in ("redundant_of_cached", "stall_share", "noise_floor", "tol_over_floor"):
        assert key in t2["pick-place"]["ours"], key
    for row in (*tables["table1"], *tables["table3"]):
        assert {"time_to_success_s", "time_to_success_n", "stall_share"} <= set(row["ours"])
    md = render_markdown(tables)
    for title in ("Table I", "Table II", "Table III", "Trigger precision", "Tick-level scores",
                  "time to success s (n successes)", "stall share", "noise floor",
                  "chance on eligible", "event recall"):
        assert title in md


def test_the_settings_put_each_scheme_on_its_partition():
    by_name = {s.name: s for s in SETTINGS}
    assert by_name["rapid"].edge_budget_gib == 2.4 and by_name["rapid"].oracle
    assert by_name["vision"].edge_budget_gib == 4.7 and by_name["vision"].agents == (VISION,)
    assert by_name["edge-only"].edge_budget_gib is None


def test_bad_input_exits_2_naming_it(tmp_path, capsys):
    assert main(["--episodes", "0", "--out", str(tmp_path / "a")]) == 2
    assert "--episodes 0" in capsys.readouterr().err
    assert main(["--quick", "--link", "wlan9", "--out", str(tmp_path / "b"), "--quiet",
                 "--wandb", "disabled"]) == 2
    assert "wlan9" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_writes_both_files_with_all_four_tables(tmp_path):
    out = tmp_path / "paper"
    code = main(["--quick", "--tasks", "drawer-open", "--max-episode-s", "1.5", "--out",
                 str(out), "--quiet", "--wandb", "disabled"])
    assert code == 0
    tables = json.loads((out / "paper_tables.json").read_text())
    assert len(tables["table1"]) == 6 and len(tables["table3"]) == 3
    assert len(tables["trigger"]) == len(TRIGGER_AGENTS) + 1
    assert [r["row"] for r in tables["table2"]] == ["drawer-open", "all tasks run"]
    t3 = {r["row"]: r["ours"] for r in tables["table3"]}
    assert t3["edge-only"]["latency_ms_mean"] == pytest.approx(782.9, abs=0.5)
    assert t3["RAPID"]["edge_memory_gb"] == pytest.approx(2.12, abs=0.01)
    assert t3["vision-triggered"]["edge_memory_gb"] == pytest.approx(4.41, abs=0.01)
    assert all(math.isfinite(t3[k]["latency_ms_mean"]) for k in t3)
    md = (out / "paper_tables.md").read_text()
    assert "Table III" in md and "rapid-eval --tasks drawer-open" in md
    # a rerun resumes every store: nothing is run twice, the tables are the same
    assert main(["--quick", "--tasks", "drawer-open", "--max-episode-s", "1.5", "--out",
                 str(out), "--quiet", "--wandb", "disabled"]) == 0
    again = json.loads((out / "paper_tables.json").read_text())
    assert again["table3"] == tables["table3"]


@pytest.mark.slow
def test_suite_libero_quick_writes_the_tables_on_libero(tmp_path):
    """``--suite libero``: the regime on LIBERO's stand-in for pick-place, Table II's row named."""
    out = tmp_path / "paper-libero"
    code = main(["--suite", "libero", "--quick", "--tasks", "libero_object/0", "--policy",
                 "expert", "--max-episode-s", "0.5", "--out", str(out), "--quiet",
                 "--wandb", "disabled"])
    assert code == 0
    tables = json.loads((out / "paper_tables.json").read_text())
    assert tables["meta"]["suite"] == "libero"
    row = tables["table2"][0]
    assert row["row"] == "libero_object/0 (pick-place)" and row["paper"]["redundant_share"] == 0.825
    assert len(tables["table1"]) == 6 and len(tables["table3"]) == 3
    assert "rapid-eval --tasks libero_object/0" in (out / "paper_tables.md").read_text()


@pytest.mark.parametrize("folder", ["paper", "paper-libero", "paper-v2"])
def test_the_shipped_tables_are_rebuilt_exactly_from_the_shipped_records(tmp_path, folder):
    import shutil
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "docs" / "results" / folder
    out = tmp_path / "paper"
    shutil.copytree(shipped, out)
    (out / "paper_tables.md").unlink()
    assert main(["--out", str(out), "--tables-only"]) == 0
    assert json.loads((out / "paper_tables.json").read_text()) == json.loads(
        (shipped / "paper_tables.json").read_text()
    )
    assert (out / "paper_tables.md").read_text() == (shipped / "paper_tables.md").read_text()


def test_tables_only_without_records_exits_2_naming_the_settings(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--tables-only"]) == 2
    assert "no records for setting(s) rapid, rapid-noise" in capsys.readouterr().err


def test_tables_go_to_an_offline_wandb_run_as_tables_and_an_artifact(tmp_path):
    from rapid_env.eval.paper_wandb import flatten, headline, log_tables

    tables = build_tables(_regime_records(), {"command": "rapid-paper --quick"})
    columns, data = flatten(tables["table3"])
    assert columns[0] == "row" and "ours.latency_ms_mean" in columns
    assert "paper.latency_ms_mean" in columns and "ratio.latency_ms_mean" in columns
    assert [row[0] for row in data] == ["edge-only", "vision-triggered", "RAPID"]
    assert headline(tables)["table3/RAPID/latency_ms_mean"] == pytest.approx(255.0)
    (tmp_path / "paper_tables.json").write_text(json.dumps(tables))
    assert log_tables("disabled", tmp_path, tables, "g") is None
    hint = log_tables("offline", tmp_path, tables, "paper-x")
    assert hint is not None and "wandb sync " in hint
    run_dirs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1
    assert any(f.suffix == ".wandb" and f.stat().st_size > 1000 for f in run_dirs[0].iterdir())


def test_a_torn_last_line_is_skipped_and_the_store_left_alone(tmp_path):
    from rapid_env.eval.paper import read_records

    good = json.dumps({"task": "reach", "agent": "rapid"})
    (tmp_path / "episodes.jsonl").write_text(f"{good}\n{good}\n{{\"task\": \"re")
    before = (tmp_path / "episodes.jsonl").read_bytes()
    assert len(read_records(tmp_path)) == 2
    assert (tmp_path / "episodes.jsonl").read_bytes() == before
    assert read_records(tmp_path / "absent") == []


def test_quick_tasks_are_table_two_tasks() -> None:
    # the CLI spells them out so --help need not import the tables
    assert QUICK_TASKS == TABLE2_TASKS
    from rapid_env.eval.paper_tables import LIBERO_TABLE2

    assert LIBERO_QUICK_TASKS == tuple(LIBERO_TABLE2)
    assert set(LIBERO_TABLE2.values()) == set(TABLE2_TASKS)
