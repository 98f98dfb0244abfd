"""The W&B run of a sweep and of the trainers, read back from the offline run folder.

Offline runs keep config, summary, artifacts and history only in the binary ``run-<id>.wandb``
log (no ``wandb-summary.json`` or ``config.yaml`` is written offline); :func:`log_records` reads
it (a LevelDB-style log of 32 KiB blocks holding protobuf ``Record`` messages), so the tests
check what ``wandb sync`` would upload.
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
from rapid_env.eval import wandb_log
from rapid_env.eval.charts import Chart, Series
from rapid_env.eval.summary import summarize
from rapid_env.eval.wandb_log import (
    ARTIFACT_TYPE,
    CONFIG_FILE,
    WandbLogger,
    api_key_configured,
    artifact_name,
    chart_table,
    resolve_mode,
)


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Isolate from the machine: no key, an empty home, no netrc, no inherited mode."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("WANDB_API_KEY", "WANDB_MODE", "NETRC", "WANDB_BASE_URL", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


def episode(seed: int, **overrides: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "task": "reach",
        "agent": "rapid",
        "noise": "none",
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


def test_disabled_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    logger = WandbLogger("disabled", project="p", config={"a": 1}, out_dir=out, name=None)
    logger.log_episode(episode(0))
    logger.finish(summarize([episode(0)]))
    logger.finish([])  # idempotent
    assert logger.run_dir is None
    assert not out.exists()


def test_offline_run_writes_a_real_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "results"
    config = {"tasks": ["reach-v3"], "agents": ["rapid"], "seeds": 3, "marker": "cfg-9f3a1c"}
    records = [episode(s) for s in range(3)]
    with WandbLogger(
        "online", project="rapid-env-test", config=config, out_dir=out, name="unit"
    ) as logger:
        assert logger.mode == "offline"  # no key: fell back
        for rec in records:
            logger.log_episode(rec)
        logger.finish(summarize(records))
    run_dir = logger.run_dir
    assert run_dir is not None and run_dir.parent == out / "wandb"
    assert run_dir.name.startswith("offline-run-")
    (log_file,) = run_dir.glob("*.wandb")
    raw = log_file.read_bytes()
    assert b"cfg-9f3a1c" in raw  # the config went into the run's own log
    assert b"latency_ms_mean" in raw
    copy = json.loads((run_dir / "files" / CONFIG_FILE).read_text())
    assert copy == config
    tables = list((run_dir / "files" / "media" / "table").glob("*.table.json"))
    names = sorted(p.name.split("_")[0] for p in tables)
    assert names == ["episodes", "summary"]
    episodes_table = json.loads(
        next(p for p in tables if p.name.startswith("episodes")).read_text()
    )
    assert len(episodes_table["data"]) == 3
    assert "fault" in episodes_table["columns"]


def test_exception_inside_block_closes_run(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with WandbLogger("offline", project="p", config={}, out_dir=tmp_path, name=None) as lg:
            lg.log_episode(episode(0))
            raise RuntimeError("boom")
    assert lg.run_dir is not None and list(lg.run_dir.glob("*.wandb"))
    with pytest.raises(RuntimeError, match="after finish"):
        lg.log_episode(episode(1))


def test_scalar_conversion() -> None:
    import numpy as np

    assert wandb_log._scalar(True) == 1
    assert wandb_log._scalar(np.float32(2.5)) == 2.5
    assert wandb_log._scalar("text") is None
    assert wandb_log._scalar(None) is None
    assert math.isnan(wandb_log._scalar(float("nan")))  # type: ignore[arg-type]


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


def one_run_dir(out: Path) -> Path:
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    return run_dir


# --------------------------------------------------------------------------- the sweep's run
def test_mode_resolution_lives_in_the_utility_layer() -> None:
    assert wandb_log.resolve_mode is wandb_mode.resolve_mode
    assert wandb_log.api_key_configured is wandb_mode.api_key_configured
    assert wandb_log.MODES == wandb_mode.MODES == ("offline", "online", "disabled")
    assert wandb_mode.sync_hint("online", Path("r"), "https://w/b") == "W&B run: https://w/b"
    assert wandb_mode.sync_hint("offline", Path("o/wandb/offline-run-x"), None) == (
        "W&B run saved offline; upload it with: wandb sync o/wandb/offline-run-x")
    assert wandb_mode.sync_hint("disabled", None, None) is None


def test_small_sweep_leaves_charts_images_tables_artifact_and_full_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's check: images, chart tables for >= 5 charts, an artifact, every task."""
    from rapid_env.cli.eval import main

    out = tmp_path / "sweep-7"
    assert main([
        "--tasks", "reach,push", "--agents", "rapid,edge-only", "--episodes", "1",
        "--image-size", "16", "--max-episode-s", "1", "--quiet", "--wandb", "offline",
        "--group", "study-a", "--tags", "smoke, ci,,smoke", "--job-type", "eval-smoke",
        "--out", str(out),
    ]) == 0
    run_dir = one_run_dir(out)
    media = run_dir / "files" / "media"
    images = sorted(p.name.split("_")[0] for p in (media / "images" / "figures").glob("*.png"))
    chart_tables = list((media / "table" / "charts").glob("*.table.json"))
    assert images and "success" in images
    assert len(chart_tables) >= 5
    success = json.loads(next(p for p in chart_tables if p.name.startswith("success_by_agent"))
                         .read_text())
    assert {"low", "high", "series", "label"} <= set(success["columns"])
    breakdown = json.loads(next(p for p in chart_tables if p.name.startswith("latency_breakdown"))
                           .read_text())
    assert "stage" in breakdown["columns"]

    records = log_records(run_dir)
    (artifact,) = [a for a in of_kind(records, "artifact") if a.type == ARTIFACT_TYPE]
    assert artifact.name == "sweep-7"
    assert {c.path for c in artifact.manifest.contents} >= {
        "manifest.json", "episodes.jsonl", "summary.json", "summary.csv"}

    config = run_config(records)
    manifest = json.loads((out / "manifest.json").read_text())
    assert config["sweep"] == manifest["sweep"]
    assert config["sweep"]["tasks"] == ["reach", "push"]
    assert config["sweep"]["agents"] == ["rapid", "edge-only"]
    assert config["backend"] == "local" and config["workers"] == 1
    (run,) = of_kind(records, "run")
    assert (run.run_group, list(run.tags), run.job_type) == ("study-a", ["smoke", "ci"],
                                                            "eval-smoke")

    summary = final_summary(records)
    assert summary["sweep/episodes"] == 4 and summary["sweep/cells"] == 4
    assert summary["sweep/episode_errors"] == 0
    assert 0.0 <= summary["sweep/success_rate"] <= 1.0 and summary["sweep/latency_ms_mean"] > 0
    assert set(summary["episode/success"]) == {"mean"}  # the sweep's mean, not the last episode
    assert f"wandb sync {run_dir}" in capsys.readouterr().err


def test_summary_holds_sweep_aggregates_and_means(tmp_path: Path) -> None:
    records = [episode(s) for s in range(3)]
    records.append(episode(3, success=False, latency_ms_mean=None,
                           fault="episode_error: RuntimeError: boom"))
    logger = WandbLogger("offline", project="p", config={}, out_dir=tmp_path, name="agg")
    for rec in records:
        logger.log_episode(rec)
    logger.finish(summarize(records))
    assert logger.run_dir is not None
    summary = final_summary(log_records(logger.run_dir))
    assert summary["sweep/episodes"] == 4
    assert summary["sweep/cells"] == 1
    assert summary["sweep/success_rate"] == pytest.approx(2 / 3)  # errors did not run: left out
    assert summary["sweep/latency_ms_mean"] == pytest.approx(42.5)
    assert summary["sweep/faults"] == 2 and summary["sweep/episode_errors"] == 1
    assert summary["episode/success"] == {"mean": pytest.approx(0.5)}
    assert summary["episode/latency_ms_mean"] == {"mean": pytest.approx(42.5)}
    assert summary["success_rate/reach/rapid/none/wifi"] == pytest.approx(0.5)
    # no store files in out_dir: no artifact, and nothing else breaks
    assert not [a for a in of_kind(log_records(logger.run_dir), "artifact")
                if a.type == ARTIFACT_TYPE]


def test_group_tags_and_job_type_reach_wandb_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    seen: dict[str, Any] = {}

    class FakeRun:
        id, url, dir = "abc", None, str(tmp_path / "wandb" / "run" / "files")

        def define_metric(self, *args: Any, **kwargs: Any) -> None:
            pass

    def fake_init(**kwargs: Any) -> FakeRun:
        seen.update(kwargs)
        return FakeRun()

    monkeypatch.setattr(wandb, "init", fake_init)
    WandbLogger("offline", "p", {"k": 1}, tmp_path, name="n", group="g", tags=("a", "b"),
                job_type="eval-x")
    assert (seen["group"], seen["tags"], seen["job_type"]) == ("g", ["a", "b"], "eval-x")
    WandbLogger("offline", "p", {}, tmp_path)
    assert (seen["group"], seen["tags"], seen["job_type"]) == (None, None, "eval")


def test_cli_flags_for_the_run() -> None:
    from rapid_env.cli.eval import build_parser

    args = build_parser().parse_args(["--group", "g", "--tags", "a, b,,a"])
    assert (args.group, args.tags, args.job_type) == ("g", ("a", "b"), "eval")
    args = build_parser().parse_args([])
    assert (args.group, args.tags, args.job_type) == (None, (), "eval")


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
    with WandbLogger("offline", project="p", config={}, out_dir=tmp_path, name=None) as logger:
        for rec in records:
            logger.log_episode(rec)
        logger.finish(summarize(records))
    assert logger.run_dir is not None
    media = logger.run_dir / "files" / "media"
    assert list((media / "table" / "charts").glob("*.table.json"))  # native charts still there
    assert not (media / "images").exists()
    assert "no renderer" in capsys.readouterr().err


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


def test_videos_reach_the_offline_run(tmp_path: Path) -> None:
    """--videos 1: the episode video, its still and its per-tick series land in the W&B run."""
    from rapid_env.cli.eval import main

    out = tmp_path / "vid"
    assert main([
        "--tasks", "reach", "--agents", "rapid", "--episodes", "1", "--policy", "expert",
        "--image-size", "16", "--max-episode-s", "0.5", "--quiet", "--wandb", "offline",
        "--videos", "1", "--no-report", "--out", str(out),
    ]) == 0
    media = one_run_dir(out) / "files" / "media"
    videos = list((media / "videos").rglob("*.mp4")) + list((media / "videos").rglob("*.gif"))
    assert videos, sorted(str(p.relative_to(media)) for p in media.rglob("*"))
    assert list((media / "images" / "media").glob("*.png"))
    assert [p for p in (media / "table").rglob("*.table.json") if "series" in str(p)]
