"""The results store: keyed records, torn lines, resume, different sweeps, extension."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rapid_env.config import EnvConfig
from rapid_env.eval.jobs import KEY_FIELD, SweepSpec, plan
from rapid_env.eval.store import ResultsStore, StoreError, differences

SPEC = SweepSpec(tasks=("reach",), agents=("cloud-only", "rapid"), episodes=2, seed=1000,
                 base=EnvConfig(policy="expert", image_size=16, max_episode_s=1.0))


def fake_record(job) -> dict:
    return {**job.head(), KEY_FIELD: job.key(), "success": True}


def test_keys_are_stable_and_distinct():
    keys = [job.key() for job in plan(SPEC)]
    assert len(set(keys)) == 4
    assert keys == [job.key() for job in plan(SPEC)]  # same spec, same keys
    other = replace(SPEC, base=replace(SPEC.base, image_size=32))
    assert not set(keys) & {job.key() for job in plan(other)}


def test_duplicates_in_any_list_are_refused():
    with pytest.raises(ValueError, match="agents lists rapid more than once"):
        replace(SPEC, agents=("rapid", "cloud-only", "rapid"))
    with pytest.raises(ValueError, match="tasks lists reach"):
        replace(SPEC, tasks=("reach", "reach"))


def test_resume_skips_stored_keys_and_never_stores_one_twice(tmp_path: Path):
    store = ResultsStore(tmp_path)
    store.open(SPEC)
    jobs = plan(SPEC)
    assert store.append(fake_record(jobs[0])) and store.append(fake_record(jobs[1]))
    assert not store.append(fake_record(jobs[0]))
    store.close()
    again = ResultsStore(tmp_path)
    again.open(SPEC)
    assert [j.key() for j in again.pending(jobs)] == [j.key() for j in jobs[2:]]
    again.close()
    assert len((tmp_path / "episodes.jsonl").read_text().splitlines()) == 2


def test_a_torn_last_line_is_cut_off(tmp_path: Path):
    store = ResultsStore(tmp_path)
    store.open(SPEC)
    jobs = plan(SPEC)
    store.append(fake_record(jobs[0]))
    store.close()
    with (tmp_path / "episodes.jsonl").open("a") as fh:
        fh.write(json.dumps(fake_record(jobs[1]))[:25])  # killed mid-write
    again = ResultsStore(tmp_path)
    again.open(SPEC)
    assert again.dropped_torn_line and len(again.records) == 1
    again.append(fake_record(jobs[1]))
    again.close()
    lines = (tmp_path / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(x)[KEY_FIELD] for x in lines] == [jobs[0].key(), jobs[1].key()]


def test_a_different_sweep_is_refused_with_the_fields_that_differ(tmp_path: Path):
    ResultsStore(tmp_path).open(SPEC)
    other = replace(SPEC, episodes=3, base=replace(SPEC.base, image_size=32))
    with pytest.raises(StoreError, match=r"env.image_size: 16 -> 32; episodes: 2 -> 3"):
        ResultsStore(tmp_path).open(other)
    ResultsStore(tmp_path).open(other, "overwrite")  # starts afresh


def test_extend_adds_cells_and_seeds_but_keeps_the_environment(tmp_path: Path):
    ResultsStore(tmp_path).open(SPEC)
    bigger = replace(SPEC, agents=("cloud-only", "rapid", "periodic"), episodes=3)
    ResultsStore(tmp_path).open(bigger, "extend")
    with pytest.raises(StoreError, match="agents drops rapid"):
        ResultsStore(tmp_path).open(replace(bigger, agents=("cloud-only", "periodic")), "extend")
    with pytest.raises(StoreError, match="env.max_episode_s"):
        changed = replace(bigger, base=replace(SPEC.base, max_episode_s=2.0))
        ResultsStore(tmp_path).open(changed, "extend")


def test_records_without_a_manifest_are_not_adopted(tmp_path: Path):
    (tmp_path / "episodes.jsonl").write_text('{"task": "reach"}\n')
    with pytest.raises(StoreError, match="no manifest.json"):
        ResultsStore(tmp_path).open(SPEC)


def test_differences_reads_nested_fields():
    assert differences({"a": {"b": 1}, "c": [1]}, {"a": {"b": 2}, "c": [1]}) == ["a.b: 1 -> 2"]


def test_a_manifest_gives_the_keys_the_plan_gives():
    from rapid_env.eval.store import expected_keys, make_manifest, manifest_keys

    manifest = json.loads(json.dumps(make_manifest(SPEC), default=str))  # as a reader sees it
    assert manifest_keys(manifest) == expected_keys(plan(SPEC))
    assert manifest_keys({"sweep": {}}) is None and manifest_keys({}) is None


def test_the_owned_names_are_the_files_a_sweep_writes():
    from rapid_env.eval.media import MEDIA_DIR
    from rapid_env.eval.paired import PAIRED_CSV
    from rapid_env.eval.report import REPORT
    from rapid_env.eval.store import OWNED

    assert {MEDIA_DIR, PAIRED_CSV, REPORT, "summary.json", "summary.csv"} <= set(OWNED)


def test_scan_records_names_every_bad_line():
    from rapid_env.eval.summary import parse_records, scan_records

    data = b'{"a": 1}\n[1]\n\n{"b": \xff}\nnope\n7\n{"c": 2}\n{"d": 3'
    records, problems = scan_records(data)
    assert [n for n, _ in records] == [1, 7]
    assert [(n, why.split(" ")[0]) for n, why in problems] == [
        (2, "a"), (4, "not"), (5, "not"), (6, "a"), (8, "torn")]
    assert "not UTF-8" in problems[1][1] and "JSON array" in problems[0][1]
    assert scan_records(b'{"a": 1}\n{"b": 2}')[0][-1] == (2, {"b": 2})  # complete, unterminated
    assert parse_records(data.decode("utf-8", "replace")) == ([{"a": 1}, {"c": 2}], 5)


def test_a_digest_seals_every_field_but_the_wall_clock():
    from rapid_env.eval.store import record_digest

    record = {"episode_key": "k", "success": True, "wall_time_s": 1.5, "x": np.float64(0.1)}
    seal = record_digest(record)
    assert record_digest(json.loads(json.dumps({**record, "x": 0.1}))) == seal
    assert record_digest({**record, "wall_time_s": 9.0, "record_digest": "zz"}) == seal
    assert record_digest({**record, "success": False}) != seal
