"""rapid-fleet end to end on Meta-World: a fleet of one is rapid-eval's episode, a fleet of
eight on one GPU queues and repeats itself exactly, and the capacity search writes its table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rapid_env.cli.eval import main as rapid_eval
from rapid_env.cli.fleet import main as rapid_fleet
from rapid_env.record import FIELDS, WALL_CLOCK_FIELDS

SHORT = ["--tasks", "reach", "--max-episode-s", "1.5", "--wandb", "disabled", "--quiet"]
FLEET_SOURCE = {f.name for f in FIELDS if f.source == "fleet"}
STORE_SOURCE = {f.name for f in FIELDS if f.source == "store"}  # the results store's own


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    skip = set(WALL_CLOCK_FIELDS) | FLEET_SOURCE | STORE_SOURCE | {"episode_key"}
    return {k: v for k, v in record.items() if k not in skip}


@pytest.mark.parametrize("gpus", ["1", "unbounded"])
def test_a_fleet_of_one_is_rapid_evals_episode(tmp_path: Path, gpus: str) -> None:
    agents = "rapid,cloud-only"
    assert rapid_eval([*SHORT, "--agents", agents, "--links", "lab-wifi6", "--episodes", "1",
                       "--seed", "1000", "--out", str(tmp_path / "eval"), "--no-report"]) == 0
    assert rapid_fleet([*SHORT, "--agents", agents, "--robots", "1", "--gpus", gpus,
                        "--max-batch", "1", "--out", str(tmp_path / "fleet")]) == 0
    solo = {r["agent"]: comparable(r) for r in records(tmp_path / "eval")}
    fleet = {r["agent"]: comparable(r) for r in records(tmp_path / "fleet")}
    assert solo.keys() == fleet.keys() == {"rapid", "cloud-only"}
    for agent in solo:
        diff = {k: (solo[agent].get(k), fleet[agent].get(k))
                for k in solo[agent].keys() | fleet[agent].keys()
                if solo[agent].get(k) != fleet[agent].get(k)}
        assert diff == {}, agent


def test_eight_robots_share_a_gpu_and_repeat_exactly(tmp_path: Path) -> None:
    argv = [*SHORT, "--robots", "8", "--agents", "rapid,cloud-only", "--max-episode-s", "1"]
    for run in ("a", "b"):
        assert rapid_fleet([*argv, "--out", str(tmp_path / run)]) == 0
    a, b = records(tmp_path / "a"), records(tmp_path / "b")
    assert len(a) == 16
    assert [comparable(r) for r in a] == [comparable(r) for r in b]
    assert [r["episode_key"] for r in a] == [r["episode_key"] for r in b]
    assert any(r["queue_ms_mean"] > 0 for r in a)
    rows = json.loads((tmp_path / "a" / "fleet_summary.json").read_text())
    assert {r["agent"] for r in rows} == {"rapid", "cloud-only"}
    assert all(0 < r["gpu_util"] <= 1 and r["latency_ms_p95"] > 0 for r in rows)
    # the same command again resumes: nothing runs twice
    assert rapid_fleet([*argv, "--out", str(tmp_path / "a")]) == 0
    assert len(records(tmp_path / "a")) == 16


def test_capacity_writes_robots_per_gpu(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cap"
    offline = [a for a in SHORT if a != "disabled"]
    offline[offline.index("--wandb") + 1:offline.index("--wandb") + 1] = ["offline"]
    assert rapid_fleet([*offline, "--capacity", "--slo-p95-ms", "120", "--agents", "cloud-only",
                        "--max-robots", "4", "--max-episode-s", "1", "--out", str(out)]) == 0
    rows = json.loads((out / "capacity.json").read_text())["rows"]
    assert [r["agent"] for r in rows] == ["cloud-only"]
    row = rows[0]
    assert 1 <= row["robots"] <= 4 and row["robots_per_gpu"] == row["robots"]
    assert str(row["robots"]) in json.dumps(row["probes"])
    assert "robots per GPU" in capsys.readouterr().out
    tables = {p.name.split("_")[0] for p in out.glob("wandb/offline-run-*/files/media/table/*")}
    assert tables == {"capacity", "latency"}  # the table, and p95 against robots


@pytest.mark.parametrize(("argv", "says"), [
    (["--gpus", "0"], "--gpus"),
    (["--max-batch", "0"], "--max-batch 0"),
    (["--max-wait-ms", "-1"], "--max-wait-ms -1"),
    (["--cell", "fast"], "'fast'"),
    (["--capacity"], "--slo-p95-ms"),
    (["--robots", "0"], "'0'"),
    (["--agents", "nope"], "nope"),
])
def test_bad_flags_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], says: str
) -> None:
    assert rapid_fleet([*SHORT, *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_replay_and_gpus_needed_from_a_recorded_fleet(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    base = [*SHORT, "--agents", "cloud-only", "--max-episode-s", "1"]
    assert rapid_fleet([*base, "--robots", "2", "--gpus", "unbounded", "--out", str(rec)]) == 0
    lines = (rec / "requests.jsonl").read_text().splitlines()
    recorded = json.loads(lines[0])
    assert recorded["agent"] == "cloud-only" and len(recorded["timelines"]) == 2
    assert all(len(gaps) == 2 and back > t for robot in recorded["timelines"]
               for t, _, gaps, back in robot)
    out = tmp_path / "replay"
    assert rapid_fleet([*base, "--replay", str(rec), "--robots", "2,200", "--gpus", "1",
                        "--out", str(out)]) == 0
    rows = json.loads((out / "replay_summary.json").read_text())
    assert [r["robots"] for r in rows] == [2, 200] and rows[0]["mode"] == "trace"
    assert rows[1]["latency_ms_p95"] > rows[0]["latency_ms_p95"]  # 200 robots, one GPU
    need = tmp_path / "need"
    assert rapid_fleet([*base, "--replay", str(rec), "--robots", "200", "--gpus-needed",
                        "--slo-p95-ms", "150", "--out", str(need)]) == 0
    (row,) = json.loads((need / "gpus_needed.json").read_text())["rows"]
    assert rapid_fleet([*base, "--agents", "rapid", "--replay", str(rec),
                        "--out", str(tmp_path / "no")]) == 2  # rapid was never recorded
    assert row["reachable"] and row["gpus"] > 1 and row["latency_ms_p95"] <= 150
    assert row["gpus"] >= row["gpus_floor"] >= 1  # never fewer than keep up at 100 %
    fewer = row["probes"].get(str(row["gpus"] - 1))  # one GPU fewer misses the SLO, or
    assert (fewer is not None and fewer > 150) or row["gpus"] == row["gpus_floor"]  # can't keep up


def test_fleets_on_ray_give_the_serial_records(tmp_path: Path) -> None:
    argv = [*SHORT, "--robots", "1,2", "--agents", "cloud-only", "--max-episode-s", "1"]
    assert rapid_fleet([*argv, "--out", str(tmp_path / "serial")]) == 0
    assert rapid_fleet([*argv, "--backend", "ray", "--workers", "2",
                        "--out", str(tmp_path / "ray")]) == 0
    key = "episode_key"
    serial = sorted((comparable(r) | {key: r[key]} for r in records(tmp_path / "serial")),
                    key=lambda r: r[key])
    ray = sorted((comparable(r) | {key: r[key]} for r in records(tmp_path / "ray")),
                 key=lambda r: r[key])
    assert len(serial) == 3 and serial == ray
