"""In-scene disturbances: visible, seeded, and never touching the physics."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.agents.expert import ScriptedExpert
from rapid_env.noise.scene import SCENE_NAMES
from rapid_env.noise.spec import parse_noise
from rapid_env.policy import PolicyInput
from rapid_env.tasks.metaworld_task import MetaWorldTask


@pytest.fixture(scope="module")
def task() -> MetaWorldTask:
    t = MetaWorldTask("push", image_size=48)
    yield t
    t.close()


def frames(task: MetaWorldTask, spec: str, noise_seed: int, n: int = 2) -> list[np.ndarray]:
    task.reset(seed=7)
    sc = parse_noise(spec)
    rng = np.random.default_rng(noise_seed)
    sc.reset(task, rng)
    out = [sc(task.render_image(), rng) for _ in range(n)]
    task.scene_hook = None
    return out


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_scene_disturbance_changes_the_frame_and_is_seeded(task: MetaWorldTask, name: str) -> None:
    clean = frames(task, "clean", 0)[0]
    a = frames(task, f"{name}:4", 1)
    b = frames(task, f"{name}:4", 1)
    c = frames(task, f"{name}:4", 2)
    assert a[0].shape == clean.shape and a[0].dtype == np.uint8
    assert not np.array_equal(a[0], clean), f"{name} left the frame unchanged"
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_disturbance_grows_with_severity(task: MetaWorldTask, name: str) -> None:
    clean = frames(task, "clean", 0)[0].astype(float)
    err = [np.mean([np.abs(frames(task, f"{name}:{s}", k)[0] - clean).mean() for k in range(3)])
           for s in (1, 5)]
    assert err[1] > err[0]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_scene_noise_never_touches_the_physics(seed: int) -> None:
    """The expert (which reads the simulator, not the camera) moves identically under noise."""
    traces = []
    for spec in ("clean", "interference", "background:5+lighting:5"):
        t = MetaWorldTask("reach", image_size=32)
        expert = ScriptedExpert("reach-v3", chunk_size=1)
        t.reset(seed=seed)
        sc = parse_noise(spec)
        rng = np.random.default_rng(3)
        sc.reset(t, rng)
        for _ in range(30):
            sc(t.render_image(), rng)
            t.advance(expert.act(PolicyInput(None, t.proprio_vector(), t.instruction, t))[0])
        traces.append((np.asarray(t.ee_trace), t.success))
        t.close()
    for trace, success in traces[1:]:
        assert np.array_equal(trace, traces[0][0]) and success == traces[0][1]
