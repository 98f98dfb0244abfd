"""The W&B runs of a sweep and of the trainers, read back from the offline run folders.

Offline runs keep config, summary, artifacts and history only in the binary ``run-<id>.wandb``
log (no ``wandb-summary.json`` or ``config.yaml`` is written offline); :func:`log_records` reads
it (a LevelDB-style log of 32 KiB blocks holding protobuf ``Record`` messages), so the tests
check what ``wandb sync`` would upload: the run's project, entity, group, name and job type (its
``run`` record), its config, its history and its summary.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rapid_env import wandb_mode
from rapid_env.eval import wandb_log, wandb_tables
from rapid_env.eval.charts import Chart, Series
from rapid_env.eval.jobs import SweepSpec
from rapid_env.eval.store import make_manifest
from rapid_env.eval.summary import summarize
from rapid_env.eval.wandb_log import (
    ARTIFACT_TYPE,
    CONFIG_FILE,
    SWEEP_JOB_TYPE,
    SweepLogger,
    api_key_configured,
    artifact_name,
    chart_table,
    resolve_mode,
)

SMALL = ["--episodes", "1", "--policy", "expert", "--image-size", "16", "--max-episode-s", "0.5",
         "--quiet", "--wandb", "offline", "--no-report"]


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Isolate from the machine: no key, an empty home, no netrc, no inherited mode or project."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("WANDB_API_KEY", "WANDB_MODE", "NETRC", "WANDB_BASE_URL", "WANDB_DIR",
                "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


def episode(seed: int, **overrides: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "task": "reach",
        "agent": "rapid",
        "noise": "clean",
        "link": "wifi",
        "seed": seed,
        "success": seed != 1,
        "steps": 50,
        "sim_time_s": 2.5,
        "inferences": 5,
        "offloads": 2,
        "latency_ms_mean": 42.5,
        "latency_ms_p95": 80.0,
        "bytes_up": 123456,
        "bytes_down": 789,
        "stall_steps": 3,
        "rms_jerk": 1.25,
        "ldlj": -7.5,
        "sparc": float("nan"),
        "wall_time_s": 0.2,
        "fault": None if seed != 2 else "NaN action",
    }
    rec.update(overrides)
    return rec


def manifest(agents: tuple[str, ...] = ("rapid",), episodes: int = 4) -> dict[str, Any]:
    """A real manifest of a reach x ``agents`` sweep on the wifi link (the store's own)."""
    spec = SweepSpec(tasks=("reach",), agents=agents, links=("wifi",), episodes=episodes)
    return make_manifest(spec)


def test_resolve_mode_without_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert not api_key_configured()
    assert resolve_mode(None) == "offline"
    assert resolve_mode("offline") == "offline"
    assert resolve_mode("disabled") == "disabled"
    assert capsys.readouterr().err == ""
    assert resolve_mode("online") == "offline"
    assert "no API key" in capsys.readouterr().err


def test_resolve_mode_with_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode(None) == "online"
    assert resolve_mode("online") == "online"
    assert resolve_mode("offline") == "offline"


def test_resolve_mode_with_netrc(no_credentials: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc_file = no_credentials / ".netrc"
    netrc_file.write_text("machine example.org\n  login user\n  password secret\n")
    netrc_file.chmod(0o600)
    assert resolve_mode(None) == "offline"  # another host's entry does not count
    netrc_file.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    assert resolve_mode(None) == "online"
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org:8443")
    assert resolve_mode(None) == "offline"  # key for the cloud, not for the private server


def test_resolve_mode_env_default_and_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode(None) == "disabled"
    with pytest.raises(ValueError, match=r"'shared'.*offline, online, disabled"):
        resolve_mode("shared")


def test_project_and_entity_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    assert wandb_mode.resolve_project(None) == wandb_mode.PROJECT == "rapid-env"
    assert wandb_mode.resolve_entity(None) is None
    monkeypatch.setenv("WANDB_PROJECT", "x")
    monkeypatch.setenv("WANDB_ENTITY", "team-e")
    assert wandb_mode.resolve_project(None) == "x"
    assert wandb_mode.resolve_project("y") == "y"  # the flag wins over the variable
    assert wandb_mode.resolve_entity(None) == "team-e"
    assert wandb_mode.resolve_entity("me") == "me"
    with pytest.raises(ValueError, match=r"--project 'a/b' is not a W&B project name"):
        wandb_mode.resolve_project("a/b")
    monkeypatch.setenv("WANDB_PROJECT", "bad:name")
    with pytest.raises(ValueError, match="WANDB_PROJECT 'bad:name'"):
        wandb_mode.resolve_project(None)


def test_disabled_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    logger = SweepLogger("disabled", out)
    m = manifest()
    assert logger.open(m) is False
    assert "wandb_runs" not in m and "wandb_run_id" not in m  # no ids for runs never made
    logger.log_episode(episode(0))
    logger.finish(summarize([episode(0)]))
    logger.finish([])  # idempotent
    assert logger.run_dir is None and logger.run_ids == {}
    assert not out.exists()


def test_exception_inside_block_closes_every_run(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with SweepLogger("offline", tmp_path) as lg:
            lg.open(manifest())
            lg.log_episode(episode(0))  # opens the cell's run
            raise RuntimeError("boom")
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(list(r.glob("*.wandb")) for r in runs)
    for run_dir in runs:
        exits = of_kind(log_records(run_dir), "exit")
        assert exits and exits[-1].exit_code == 1  # marked failed
    with pytest.raises(RuntimeError, match="after finish"):
        lg.log_episode(episode(1))


def test_scalar_conversion() -> None:
    import numpy as np

    assert wandb_tables.scalar(True) == 1
    assert wandb_tables.scalar(np.float32(2.5)) == 2.5
    assert wandb_tables.scalar("text") is None
    assert wandb_tables.scalar(None) is None
    assert math.isnan(wandb_tables.scalar(float("nan")))  # type: ignore[arg-type]


def test_flat_cell_config_summary_and_table_rows() -> None:
    m = manifest(agents=("rapid", "cloud-only"), episodes=3)
    config = wandb_tables.cell_config(
        m, {"task": "reach", "agent": "cloud-only", "noise": "clean", "link": "wifi"},
        {"backend": "local"})
    assert list(config)[:4] == ["agent", "task", "noise", "link"]
    assert (config["agent"], config["task"], config["noise"], config["link"]) == (
        "cloud-only", "reach", "clean", "wifi")
    for key in ("policy", "profile", "edge", "cloud", "control_hz", "chunk_size", "image_size",
                "max_episode_s", "hold_policy", "align"):
        assert key in config, key
    assert not any(isinstance(v, dict) for v in config.values())  # flat: the UI groups on it
    assert (config["episodes"], config["seed_first"], config["backend"]) == (3, 0, "local")
    assert config["cell"] == "cloud-only|reach|clean|wifi"
    sweep = wandb_tables.sweep_config(m)
    assert sweep["agents"] == ["rapid", "cloud-only"] and sweep["cells"] == 2
    assert "task" not in sweep and "noise" not in sweep  # the base env's are only the first ones

    (row,) = summarize([episode(0), episode(1)])
    values = wandb_tables.cell_summary(row)
    assert values["success_rate"] == 0.5 and values["latency_ms_mean"] == 42.5
    assert "sparc" not in values  # NaN: left out
    assert not [k for k in values if k.endswith("_nan")] and "task" not in values
    fields = wandb_tables.table_row_fields({"seed": 1, "media": {"video": "videos/a/seed1.mp4"}})
    assert fields == {"seed": 1, "media.video": "videos/a/seed1.mp4"}


# --------------------------------------------------------------------------- reading a run back
def _chunks(data: bytes) -> Iterator[bytes]:
    """The records of a W&B LevelDB-style log: 7-byte header, 32 KiB blocks, 7-byte chunk heads."""
    block, pos, pending = 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk head is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            return
        if kind == 1:  # full
            yield chunk
        elif kind == 2:  # first
            pending = chunk
        elif kind == 3:  # middle
            pending += chunk
        elif kind == 4:  # last
            yield pending + chunk
            pending = b""


def log_records(run_dir: Path) -> list[Any]:
    """Every protobuf Record of the run's ``.wandb`` log."""
    from wandb.proto import wandb_internal_pb2 as pb

    (log_file,) = run_dir.glob("run-*.wandb")
    records = []
    for raw in _chunks(log_file.read_bytes()):
        record = pb.Record()  # type: ignore[attr-defined]  # generated protobuf module
        record.ParseFromString(raw)
        records.append(record)
    return records


def of_kind(records: list[Any], kind: str) -> list[Any]:
    return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def final_summary(records: list[Any]) -> dict[str, Any]:
    """The run summary as ``wandb sync`` would upload it: the last value of every key."""
    out: dict[str, Any] = {}
    for summary in of_kind(records, "summary"):
        for item in summary.update:
            out[item.key or ".".join(item.nested_key)] = json.loads(item.value_json)
    return out


def run_config(records: list[Any]) -> dict[str, Any]:
    (run,) = of_kind(records, "run")
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    for update in of_kind(records, "config"):
        config.update({item.key: json.loads(item.value_json) for item in update.update})
    return config


def run_dirs(out: Path) -> list[Path]:
    return sorted((out / "wandb").glob("offline-run-*"))


def one_run_dir(out: Path) -> Path:
    (run_dir,) = run_dirs(out)
    return run_dir


def the_run(run_dir: Path) -> Any:
    (run,) = of_kind(log_records(run_dir), "run")
    return run


def by_name(out: Path) -> dict[str, Path]:
    """Each run folder of a sweep by its run's display name."""
    return {the_run(d).display_name: d for d in run_dirs(out)}


def history(records: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for h in of_kind(records, "history"):
        rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                     for item in h.item})
    return rows


def staged_table(run_dir: Path, key: str) -> tuple[dict[str, Any], list[str]]:
    """The ``run_table`` artifact of a logged table: its JSON (as uploaded) and its file paths."""
    run_id = the_run(run_dir).run_id
    (artifact,) = [a for a in of_kind(log_records(run_dir), "artifact")
                   if a.type == "run_table" and a.name == f"run-{run_id}-{key}"]
    paths = {c.path: c.local_path for c in artifact.manifest.contents}
    (table,) = [p for p in paths if p.endswith(".table.json")]
    return json.loads(Path(paths[table]).read_text()), sorted(paths)


# --------------------------------------------------------------------------- the sweep's runs
def test_mode_resolution_lives_in_the_utility_layer() -> None:
    assert wandb_log.resolve_mode is wandb_mode.resolve_mode
    assert wandb_log.api_key_configured is wandb_mode.api_key_configured
    assert wandb_log.MODES == wandb_mode.MODES == ("offline", "online", "disabled")
    assert wandb_mode.sync_hint("online", Path("r"), "https://w/b") == "W&B run: https://w/b"
    assert wandb_mode.sync_hint("offline", Path("o/wandb/offline-run-x"), None) == (
        "W&B run saved offline; upload it with: wandb sync o/wandb/offline-run-x")
    assert wandb_mode.sync_hint("disabled", None, None) is None


def test_a_sweep_leaves_a_run_per_cell_and_a_sweep_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """2 agents x 2 tasks: four cell runs with flat keys, one sweep run, one group, project x."""
    from rapid_env.cli.eval import main

    monkeypatch.setenv("WANDB_PROJECT", "x")
    out = tmp_path / "sweep-7"
    assert main([
        "--tasks", "reach,push", "--agents", "rapid,edge-only", "--episodes", "2",
        "--policy", "expert", "--image-size", "16", "--max-episode-s", "0.5", "--quiet",
        "--wandb", "offline",
        "--tags", "smoke, ci,,smoke", "--job-type", "eval-smoke", "--out", str(out),
    ]) == 0
    runs = by_name(out)
    cells = {f"{a}|{t}|clean|constant:20:40" for a in ("rapid", "edge-only")
             for t in ("reach", "push")}
    assert set(runs) == cells | {"sweep|sweep-7"}
    manifest_ = json.loads((out / "manifest.json").read_text())
    rows = {(r["task"], r["agent"]): r for r in json.loads((out / "summary.json").read_text())}
    for name, run_dir in runs.items():
        records = log_records(run_dir)
        (run,) = of_kind(records, "run")
        assert (run.project, run.run_group, list(run.tags)) == ("x", "sweep-7", ["smoke", "ci"])
        if name not in cells:
            continue
        agent, task = name.split("|")[:2]
        assert run.job_type == "eval-smoke"
        assert run.run_id == manifest_["wandb_runs"][name]  # kept for a resume
        config = run_config(records)
        assert (config["agent"], config["task"], config["noise"]) == (agent, task, "clean")
        assert (config["episodes"], config["seed_first"], config["image_size"]) == (2, 1000, 16)
        steps = [h for h in history(records) if "episode" in h]
        assert [h["episode"] for h in steps] == [0, 1]  # this cell's episodes, and only those
        assert sorted(h["episode/seed"] for h in steps) == [1000, 1001]
        summary = final_summary(records)
        row = rows[(task, agent)]
        assert summary["success_rate"] == row["success_rate"]  # the printed table's numbers
        finite = {k: v for k, v in row.items() if isinstance(v, int | float)
                  and math.isfinite(v) and not k.endswith("_nan")}
        assert {"steps", "sim_time_s", "stall_steps"} <= set(finite)
        assert {k: summary[k] for k in finite} == pytest.approx(finite)
        assert not [k for k in summary if k.startswith("episode/") or k == "episode"]

    sweep_dir = runs["sweep|sweep-7"]
    records = log_records(sweep_dir)
    (run,) = of_kind(records, "run")
    assert run.job_type == SWEEP_JOB_TYPE and run.run_id == manifest_["wandb_run_id"]
    config = run_config(records)
    assert config["tasks"] == ["reach", "push"] and config["agents"] == ["rapid", "edge-only"]
    assert (config["backend"], config["workers"], config["cells"]) == ("local", 1, 4)
    summary = final_summary(records)
    assert summary["sweep/episodes"] == 8 and summary["sweep/cells"] == 4
    assert summary["sweep/episode_errors"] == 0
    media = sweep_dir / "files" / "media"
    images = sorted(p.name.split("_")[0] for p in (media / "images" / "figures").glob("*.png"))
    chart_tables = list((media / "table" / "charts").glob("*.table.json"))
    assert images and "success" in images and len(chart_tables) >= 5
    success = json.loads(next(p for p in chart_tables if p.name.startswith("success_by_agent"))
                         .read_text())
    assert {"low", "high", "series", "label"} <= set(success["columns"])
    assert list((media / "html").glob("report_*.html"))  # report.html, viewable in W&B
    (paired,) = list((media / "table").glob("paired_*.table.json"))  # paired.csv, in W&B too
    paired_table = json.loads(paired.read_text())
    assert {"agent", "baseline", "n_pairs", "d_success"} <= set(paired_table["columns"])
    assert len(paired_table["data"]) == 2  # edge-only vs rapid, on each task
    (artifact,) = [a for a in of_kind(records, "artifact") if a.type == ARTIFACT_TYPE]
    assert artifact.name == "sweep-7"
    assert {c.path for c in artifact.manifest.contents} >= {
        "manifest.json", "episodes.jsonl", "summary.json", "summary.csv", "report.html"}
    assert f"wandb sync {out / 'wandb'}/offline-run-*" in capsys.readouterr().err


def test_project_flag_overrides_the_variable_and_entity_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rapid_env.cli.eval import main

    monkeypatch.setenv("WANDB_PROJECT", "x")
    out = tmp_path / "p"
    assert main(["--tasks", "reach", "--agents", "rapid", *SMALL, "--project", "y",
                 "--entity", "team-z", "--group", "study-a", "--out", str(out)]) == 0
    runs = [the_run(d) for d in run_dirs(out)]
    assert len(runs) == 2
    assert {(r.project, r.entity, r.run_group) for r in runs} == {("y", "team-z", "study-a")}


def test_a_bad_project_name_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rapid_env.cli.eval import main

    assert main(["--tasks", "reach", "--agents", "rapid", *SMALL, "--project", "a/b",
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--project 'a/b'" in err
    assert not (tmp_path / "bad" / "wandb").exists()


def test_a_resumed_sweep_logs_into_the_same_runs(tmp_path: Path) -> None:
    """--extend to a second seed: the cell's and the sweep's runs are reopened by their ids."""
    from rapid_env.cli.eval import main

    out = tmp_path / "r"
    argv = ["--tasks", "reach", "--agents", "rapid", *SMALL, "--out", str(out)]
    assert main(argv) == 0
    first = json.loads((out / "manifest.json").read_text())
    before = {d.name for d in run_dirs(out)}
    assert main([*argv[:argv.index("--episodes")], "--episodes", "2",
                 *argv[argv.index("--episodes") + 2:], "--extend"]) == 0
    second = json.loads((out / "manifest.json").read_text())
    assert second["wandb_runs"] == first["wandb_runs"]
    assert second["wandb_run_id"] == first["wandb_run_id"]
    new = [d for d in run_dirs(out) if d.name not in before]
    ids = {the_run(d).run_id for d in new}
    assert ids == {first["wandb_run_id"], *first["wandb_runs"].values()}
    (cell_dir,) = [d for d in new if the_run(d).run_id != first["wandb_run_id"]]
    records = log_records(cell_dir)
    assert [h["episode"] for h in history(records) if "episode" in h] == [1]  # the new seed
    assert final_summary(records)["episodes"] == 2  # the stored seed counts in the summary


def test_cell_summary_and_sweep_aggregates(tmp_path: Path) -> None:
    records = [episode(s) for s in range(3)]
    records.append(episode(3, success=False, latency_ms_mean=None,
                           fault="episode_error: RuntimeError: boom"))
    logger = SweepLogger("offline", tmp_path, group="g")
    logger.open(manifest())
    for rec in records:
        logger.log_episode(rec)
    logger.finish(summarize(records))
    runs = by_name(tmp_path)
    cell = final_summary(log_records(runs["rapid|reach|clean|wifi"]))
    # the episode error is invalid: counted in episodes and invalid, left out of the rest
    assert cell["success_rate"] == pytest.approx(2 / 3) and cell["episodes"] == 4
    assert cell["valid"] == 3 and cell["invalid"] == 1
    assert cell["faults"] == 1 and cell["episode_errors"] == 1
    assert cell["latency_ms_mean"] == pytest.approx(42.5)
    summary = final_summary(log_records(runs[f"sweep|{tmp_path.name}"]))
    assert summary["sweep/episodes"] == 4
    assert summary["sweep/cells"] == 1
    assert summary["sweep/success_rate"] == pytest.approx(2 / 3)  # errors did not run: left out
    assert summary["sweep/latency_ms_mean"] == pytest.approx(42.5)
    assert summary["sweep/faults"] == 1 and summary["sweep/episode_errors"] == 1
    assert summary["sweep/valid"] == 3 and summary["sweep/invalid"] == 1
    assert summary["success_rate/rapid|reach|clean|wifi"] == pytest.approx(2 / 3)
    # no store files in out_dir: no artifact, and nothing else breaks
    assert not [a for a in of_kind(log_records(runs[f"sweep|{tmp_path.name}"]), "artifact")
                if a.type == ARTIFACT_TYPE]
    copy = json.loads((runs["rapid|reach|clean|wifi"] / "files" / CONFIG_FILE).read_text())
    assert copy["agent"] == "rapid" and copy["link"] == "wifi"


def test_group_tags_job_type_and_ids_reach_wandb_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    seen: list[dict[str, Any]] = []

    class FakeRun:
        url = None

        def __init__(self, run_id: str) -> None:
            self.id, self.dir = run_id, str(tmp_path / "wandb" / run_id / "files")

        def define_metric(self, *args: Any, **kwargs: Any) -> None:
            pass

        def log(self, *args: Any, **kwargs: Any) -> None:
            pass

    def fake_init(**kwargs: Any) -> FakeRun:
        seen.append(kwargs)
        return FakeRun(kwargs["id"])

    monkeypatch.setattr(wandb, "init", fake_init)
    m = manifest()
    logger = SweepLogger("offline", tmp_path / "out-9", group="g", tags=("a", "b"),
                         job_type="eval-x", project="p", entity="e")
    assert logger.open(m) is True
    assert m["wandb_run_id"] and m["wandb_runs"]
    logger.log_episode(episode(0))
    sweep, cell = seen
    assert (sweep["group"], sweep["tags"], sweep["job_type"]) == ("g", ["a", "b"], SWEEP_JOB_TYPE)
    assert (cell["group"], cell["job_type"], cell["name"]) == ("g", "eval-x",
                                                             "rapid|reach|clean|wifi")
    assert sweep["id"] == m["wandb_run_id"]
    assert cell["id"] == m["wandb_runs"]["rapid|reach|clean|wifi"]
    assert sweep["resume"] == cell["resume"] == "allow"
    assert {(k["project"], k["entity"]) for k in seen} == {("p", "e")}
    again = SweepLogger("offline", tmp_path / "out-9")
    assert again.open(m) is False  # the ids are kept: nothing to write
    assert seen[-1]["group"] == "out-9"  # default group: the results folder's name


def test_cli_flags_for_the_runs() -> None:
    from rapid_env.cli.eval import build_parser

    args = build_parser().parse_args(["--group", "g", "--tags", "a, b,,a", "--project", "p",
                                      "--entity", "e"])
    assert (args.group, args.tags, args.job_type) == ("g", ("a", "b"), "eval")
    assert (args.project, args.entity) == ("p", "e")
    args = build_parser().parse_args([])
    assert (args.group, args.tags, args.job_type, args.project, args.entity) == (
        None, (), "eval", None, None)


def _chart(kind: str, n_series: int = 1, x: list[Any] | None = None) -> Chart:
    xs: list[Any] = x or ["rapid", "edge-only"]
    series = [
        Series(label=f"s{i}", x=xs, y=[1.0 + i, float("nan")], low=[0.5, 0.1], high=[1.5, 0.9])
        for i in range(n_series)
    ]
    return Chart(name=f"c_{kind}", title="T", kind=kind, x_label="agent",  # type: ignore[arg-type]
                 y_label="success rate", series=series)


def test_chart_tables_keep_intervals_series_and_stages() -> None:
    columns, data, role = chart_table(_chart("bar", n_series=2))
    assert columns == ["agent", "series", "success rate", "low", "high", "label"]
    assert data[0] == ["rapid", "s0", 1.0, 0.5, 1.5, "rapid | s0"]
    assert data[1][2] is None  # NaN is a missing value, never a point
    assert role == {"x": "agent", "y": "success rate", "label": "label", "series": "series"}
    assert chart_table(_chart("bar"))[1][0][-1] == "rapid"  # one series: plain labels
    columns, data, role = chart_table(_chart("stacked_bar", n_series=2))
    assert columns == ["agent", "stage", "success rate", "label"]
    assert [row[1] for row in data] == ["s0", "s0", "s1", "s1"] and data[0][3] == "rapid"
    columns, data, role = chart_table(_chart("line", x=["clean", "fog:3"]))
    assert columns == ["series", "agent", "step", "success rate", "low", "high"]
    assert [row[2] for row in data] == [0, 1]  # categories become positions
    assert [row[2] for row in chart_table(_chart("line", x=[0.5, 2.0]))[1]] == [0.5, 2.0]
    columns, data, role = chart_table(_chart("scatter", x=[10.0, 20.0]))
    assert columns == ["series", "agent", "success rate", "low", "high"]
    assert artifact_name(Path("runs/my sweep!")) == "my-sweep"


def test_a_chart_that_fails_does_not_lose_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rapid_env.eval import charts

    def broken(chart: Chart, *args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("no renderer")

    monkeypatch.setattr(charts, "render_png", broken)
    records = [episode(s) for s in range(2)]
    with SweepLogger("offline", tmp_path) as logger:
        logger.open(manifest(episodes=2))
        for rec in records:
            logger.log_episode(rec)
        logger.finish(summarize(records))
    assert logger.run_dir is not None
    media = logger.run_dir / "files" / "media"
    assert list((media / "table" / "charts").glob("*.table.json"))  # native charts still there
    assert not (media / "images").exists()
    assert "no renderer" in capsys.readouterr().err


def test_videos_land_in_one_table_per_cell_run(tmp_path: Path) -> None:
    """--videos 2: one ``videos`` table (wandb.Video cells) and one ``series`` table per cell."""
    from rapid_env.cli.eval import main

    out = tmp_path / "vid"
    assert main([
        "--tasks", "reach", "--agents", "rapid", "--episodes", "2", "--policy", "expert",
        "--image-size", "16", "--max-episode-s", "0.5", "--quiet", "--wandb", "offline",
        "--videos", "2", "--no-report", "--out", str(out),
    ]) == 0
    runs = by_name(out)
    cell_dir = runs["rapid|reach|clean|constant:20:40"]
    table, paths = staged_table(cell_dir, "videos")
    assert table["columns"] == ["task", "agent", "noise", "link", "seed", "success", "video",
                                "still"]
    assert [row[4] for row in table["data"]] == [1000, 1001]
    assert {row[6]["_type"] for row in table["data"]} == {"video-file"}
    assert {row[7]["_type"] for row in table["data"]} == {"image-file"}
    assert len([p for p in paths if p.endswith((".mp4", ".gif"))]) == 2
    series, _ = staged_table(cell_dir, "series")
    assert series["columns"][:2] == ["seed", "t"] and {r[0] for r in series["data"]} == {1000,
                                                                                        1001}
    # bounded keys: the episode's numbers and the two tables, nothing per recorded episode
    keys = {k.split("/")[0] for h in history(log_records(cell_dir)) for k in h}
    assert keys == {"_runtime", "_step", "_timestamp", "episode", "videos", "series"}
    # the sweep run's episodes table: media as relative paths, one column per file, no JSON text
    (episodes,) = (runs["sweep|vid"] / "files" / "media" / "table").glob("episodes_*.table.json")
    data = json.loads(episodes.read_text())
    column = data["columns"].index("media.video")
    assert "media" not in data["columns"]
    assert all(row[column].startswith("videos/") for row in data["data"])


def test_start_run_honours_the_variables_for_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trainers and rapid-paper's tables run go through start_run: the variables count there."""
    from rapid_env.eval.paper_wandb import log_tables

    monkeypatch.setenv("WANDB_PROJECT", "x")
    monkeypatch.setenv("WANDB_ENTITY", "team-e")
    run = wandb_mode.start_run("offline", tmp_path / "t", job_type="train-vla", config={},
                               name="t")
    wandb_mode.finish_run(run, "offline", "rapid-train")
    assert log_tables("offline", tmp_path / "paper", {"meta": {"quick": True}}, group="g")
    for run_dir in [*run_dirs(tmp_path / "t"), *run_dirs(tmp_path / "paper")]:
        assert (the_run(run_dir).project, the_run(run_dir).entity) == ("x", "team-e")


# --------------------------------------------------------------------------- the trainers' runs
def test_train_decider_logs_sb3_metrics_and_evaluation(tmp_path: Path) -> None:
    from rapid_env.cli.train_decider import main

    out = tmp_path / "decider"
    assert main([
        "--tasks", "reach", "--timesteps", "128", "--n-steps", "64", "--batch-size", "64",
        "--n-epochs", "1", "--max-episode-s", "1", "--eval-episodes", "1", "--baselines", "",
        "--out", str(out), "--quiet", "--wandb", "offline",
    ]) == 0
    records = log_records(one_run_dir(out))
    summary = final_summary(records)
    for key in ("train/loss", "train/learning_rate", "rollout/ep_rew_mean", "time/fps",
                "eval/learned/reach/success", "eval/learned/success"):
        assert key in summary, key
    (run,) = of_kind(records, "run")
    assert run.job_type == "train-decider"
    assert run_config(records)["tasks"] == ["reach"]


def test_rapid_train_logs_losses_learning_rate_and_evaluation(tmp_path: Path) -> None:
    from rapid_env.agents.vla.demos import collect_task
    from rapid_env.cli.train import main

    collect_task("reach", 1, chunk_size=4, image_size=16).save(tmp_path / "demos.npz")
    out = tmp_path / "ckpt"
    assert main([
        "train", "--family", "chunk-regress", "--data", str(tmp_path / "demos.npz"),
        "--out", str(out), "--steps", "12", "--batch", "4", "--eval-seeds", "1",
        "--threads", "1", "--quiet", "--wandb", "offline",
    ]) == 0
    records = log_records(one_run_dir(out))
    losses = [json.loads(item.value_json) for h in of_kind(records, "history") for item in h.item
              if item.key == "train/loss" or list(item.nested_key) == ["train/loss"]]
    assert len(losses) == 3  # steps 1, 10 and the last one (12)
    summary = final_summary(records)
    assert {"train/lr", "train/loss_ema", "eval/success/reach", "eval/mean_success",
            "final_loss"} <= set(summary)
    assert run_config(records)["model"]["family"] == "chunk-regress"


def test_trainers_disabled_write_no_run(tmp_path: Path) -> None:
    import sys

    from rapid_env.cli.train_decider import main

    imported = "wandb" in sys.modules
    out = tmp_path / "decider"
    assert main([
        "--tasks", "reach", "--timesteps", "64", "--n-steps", "64", "--batch-size", "64",
        "--n-epochs", "1", "--max-episode-s", "0.5", "--eval-episodes", "0", "--baselines", "",
        "--out", str(out), "--quiet", "--wandb", "disabled",
    ]) == 0
    assert not (out / "wandb").exists()
    assert imported or "wandb" not in sys.modules


