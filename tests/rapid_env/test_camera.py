"""The noisy camera renders at most once per tick, and only when read."""

from __future__ import annotations

import numpy as np

from rapid_env.camera import NoisyCamera
from rapid_env.noise import parse_noise


class CountingTask:
    """A task whose renders are counted: a grey frame that brightens each render."""

    max_ticks = 20
    tick_dt = 0.05
    sim_time = 0.0
    scene_hook = None

    def __init__(self) -> None:
        self.renders = 0

    def render_image(self) -> np.ndarray:
        self.renders += 1
        return np.full((8, 8, 3), 10 * self.renders, dtype=np.uint8)


def test_one_render_per_tick_shared_by_every_reader():
    task = CountingTask()
    cam = NoisyCamera(task, parse_noise("clean"))  # type: ignore[arg-type]
    cam.reset(np.random.default_rng(0))
    assert task.renders == 0  # nothing read yet: nothing rendered
    first = cam.frame()
    assert cam.frame() is first and task.renders == 1
    cam.next_tick()
    assert cam.frame()[0, 0, 0] == 20 and task.renders == 2


def test_noise_draws_from_the_episode_stream():
    frames = []
    for _ in range(2):
        cam = NoisyCamera(CountingTask(), parse_noise("gaussian_noise:3"))  # type: ignore[arg-type]
        cam.reset(np.random.default_rng(7))
        frames.append(cam.frame())
    assert np.array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[0], np.full((8, 8, 3), 10, dtype=np.uint8))


class StillTask(CountingTask):
    """The same grey frame at every render (a scene that does not move)."""

    def render_image(self) -> np.ndarray:
        self.renders += 1
        return np.full((8, 8, 3), 100, dtype=np.uint8)


def test_peek_consumes_no_noise_draw():
    """A recording (or render()) that peeks must not shift the episode's noise stream."""
    seen = []
    for peek_first in (True, False):
        cam = NoisyCamera(StillTask(), parse_noise("gaussian_noise:3"))  # type: ignore[arg-type]
        cam.reset(np.random.default_rng(7))
        if peek_first:
            peeked = cam.peek()
        seen.append(cam.frame())
        cam.next_tick()
        seen.append(cam.frame())
    assert np.array_equal(seen[0], seen[2]) and np.array_equal(seen[1], seen[3])
    assert np.array_equal(peeked, seen[0])
