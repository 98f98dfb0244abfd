"""rapid-paper --readings: the grid, the sweeps it runs, and the claims scored per reading."""

from __future__ import annotations

import argparse
import json

import pytest

from rapid_env.eval.paper_tables import EDGE_ONLY, RAPID, VISION
from rapid_env.eval.readings import DEFAULT_AXES, Reading, grid, parse_axis, sweeps
from rapid_env.eval.sensitivity import (
    CLAIMS,
    build_sensitivity,
    render_markdown,
    score_reading,
    table3_distance,
)


def _record(agent: str, noise: str, latency: float, **extra) -> dict:
    rec = {
        "task": extra.pop("task", "pick-place"), "agent": agent, "noise": noise, "seed": 1000,
        "success": extra.pop("success", True), "sim_time_s": 10.0, "inferences": 4,
        "offloads": 4, "early_exits": 0, "latency_ms_mean": latency, "latency_ms_std": 0.0,
        "latency_n": 4, "edge_ms_mean": extra.pop("edge", 50.0), "cloud_ms_mean": 70.0,
        "network_ms_mean": latency - 120.0, "edge_memory_gb": 2.28,
        "decision_overhead_pct": extra.pop("overhead", 0.2), "stall_steps": 10, "steps": 200,
    }
    rec.update(extra)
    return rec


def _records(rapid_ms: float, vision_ms: float, noisy_ms: float, redundant: int) -> dict:
    oracle = {"oracle_ticks": 100, "oracle_requests": 10, "oracle_empty_ticks": 20,
              **{f"oracle_nonredundant_{t}": 100 - redundant for t in ("0.05", "0.1", "0.2")},
              **{f"oracle_hits_{t}": 5 for t in ("0.05", "0.1", "0.2")}}
    return {
        "rapid": [_record(RAPID, "clean", rapid_ms, **oracle)],
        "vision": [_record(VISION, "clean", vision_ms, success=False),
                   _record(VISION, "visual-noise", noisy_ms)],
        "edge-only": [_record(EDGE_ONLY, "clean", 782.9, success=False)],
    }


READING = Reading("edge-suffix", "once", "cross", 2, "lab-wifi6")


def test_each_claim_is_scored_with_ours_paper_and_holds():
    scored = score_reading(READING, _records(200.0, 380.0, 500.0, redundant=72))
    rows = {r["claim"]: r for r in scored["rows"]}
    assert set(rows) == {c.key for c in CLAIMS}
    assert rows["rapid_faster_than_vision"]["ours"] == pytest.approx(1.9)
    assert rows["rapid_faster_than_vision"]["holds"] is True
    assert rows["rapid_faster_than_vision"]["paper"] == pytest.approx(377.7 / 222.9)
    assert rows["vision_latency_rises_visual_noise"]["ours"] == pytest.approx(500 / 380)
    assert rows["vision_latency_rises_visual_noise"]["holds"] is True
    # no interference scene was run: no figure, so no verdict
    assert rows["vision_latency_rises_interference"]["holds"] is None
    # 72 of 100 ticks redundant, 80 with a cached action: 90 % of cached ticks
    assert rows["redundancy_81_86"]["ours"] == pytest.approx(0.9)
    assert rows["redundancy_81_86"]["holds"] is True
    assert rows["overhead_5_7"]["holds"] is False
    assert rows["accuracy_gain"]["ours"] == pytest.approx(100.0)
    for row in scored["rows"]:
        assert row["placement"] == "edge-suffix" and row["max_in_flight"] == 2
        assert row["holds"] in (True, False, None)


def test_a_claim_fails_where_the_figure_says_so():
    rows = {r["claim"]: r for r in score_reading(
        READING, _records(300.0, 190.0, 185.0, redundant=30))["rows"]}
    assert rows["rapid_faster_than_vision"]["holds"] is False
    assert rows["vision_latency_rises_visual_noise"]["holds"] is False
    assert rows["redundancy_81_86"]["holds"] is False


def test_table3_distance_is_zero_only_at_the_papers_figures():
    rows = [
        {"row": "RAPID", "ours": {"latency_ms_mean": 222.9, "edge_ms": 139.4,
                                  "cloud_plus_network_ms": 83.5},
         "paper": {"latency_ms_mean": 222.9, "edge_ms": 139.4, "cloud_plus_network_ms": 83.5}},
        {"row": "vision-triggered", "ours": {"latency_ms_mean": 377.7, "edge_ms": 315.2,
                                             "cloud_plus_network_ms": 62.5},
         "paper": {"latency_ms_mean": 377.7, "edge_ms": 315.2, "cloud_plus_network_ms": 62.5}},
    ]
    assert table3_distance({"table3": rows}) == pytest.approx(0.0)
    rows[0]["ours"]["latency_ms_mean"] = 222.9 * 2
    assert table3_distance({"table3": rows}) == pytest.approx(0.6931 / 6**0.5, rel=1e-3)


def test_the_result_tallies_claims_and_names_the_best_match():
    a = score_reading(READING, _records(200.0, 380.0, 500.0, redundant=72))
    b = score_reading(Reading("edge-prefix", "per-pass", "early-exit", 1, "lab-wifi6"),
                      _records(270.0, 190.0, 350.0, redundant=30))
    result = json.loads(json.dumps(build_sensitivity([a, b], {"command": "x"}), allow_nan=False))
    faster = next(c for c in result["claims"] if c["claim"] == "rapid_faster_than_vision")
    assert faster["holds_in"] == [READING.id] and len(faster["fails_in"]) == 1
    assert len(result["rows"]) == 2 * len(CLAIMS)
    assert result["best_match"]["reading"] in (a["reading"], b["reading"])
    md = render_markdown(result)
    assert "1 of 2" in md and "| edge-suffix | once | cross | 2 | lab-wifi6 | chunk |" in md


def test_the_default_grid_covers_two_values_of_every_axis():
    readings = grid(DEFAULT_AXES)
    assert len(readings) == 32
    for axis in ("placement", "loop_cost", "baseline", "max_in_flight", "link"):
        assert len({getattr(r, axis) for r in readings}) == 2
    assert len({r.id for r in readings}) == 32


def test_sweeps_are_shared_between_readings_that_run_the_same_thing(tmp_path):
    args = argparse.Namespace(tasks="reach", episodes=1, seed=1000, policy="expert",
                              max_episode_s=1.0, workers=1, wandb="disabled", quiet=True,
                              quick=True)
    plan = sweeps(grid(DEFAULT_AXES), args, tmp_path)
    # RAPID does not depend on the baseline's mode: 16 RAPID sweeps, 32 baseline readings less
    # the 8 where an early exit is undefined (edge-suffix), edge-only and the reference once each
    assert len(plan) == 16 + 24 + 2
    undefined = Reading("edge-suffix", "once", "early-exit", 1, "lab-wifi6")
    assert undefined.undefined and undefined.vision_sweep not in plan
    ref = plan["rapid.reference.ideal"]
    assert ref[ref.index("--links") + 1] == "ideal" and "--oracle" in ref
    assert ref[ref.index("--max-in-flight") + 1] == "2"
    cross = plan[f"vision.{READING.id}"]
    assert "vision-entropy(mode=escalate,untriggered=cross)" in cross
    assert cross[cross.index("--placement") + 1] == "edge-suffix"
    assert cross[cross.index("--max-in-flight") + 1] == "2"
    assert cross[cross.index("--edge-budget-gib") + 1] == "4.7"
    assert "--oracle" in plan[READING.rapid_sweep]


def test_the_single_action_contract_is_an_axis_named_in_ids_and_sweeps(tmp_path):
    args = argparse.Namespace(tasks="reach", episodes=1, seed=1000, policy="expert",
                              max_episode_s=1.0, workers=1, wandb="disabled", quiet=True,
                              quick=True)
    axes = {**DEFAULT_AXES, "action_contract": ("chunk", "single")}
    readings = grid(axes)
    assert len(readings) == 64
    single = Reading("edge-prefix", "once", "cross", 1, "lab-wifi6", "single")
    assert single.id.endswith(".single") and READING.id.endswith("lab-wifi6")
    plan = sweeps(readings, args, tmp_path)
    argv = plan[single.rapid_sweep]
    assert argv[argv.index("--action-contract") + 1] == "single"


@pytest.mark.parametrize(("axis", "text", "bad"), [
    ("action_contract", "pair", "pair"),
    ("placement", "edge-prefix,middle", "middle"), ("loop_cost", "twice", "twice"),
    ("baseline", "never", "never"), ("max_in_flight", "0", "0"),
])
def test_bad_axis_values_are_named_with_the_allowed_ones(axis, text, bad):
    with pytest.raises(ValueError, match=bad):
        parse_axis(axis, text)


def test_finishing_sooner_is_read_on_the_seeds_both_schemes_solve():
    records = _records(200.0, 380.0, 500.0, redundant=72)
    records["rapid"] = [_record(RAPID, "clean", 200.0, seed=s, time_to_success_s=t)
                        for s, t in ((1000, 2.0), (1001, 4.0), (1002, 1.0))]
    records["vision"] = [_record(VISION, "clean", 380.0, seed=1000, time_to_success_s=3.0),
                         _record(VISION, "clean", 380.0, seed=1001, time_to_success_s=3.0),
                         _record(VISION, "clean", 380.0, seed=1002, success=False,
                                 time_to_success_s=None)]
    rows = {r["claim"]: r for r in score_reading(READING, records)["rows"]}
    # seeds 1000 and 1001 only: vision 3.0 s mean, RAPID 3.0 s mean
    assert rows["rapid_finishes_sooner"]["ours"] == pytest.approx(1.0)
    assert rows["rapid_finishes_sooner"]["holds"] is False
    assert "paper" not in rows["rapid_finishes_sooner"]


def test_an_undefined_reading_has_rows_without_verdicts_and_says_why():
    undefined = Reading("edge-suffix", "per-pass", "early-exit", 1, "lab-wifi6")
    records = _records(200.0, 380.0, 500.0, redundant=72)
    records["vision"] = []
    scored = score_reading(undefined, records)
    rows = {r["claim"]: r for r in scored["rows"]}
    assert rows["rapid_faster_than_vision"]["holds"] is None
    assert "edge-suffix" in rows["rapid_faster_than_vision"]["note"]
    assert rows["redundancy_81_86"]["holds"] is True  # RAPID's own figures still count
    md = render_markdown(build_sensitivity([scored], {}))
    assert "Not run" in md


@pytest.mark.slow
def test_readings_quick_writes_a_row_per_claim_and_reading_and_resumes(tmp_path):
    from rapid_env.cli.paper import main

    out = tmp_path / "readings"
    argv = ["--readings", "--quick", "--tasks", "reach", "--policy", "expert",
            "--max-episode-s", "0.5", "--links", "lab-wifi6", "--out", str(out), "--quiet",
            "--wandb", "disabled"]
    assert main(argv) == 0
    result = json.loads((out / "sensitivity.json").read_text())
    keys = {(r["placement"], r["loop_cost"], r["baseline"], r["max_in_flight"])
            for r in result["rows"]}
    assert len(keys) == 16  # 2 placements x 2 loop costs x 2 baseline modes x 2 in flight
    assert len(result["rows"]) == 16 * len(CLAIMS)
    for row in result["rows"]:
        assert {"ours", "holds", "claim", "reading"} <= set(row)
        assert row["holds"] in (True, False, None)
        if row["claim"] == "rapid_faster_than_vision":
            assert row["paper"] == pytest.approx(377.7 / 222.9)
    # the edge-suffix partition at 2.4 GiB: RAPID's edge compute is the suffix's 129 ms
    suffix = next(s for s in result["readings"] if s["placement"] == "edge-suffix")
    assert suffix["table3"]["RAPID"]["edge_ms"] == pytest.approx(129.0, rel=0.15)
    prefix = next(s for s in result["readings"] if s["placement"] == "edge-prefix")
    assert prefix["table3"]["RAPID"]["edge_ms"] == pytest.approx(48.0, rel=0.05)
    assert (out / "sensitivity.md").read_text().startswith("# Which of the paper's claims")
    # a rerun resumes every store and rebuilds the same rows
    assert main(argv) == 0
    again = json.loads((out / "sensitivity.json").read_text())
    assert again["rows"] == result["rows"]


def test_the_accuracy_claim_needs_a_paired_interval_clear_of_zero():
    def run(rapid_wins: int, n: int) -> bool | None:
        records = _records(200.0, 380.0, 500.0, redundant=72)
        records["rapid"] = [_record(RAPID, "clean", 200.0, seed=s, success=s < rapid_wins)
                            for s in range(n)]
        records["vision"] = [_record(VISION, "clean", 380.0, seed=s, success=False)
                             for s in range(n)]
        records["edge-only"] = [_record(EDGE_ONLY, "clean", 782.9, seed=s, success=False)
                                for s in range(n)]
        rows = {r["claim"]: r for r in score_reading(READING, records)["rows"]}
        return rows["accuracy_gain"]["holds"]

    assert run(1, 1) is None  # +100 points on one pair decides nothing
    assert run(15, 20) is True
    assert run(0, 20) is None  # equal: the interval straddles 0


def test_the_shipped_sensitivity_is_rebuilt_exactly_from_the_shipped_records(tmp_path):
    import shutil
    from pathlib import Path

    from rapid_env.cli.paper import main

    shipped = Path(__file__).resolve().parents[2] / "docs" / "results" / "readings"
    out = tmp_path / "readings"
    shutil.copytree(shipped, out)
    assert main(["--readings", "--tables-only", "--out", str(out), "--wandb", "disabled"]) == 0
    rebuilt = json.loads((out / "sensitivity.json").read_text())
    original = json.loads((shipped / "sensitivity.json").read_text())
    for key in ("rows", "claims", "readings", "best_match", "reference_ideal_link"):
        assert rebuilt[key] == original[key], key
    assert len({(r["placement"], r["loop_cost"], r["baseline"], r["max_in_flight"], r["link"])
                for r in rebuilt["rows"]}) == 32
