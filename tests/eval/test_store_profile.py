"""A store records a ``file:`` cost profile's content and refuses to resume with another one."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from rapid_env.cli.eval import main as rapid_eval
from rapid_env.config import EnvConfig
from rapid_env.cost.profiles import FILE_FORMAT, profile_file_digest, read_cache
from rapid_env.eval.jobs import KEY_FIELD, SweepSpec, plan
from rapid_env.eval.store import PROFILE_DIGEST_FIELD, ResultsStore, StoreError

BASE = EnvConfig(policy="expert", image_size=16, max_episode_s=0.5)
SPEC = SweepSpec(tasks=("reach",), agents=("cloud-only",), episodes=1, seed=1000, base=BASE)


def write_profile(path: Path, name: str) -> Path:
    """A profile file as rapid-profile writes it, holding the shipped profile ``name``."""
    path.write_text(json.dumps({"format": FILE_FORMAT, "profile": read_cache()[name]}))
    return path


def store_one(out: Path, spec: SweepSpec) -> dict:
    with ResultsStore(out) as store:
        store.open(spec)
        job = plan(spec)[0]
        store.append({**job.head(), KEY_FIELD: job.key(), "success": True})
    return json.loads((out / "manifest.json").read_text())


def test_a_file_profile_is_recorded_and_a_changed_file_refused(tmp_path: Path) -> None:
    path = write_profile(tmp_path / "mine.json", "smolvla")
    spec = replace(SPEC, base=replace(BASE, profile=f"file:{path}"))
    had = store_one(tmp_path / "out", spec)[PROFILE_DIGEST_FIELD]
    assert had == profile_file_digest(path)
    with ResultsStore(tmp_path / "out") as same:  # the same content resumes
        same.open(spec)
        assert not same.pending(plan(spec))
    write_profile(path, "pi0")  # counted again from another model, same name
    with pytest.raises(StoreError) as err, ResultsStore(tmp_path / "out") as store:
        store.open(spec)
    message = str(err.value)
    assert "\n" not in message and had in message and profile_file_digest(path) in message
    assert "new --out" in message


def test_a_built_in_profile_records_no_profile_digest(tmp_path: Path) -> None:
    assert PROFILE_DIGEST_FIELD not in store_one(tmp_path / "out", SPEC)


def test_rapid_eval_runs_a_file_profile_and_refuses_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_profile(tmp_path / "mine.json", "octo-base")
    argv = ["--tasks", "reach", "--agents", "cloud-only", "--episodes", "1", "--policy",
            "expert", "--max-episode-s", "0.1", "--wandb", "disabled", "--quiet",
            "--no-report", "--profile", f"file:{path}"]
    assert rapid_eval([*argv, "--out", str(tmp_path / "out")]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest[PROFILE_DIGEST_FIELD] == profile_file_digest(path)
    assert manifest["sweep"]["env"]["profile"] == f"file:{path}"
    record = json.loads((tmp_path / "out" / "episodes.jsonl").read_text().splitlines()[0])
    assert record["profile"] == f"file:{path}"
    path.write_text('{"format": "rapid-env-profile/1", "profile": {"name": 3}}')
    capsys.readouterr()
    assert rapid_eval([*argv, "--out", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "profile.name: expected str, got 3" in err
