"""The record schema: real records carry exactly the declared fields; docs/records.md is current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rapid_env.compose import build_controller, build_decider
from rapid_env.config import EnvConfig
from rapid_env.episode import run_episode
from rapid_env.record import (
    FIELDS,
    JOB_FIELDS,
    PRESENCE,
    REQUIRED_FIELDS,
    SOURCES,
    WALL_CLOCK_FIELDS,
    RecordError,
    assemble,
    lookup,
    markdown,
    validate,
)
from rapid_env.record_metrics import (
    escalation_rate,
    offload_rate,
    offload_rate_of_rows,
    per_second,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "records.md"
CFG = EnvConfig(task="reach", policy="expert", link="wifi", image_size=16, max_episode_s=1.0)
TOLS = (0.05, 0.1)


def declared(*presences: str, job: bool = False, tols: tuple[float, ...] = ()) -> set[str]:
    """The keys the schema declares for records with these presences (families per tolerance)."""
    keys: set[str] = set()
    for f in FIELDS:
        if f.presence not in presences or (f.source == "job" and not job):
            continue
        if f.family:
            keys |= {f.key(format(t, "g")) for t in tols}
        else:
            keys.add(f.name)
    return keys


# ---------------------------------------------------------------------- the schema itself
def test_every_field_is_declared_once_with_a_known_type_source_and_presence() -> None:
    names = [f.name for f in FIELDS]
    assert len(names) == len(set(names))
    for f in FIELDS:
        assert f.source in SOURCES and f.presence in PRESENCE, f.name
        assert f.doc and "\n" not in f.doc, f.name
        for name in f.type.split(" | "):
            assert name in ("bool", "int", "float", "str", "None", "dict[str, str]",
                            "list[float]"), f.name
    assert set(WALL_CLOCK_FIELDS) == {
        "wall_time_s", "decision_cpu_us_mean", "decision_overhead_pct",
        "measured_edge_ms_mean", "measured_rtt_ms_mean", "server_ms_mean",
    }
    assert JOB_FIELDS[:4] == ("task", "agent", "noise", "link")


def test_families_match_only_their_own_keys() -> None:
    found = lookup("trigger_precision_0.05")
    assert found is not None and found[0].name == "trigger_precision_<tol>" and found[1] == "0.05"
    found = lookup("trigger_precision_beyond_refill_1e-05")
    assert found is not None and found[0].name == "trigger_precision_beyond_refill_<tol>"
    assert found[1] == "1e-05"
    assert lookup("oracle_nonredundant_0.2")[0].name == "oracle_nonredundant_<tol>"  # type: ignore[index]
    assert lookup("redundant_share_") is None
    assert lookup("redundant_share_x") is None
    assert lookup("not_a_field") is None


def test_docs_records_md_is_generated_from_the_schema() -> None:
    assert DOCS.read_text(encoding="utf-8") == markdown(), (
        "docs/records.md is stale: python -m rapid_env.record --markdown > docs/records.md"
    )
    for f in FIELDS:
        assert f"| `{f.name}` |" in DOCS.read_text(encoding="utf-8")


# ---------------------------------------------------------------------- real records
@pytest.fixture(scope="module")
def controller() -> Any:
    c = build_controller(CFG)
    yield c
    c.task.close()


def test_a_real_episode_has_exactly_the_declared_fields(controller: Any) -> None:
    record = run_episode(controller, build_decider("rapid"), 1000)
    assert set(record) == declared("always", "ran")
    validate(record)
    assert record["inferences"] > 0 and record["fault"] is None


def test_with_the_oracle_the_tolerance_families_are_complete(controller: Any) -> None:
    from rapid_env.agents.refill import refill_due
    from rapid_env.oracle import RedundancyOracle

    oracle = RedundancyOracle(TOLS, refill_due=refill_due)
    record = run_episode(controller, build_decider("rapid"), 1000, oracle=oracle)
    assert set(record) == declared("always", "ran", "oracle", "oracle_refill", tols=TOLS)
    validate(record)
    without = RedundancyOracle(TOLS)
    record = run_episode(controller, build_decider("rapid"), 1000, oracle=without)
    assert set(record) == declared("always", "ran", "oracle", tols=TOLS)


def test_a_sweep_job_record_has_identity_oracle_and_media(tmp_path: Path) -> None:
    from rapid_env.eval.execute import EpisodeRunner, error_record, with_oracle
    from rapid_env.eval.jobs import SweepSpec, plan

    spec = SweepSpec(tasks=("reach",), agents=("rapid",), links=("wifi",), episodes=1, seed=1000,
                     base=EnvConfig(policy="expert", image_size=16, max_episode_s=1.0))
    job = with_oracle(plan(spec), TOLS)[0]
    runner = EpisodeRunner()
    try:
        record = runner.run(job, media_dir=tmp_path / "videos")
    finally:
        runner.close()
    assert record.get("fault") is None, record.get("fault")
    media = "media" if "media" in record else "media_error"
    assert list(record)[: len(JOB_FIELDS)] == list(JOB_FIELDS)
    assert set(record) == declared(
        "always", "ran", "oracle", "oracle_refill", job=True, tols=TOLS
    ) | {media}
    assert set(REQUIRED_FIELDS) <= set(record)
    validate(record)

    failed = error_record(job, "worker process died 3 times running this episode")
    assert set(failed) == declared("always", job=True)
    assert failed["fault"] == "episode_error: worker process died 3 times running this episode"
    assert failed["success"] is False and failed["faults"] == 1


def test_a_job_whose_episode_cannot_run_is_an_episode_error_record(tmp_path: Path) -> None:
    from rapid_env.eval.execute import EpisodeRunner, is_episode_error
    from rapid_env.eval.jobs import SweepSpec, plan

    missing = tmp_path / "no-such-checkpoint"
    spec = SweepSpec(tasks=("reach",), agents=("rapid",), links=("wifi",), episodes=1, seed=1000,
                     base=EnvConfig(policy=f"ckpt:{missing}", image_size=16, max_episode_s=1.0))
    runner = EpisodeRunner()
    try:
        record = runner.run(plan(spec)[0])
    finally:
        runner.close()
    assert is_episode_error(record)
    assert set(record) == declared("always", job=True)


# ---------------------------------------------------------------------- assemble's checks
def _parts(controller: Any) -> dict[str, Any]:
    record = run_episode(controller, build_decider("edge-only"), 1001)
    loop_keys = {f.name for f in FIELDS if f.source == "loop"} - {"wall_time_s"}
    return {
        "metrics": {k: v for k, v in record.items() if lookup(k)[0].source == "recorder"},  # type: ignore[index]
        "loop": {k: record[k] for k in loop_keys},
        "wall_time_s": record["wall_time_s"],
    }


def test_assemble_refuses_what_the_schema_does_not_declare(controller: Any) -> None:
    parts = _parts(controller)
    assert set(assemble(**parts)) == declared("always", "ran")
    with pytest.raises(RecordError, match="undeclared record field 'new_thing'"):
        assemble(**{**parts, "metrics": {**parts["metrics"], "new_thing": 1}})
    with pytest.raises(RecordError, match="'steps' is set by the recorder, not by the loop"):
        assemble(**{**parts, "loop": {**parts["loop"], "steps": 1}})
    short = dict(parts["metrics"])
    del short["latency_n"]
    with pytest.raises(RecordError, match=r"lacks \['latency_n'\]"):
        assemble(**{**parts, "metrics": short})
    with pytest.raises(RecordError, match="'steps' must be int, got 1.5"):
        assemble(**{**parts, "metrics": {**parts["metrics"], "steps": 1.5}})
    with pytest.raises(RecordError, match="'success' must be bool"):
        assemble(**{**parts, "metrics": {**parts["metrics"], "success": 1}})
    with pytest.raises(RecordError, match="an episode or an error"):
        assemble(**parts, error="boom")
    with pytest.raises(RecordError, match=r"lacks \['trigger_recall_0.1', 'oracle_cached_ticks'"):
        assemble(**parts, oracle={"oracle_ticks": 1, "oracle_requests": 1,
                                  "oracle_empty_ticks": 1, "oracle_shadow_faults": 0,
                                  "oracle_diff_median": None, "redundant_share_0.1": 0.0,
                                  "trigger_precision_0.1": 1.0, "oracle_nonredundant_0.1": 1,
                                  "oracle_hits_0.1": 1})
    with pytest.raises(RecordError, match="media or media_error"):
        assemble(**parts, media={"media": {}, "media_error": "x"})
    with pytest.raises(RecordError, match=r"lacks \['agent'"):
        assemble(job={"task": "reach"}, error="x")


# ---------------------------------------------------------------------- derived metrics
def test_offload_rate_is_the_same_from_records_and_from_summary_rows() -> None:
    from rapid_env.eval.summary import summarize

    head: dict[str, Any] = {"agent": "a", "noise": "clean", "link": "wifi"}
    records: list[dict[str, Any]] = [
        {**head, "task": "reach", "seed": 0, "success": True, "offloads": 3, "inferences": 4,
         "sim_time_s": 1.5, "fault": None},
        {**head, "task": "reach", "seed": 1, "success": False, "offloads": 8, "inferences": 8,
         "sim_time_s": 4.0, "fault": None},
        # an episode that could not run: in neither sum
        {**head, "task": "reach", "seed": 2, "success": False, "faults": 1,
         "fault": "episode_error: OSError: x"},
        {**head, "task": "push", "seed": 0, "success": False, "offloads": 1, "inferences": 5,
         "sim_time_s": 2.5, "fault": None},
    ]
    want = (3 + 8 + 1) / (1.5 + 4.0 + 2.5)
    assert offload_rate(records) == pytest.approx(want, rel=1e-15)
    assert offload_rate_of_rows(summarize(records)) == pytest.approx(want, rel=1e-15)
    assert per_second(records, "inferences") == pytest.approx(17 / 8.0)
    assert escalation_rate(records) == pytest.approx(12 / 17)
    assert offload_rate([records[2]]) is None
    assert offload_rate_of_rows([]) is None
