"""The local backend: episodes (not cells) on worker processes, the serial run's records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rapid_env.cli.eval import main
from rapid_env.episode import WALL_CLOCK_FIELDS
from rapid_env.eval.backends import make_backend

ARGS = ["--tasks", "reach", "--agents", "rapid", "--episodes", "4", "--policy", "expert",
        "--max-episode-s", "1", "--image-size", "16", "--wandb", "disabled", "--quiet"]


def stored(out: Path) -> dict[str, dict]:
    recs = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    return {r["episode_key"]: {k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS}
            for r in recs}


@pytest.mark.slow
def test_two_workers_share_one_cell_and_give_the_serial_records(tmp_path: Path):
    assert main([*ARGS, "--out", str(tmp_path / "serial")]) == 0
    assert main([*ARGS, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    serial, two = stored(tmp_path / "serial"), stored(tmp_path / "two")
    assert len(serial) == 4 and serial == two
    # summary rows are rebuilt in the serial order whatever order the workers finished in
    assert (tmp_path / "serial" / "summary.csv").read_text() != ""
    rows = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("serial", "two")]
    for a, b in zip(*rows, strict=True):
        assert {k: v for k, v in a.items() if not k.startswith(WALL_CLOCK_FIELDS)} == {
            k: v for k, v in b.items() if not k.startswith(WALL_CLOCK_FIELDS)}


def test_more_workers_than_cores_is_bad_input():
    with pytest.raises(ValueError, match=r"--workers 1000; allowed: 1\.\.\d+"):
        make_backend("local", 1000)
    with pytest.raises(ValueError, match="unknown backend 'slurm'; allowed: local, ray"):
        make_backend("slurm")


def test_backends_are_a_registry_with_a_worker_check():
    from rapid_env.eval.backends import BACKENDS, check_workers

    assert list(BACKENDS) == ["local", "ray"]
    check_workers("ray", 1000)  # a cluster's CPUs are not this machine's
    with pytest.raises(ValueError, match="must be >= 1"):
        check_workers("ray", 0)
    with pytest.raises(ValueError, match=r"unknown backend 'rey'.*did you mean 'ray'\?$"):
        make_backend("rey")
