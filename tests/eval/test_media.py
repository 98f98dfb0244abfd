"""Episode media: ``--videos N`` writes a video, a per-tick series and a still; 0 writes nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rapid_env.cli.eval import build_parser, main, parse_spec
from rapid_env.config import EnvConfig
from rapid_env.eval.backends.local import LocalBackend
from rapid_env.eval.execute import EpisodeRunner
from rapid_env.eval.jobs import SweepSpec, plan
from rapid_env.eval.media import (
    MEDIA_DIR,
    media_for,
    media_paths,
    safe_name,
    with_media,
    write_video,
)
from rapid_env.eval.runner import WALL_CLOCK_FIELDS, run_sweep

iio = pytest.importorskip("imageio.v2")

BASE = EnvConfig(policy="expert", image_size=32, max_episode_s=1.5)
SPEC = SweepSpec(tasks=("reach",), agents=("rapid",), noises=("clean",), links=("wifi",),
                 episodes=2, seed=1000, base=BASE)


def _plain(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in (*WALL_CLOCK_FIELDS, "media")}
            for r in records]


def _frames(path: Path) -> list[np.ndarray]:
    reader = iio.get_reader(path, format="FFMPEG")
    try:
        return [f for f in reader]
    finally:
        reader.close()


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("media")
    on = run_sweep(SPEC, root / "on", videos=1)
    off = run_sweep(SPEC, root / "off", videos=0)
    return {"root": root, "on": on, "off": off}


def test_videos_1_records_the_first_seed_of_the_cell(sweeps: dict[str, Any]) -> None:
    out = sweeps["root"] / "on"
    first, second = sweeps["on"].records
    assert "media" not in second  # only the first N seeds
    media = first["media"]
    assert set(media) == {"video", "series", "still"}
    assert media["video"] == "videos/reach/rapid/clean/wifi/seed1000.mp4"
    paths = media_for(first, out)
    assert set(paths) == {"video", "series", "still"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert media_for(second, out) == {}

    frames = _frames(paths["video"])
    assert len(frames) == first["steps"] + 1  # every tick's start, and the state after the last
    assert frames[0].shape[0] % 16 == 0 and frames[0].shape[1] == 256  # 32 px, upscaled x8

    data = json.loads(paths["series"].read_text())
    series = data["series"]
    assert len(series["t"]) == first["steps"]
    assert sum(d in ("request", "preempt") for d in series["decision"]) == first["inferences"]
    assert sum(d == "preempt" for d in series["decision"]) == first["preemptions"]
    assert "score" in series and data["meta"]["high_threshold"] == 4.0
    assert data["meta"]["success"] == first["success"]

    still = Image.open(paths["still"])
    assert still.size == (frames[0].shape[1], frames[0].shape[0])

    # the stored line carries the same paths
    stored = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert stored[0]["media"] == media
    # without the field (an older record), the fixed layout finds the same files
    assert media_for({k: v for k, v in first.items() if k != "media"}, out) == paths


def test_media_change_no_other_field(sweeps: dict[str, Any]) -> None:
    assert _plain(sweeps["on"].records) == _plain(sweeps["off"].records)


def test_videos_0_writes_nothing(sweeps: dict[str, Any]) -> None:
    out = sweeps["root"] / "off"
    assert not (out / MEDIA_DIR).exists()
    assert all("media" not in r for r in sweeps["off"].records)


def test_worker_processes_write_media_themselves(tmp_path: Path) -> None:
    spec = replace(SPEC, episodes=1)
    backend = LocalBackend(1)  # a spawned worker process, not this one
    try:
        result = run_sweep(spec, tmp_path, backend=backend, videos=1)
    finally:
        backend.close()
    (record,) = result.records
    paths = media_for(record, tmp_path)
    assert set(paths) == {"video", "series", "still"}
    assert len(_frames(paths["video"])) == record["steps"] + 1


def test_cli_flag(tmp_path: Path) -> None:
    args = ["--tasks", "reach", "--agents", "cloud-only", "--episodes", "1", "--policy", "expert",
            "--image-size", "16", "--max-episode-s", "0.5", "--wandb", "disabled", "--quiet"]
    if "--no-report" in build_parser().format_help():
        args.append("--no-report")
    assert parse_spec([*args, "--out", str(tmp_path / "p")]).videos == 0
    assert parse_spec([*args, "--videos", "2", "--out", str(tmp_path / "p")]).videos == 2
    with pytest.raises(ValueError, match="--videos"):
        parse_spec([*args, "--videos", "-1", "--out", str(tmp_path / "p")])
    assert main([*args, "--videos", "1", "--out", str(tmp_path / "r")]) == 0
    video = tmp_path / "r" / "videos" / "reach" / "cloud-only" / "clean" / "constant_20_40"
    assert sorted(p.name for p in video.iterdir()) == [
        "seed1000.mp4", "seed1000.png", "seed1000.series.json"]
    series = json.loads((video / "seed1000.series.json").read_text())["series"]
    assert "score" not in series  # cloud-only exposes no importance score


def test_runner_records_the_episode_when_media_fail(tmp_path: Path, monkeypatch) -> None:
    import rapid_env.eval.media as media

    def broken(*_: Any, **__: Any) -> dict[str, str]:
        raise OSError("disk full")

    monkeypatch.setattr(media, "write_media", broken)
    job = plan(replace(SPEC, episodes=1))[0]
    runner = EpisodeRunner()
    try:
        record = runner.run(job, media_dir=tmp_path / "videos")
        plain = runner.run(job)
    finally:
        runner.close()
    assert record["media_error"] == "OSError: disk full"
    assert "media" not in record and record.get("fault") is None
    assert _plain([{k: v for k, v in record.items() if k != "media_error"}]) == _plain([plain])


def test_recorded_jobs_keep_their_key() -> None:
    jobs = plan(SPEC)
    marked = with_media(jobs, SPEC, 1, Path("videos"))
    assert [bool(j.media_dir) for j in marked] == [True, False]
    assert [j.key() for j in marked] == [j.key() for j in jobs]  # an option, not identity
    assert [j.key() for j in marked] == [j.key() for j in jobs]
    assert [j.head() for j in marked] == [j.head() for j in jobs]
    assert with_media(jobs, SPEC, 0, Path("videos")) == jobs
    with pytest.raises(ValueError):
        with_media(jobs, SPEC, -1, Path("videos"))


def test_safe_names() -> None:
    assert safe_name("rapid(high_threshold=6,cooldown_s=0.1)") == (
        "rapid_high_threshold_6_cooldown_s_0.1")
    assert safe_name("constant:20:40") == "constant_20_40"
    assert safe_name("fog:3+camera_shake:2") == "fog_3+camera_shake_2"
    assert safe_name("..") == "_" and safe_name("/") == "_"
    a = safe_name("trace:/data/" + "x" * 100 + "/a.tsv:2")
    b = safe_name("trace:/data/" + "x" * 100 + "/b.tsv:2")
    assert len(a) <= 80 and a != b and "/" not in a
    head = {"task": "reach", "agent": "rapid(low_threshold=1)", "noise": "clean",
            "link": "trace:/tmp/t.tsv", "seed": 7}
    assert media_paths(Path("V"), head)["video"] == Path(
        "V/reach/rapid_low_threshold_1/clean/trace_tmp_t.tsv/seed7.mp4")


def test_gif_without_ffmpeg(tmp_path: Path, monkeypatch) -> None:
    import imageio_ffmpeg

    def missing() -> str:
        raise RuntimeError("no ffmpeg")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    frames = [np.full((32, 32, 3), i * 40, dtype=np.uint8) for i in range(5)]
    path = write_video(frames, tmp_path / "seed1.mp4", fps=20.0)
    assert path == tmp_path / "seed1.gif"
    assert Image.open(path).n_frames == 5
