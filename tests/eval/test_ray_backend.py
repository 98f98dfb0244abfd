"""--backend ray: the serial run's records, a killed worker costs a retry, Ray is optional.

One local Ray cluster (2 CPUs) serves the module. It is started by :class:`RayBackend` itself
(the path ``rapid-eval --backend ray`` takes without ``--address``), with one test-only addition
to the job's ``runtime_env``: a ``worker_process_setup_hook`` (:func:`_crash_hook`, below) that
every Ray worker process runs when it starts. The hook wraps ``EpisodeRunner.run`` in that worker
so that a job whose key has a marker file in the crash folder kills its own process with SIGKILL:
``<key>.once`` is removed before the kill (the retry runs normally), ``<key>.always`` is not.
Without marker files the hook changes nothing. No test code is in the product path; the product's
own retry and bookkeeping do the rest.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rapid_env.cli.eval import main
from rapid_env.config import EnvConfig
from rapid_env.eval.backends import make_backend
from rapid_env.eval.backends.serial import SerialBackend
from rapid_env.eval.execute import is_episode_error
from rapid_env.eval.jobs import KEY_FIELD, SweepSpec, plan
from rapid_env.eval.runner import WALL_CLOCK_FIELDS

CRASH_DIR_VAR = "RAPID_TEST_RAY_CRASH_DIR"
REPO = Path(__file__).resolve().parents[2]


def _crash_hook() -> None:
    """Ray worker setup hook (test only): a job with a marker file kills this worker process."""
    from rapid_env.eval.execute import EpisodeRunner

    crash_dir = Path(os.environ[CRASH_DIR_VAR])
    run = EpisodeRunner.run

    def run_or_die(self, job):
        key = job.key()
        once = crash_dir / f"{key}.once"
        if (crash_dir / f"{key}.always").exists() or _take(once):
            with open(crash_dir / f"{key}.deaths", "a") as fh:
                fh.write(f"{os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return run(self, job)

    EpisodeRunner.run = run_or_die


def _take(marker: Path) -> bool:
    try:
        marker.unlink()
    except FileNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    ray = pytest.importorskip("ray")
    from rapid_env.eval.backends.ray_backend import RayBackend

    crash_dir = tmp_path_factory.mktemp("ray-crash")
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    t0 = time.perf_counter()
    backend = RayBackend(workers=2, runtime_env={
        "env_vars": {CRASH_DIR_VAR: str(crash_dir), "PYTHONPATH": path},
        "worker_process_setup_hook": f"{__name__}._crash_hook",
    })
    print(f"ray cluster up in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    assert ray.is_initialized() and ray.cluster_resources()["CPU"] == 2
    yield backend, crash_dir
    backend.close()
    assert not ray.is_initialized()


def _strip(record):
    return {k: v for k, v in record.items() if k not in WALL_CLOCK_FIELDS}


def _by_key(path):
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    by_key = {r[KEY_FIELD]: _strip(r) for r in recs}
    assert len(by_key) == len(recs)
    return by_key


def test_ray_backend_gives_the_serial_records(cluster, tmp_path):
    args = ["--tasks", "reach,push", "--agents", "cloud-only,rapid", "--episodes", "2",
            "--policy", "expert", "--max-episode-s", "1", "--image-size", "16",
            "--wandb", "disabled", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "serial")]) == 0
    # this process holds the module's cluster: the CLI's backend uses it and leaves it running
    assert main([*args, "--backend", "ray", "--out", str(tmp_path / "ray")]) == 0
    serial, par = _by_key(tmp_path / "serial" / "episodes.jsonl"), _by_key(
        tmp_path / "ray" / "episodes.jsonl")
    assert len(serial) == 8 and par == serial
    assert all(r["fault"] is None for r in par.values())
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["sweep"] == json.loads((tmp_path / "serial" / "manifest.json").read_text())[
        "sweep"]


def test_a_libero_sweep_on_ray_gives_the_serial_records(cluster, tmp_path):
    """LIBERO's tasks (robosuite, two cameras, 7-D actions) run in Ray's workers unchanged."""
    args = ["--tasks", "libero_object/0,libero_spatial/0", "--agents", "cloud-only,rapid",
            "--episodes", "1", "--policy", "expert", "--max-episode-s", "0.5",
            "--image-size", "16", "--wandb", "disabled", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "serial")]) == 0
    assert main([*args, "--backend", "ray", "--out", str(tmp_path / "ray")]) == 0
    serial, par = _by_key(tmp_path / "serial" / "episodes.jsonl"), _by_key(
        tmp_path / "ray" / "episodes.jsonl")
    assert len(serial) == 4 and par == serial
    assert {r["task"] for r in par.values()} == {"libero_object/0", "libero_spatial/0"}
    assert all(r["fault"] is None and r["invalid"] is None for r in par.values())


def _jobs(episodes):
    base = EnvConfig(policy="expert", max_episode_s=0.5, image_size=16)
    return plan(SweepSpec(tasks=("reach",), agents=("cloud-only", "rapid"), episodes=episodes,
                          seed=1000, base=base))


def test_a_worker_killed_mid_sweep_costs_one_retry_of_its_episode(cluster):
    backend, crash_dir = cluster
    jobs = _jobs(4)
    victim = jobs[3].key()
    (crash_dir / f"{victim}.once").touch()
    records = list(backend.run(jobs))
    assert (crash_dir / f"{victim}.deaths").read_text().count("\n") == 1  # it did die, once
    counts = Counter(r[KEY_FIELD] for r in records)
    assert sorted(counts) == sorted(j.key() for j in jobs) and set(counts.values()) == {1}
    serial = {r[KEY_FIELD]: _strip(r) for r in SerialBackend().run(jobs)}
    assert {r[KEY_FIELD]: _strip(r) for r in records} == serial
    assert not any(is_episode_error(r) for r in records)


def test_an_episode_whose_worker_always_dies_becomes_an_episode_error(cluster):
    from rapid_env.eval.backends.ray_backend import MAX_RETRIES

    backend, crash_dir = cluster
    jobs = _jobs(1)
    doomed = jobs[0].key()
    (crash_dir / f"{doomed}.always").touch()
    records = {r[KEY_FIELD]: r for r in backend.run(jobs)}
    assert len(records) == 2
    assert (crash_dir / f"{doomed}.deaths").read_text().count("\n") == MAX_RETRIES + 1
    assert records[doomed]["fault"] == (
        f"episode_error: worker process died {MAX_RETRIES + 1} times running this episode")
    assert records[doomed]["agent"] == "cloud-only" and records[doomed]["success"] is False
    assert not is_episode_error(records[jobs[1].key()])


def test_without_ray_the_backend_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ValueError, match=r"pip install 'rapid-env\[ray\]'"):
        make_backend("ray")


def test_without_ray_the_cli_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["--tasks", "reach", "--agents", "rapid", "--episodes", "1", "--backend", "ray",
                 "--out", str(tmp_path / "r")]) == 2
    assert "--backend ray needs Ray" in capsys.readouterr().err
