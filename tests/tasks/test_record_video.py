"""Gymnasium's own video tooling on our envs: RecordVideo writes an MP4 at the control rate."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.wrappers import RecordVideo

import rapid_env  # noqa: F401  (registers the ids)

pytest.importorskip("moviepy")
iio = pytest.importorskip("imageio.v2")


def _decode(path: Path) -> tuple[int, float, tuple[int, ...]]:
    reader = iio.get_reader(path, format="FFMPEG")
    try:
        frames = [f for f in reader]
        fps = float(reader.get_meta_data()["fps"])
    finally:
        reader.close()
    return len(frames), fps, frames[0].shape


def _record(env: gym.Env, folder: Path, steps: int) -> Path:
    folder = folder / "videos"  # a new folder: RecordVideo warns when it exists
    env = RecordVideo(env, str(folder), episode_trigger=lambda _: True, disable_logger=True)
    env.reset(seed=1000)
    for _ in range(steps):
        env.step(env.action_space.sample() * 0)
    env.close()  # stops the recording: the MP4 is written now
    videos = sorted(folder.glob("*.mp4"))
    assert len(videos) == 1, videos
    return videos[0]


@pytest.mark.parametrize("control_hz", [20.0, 40.0])
def test_task_env_records_an_mp4_at_the_control_rate(tmp_path: Path, control_hz: float) -> None:
    env = gym.make("rapid_env/reach-v3", render_mode="rgb_array", image_size=32,
                   control_hz=control_hz)
    assert env.metadata["render_fps"] == control_hz
    other = gym.make("rapid_env/reach-v3")
    assert other.metadata["render_fps"] == 20  # per instance, the class keeps its default
    other.close()
    path = _record(env, tmp_path, steps=4)
    assert path.stat().st_size > 0
    n, fps, shape = _decode(path)
    assert n == 5  # the reset frame and one per step
    assert fps == pytest.approx(control_hz)
    assert shape[:2] == (32, 32)


def test_rapid_env_records_an_mp4(tmp_path: Path) -> None:
    env = gym.make("rapid_env/Rapid-v0", render_mode="rgb_array", task="reach", policy="expert",
                   link="ideal", image_size=32, max_episode_s=1.0)
    assert env.metadata["render_fps"] == 20
    path = _record(env, tmp_path, steps=3)
    n, fps, shape = _decode(path)
    assert n == 4
    assert fps == pytest.approx(20.0)
    assert shape[:2] == (32, 32)
