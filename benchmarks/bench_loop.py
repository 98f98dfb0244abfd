"""Control ticks per second: the full stack against bare Meta-World, side by side, in one run.

Four rows, each timing ``--ticks`` control ticks (20 Hz: 4 Meta-World steps each) on reach-v3:

* ``bare MW + render``: ``env.step`` x4 and one camera frame per tick (same renderer and size);
* ``rapid env, frame every tick``: the RAPID env (wrapper + controller + proprioception at every
  substep + cost model + link) with a decider that infers every tick and a policy that reads the
  frame, so one frame is rendered per tick, as in the bare row;
* ``bare MW, no render``: ``env.step`` x4;
* ``rapid env, no frame``: the RAPID env keeping a long cached chunk, so no frame is rendered.

The policy is a constant chunk, so the figures measure the harness, not a model.
Usage: ``python benchmarks/bench_loop.py [--ticks 400] [--image-size 64]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import rapid_env  # noqa: F401  (sets MUJOCO_GL)
from rapid_env.compose import make_rapid_env
from rapid_env.cost import build_cost_model
from rapid_env.cost.instant import InstantCost
from rapid_env.policy import PolicyInput
from rapid_env.tasks.metaworld_task import MetaWorldTask
from rapid_env.tasks.rendering import CameraRenderer


class ConstantPolicy:
    """A stand-in model: reads the frame when asked to, returns a fixed gentle chunk."""

    name = "constant"

    def __init__(self, chunk_size: int, needs_image: bool) -> None:
        self.chunk_size = chunk_size
        self.needs_image = needs_image

    def reset(self, rng: np.random.Generator) -> None:
        """Nothing to reset."""

    def act(self, inp: PolicyInput) -> np.ndarray:
        """Return a small back-and-forth motion."""
        if inp.image is not None:
            _ = int(inp.image[0, 0, 0])
        chunk = np.zeros((self.chunk_size, 4), dtype=np.float32)
        chunk[:, 0] = 0.05 * np.sign(np.sin(np.arange(self.chunk_size)))
        return chunk


def bare(ticks: int, size: int, render: bool) -> float:
    """Ticks per second of bare Meta-World with the same camera renderer."""
    task = MetaWorldTask("reach", image_size=size)  # only to get an identically set-up env
    task.reset(seed=0)
    mw = task.mw
    renderer = CameraRenderer(task.model, task.data, task.camera, size, size, "fast")
    a = np.array([0.05, 0.0, 0.0, 0.0], dtype=np.float32)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(ticks):
            for _ in range(task.n_mw):
                mw.step(a if i % 2 else -a)
            if render:
                renderer.render()
    rate = ticks / (time.perf_counter() - t0)
    renderer.close()
    task.close()
    return rate


def stack(ticks: int, size: int, render: bool) -> float:
    """Ticks per second of the RAPID env with a constant policy."""
    env = make_rapid_env(task="reach", image_size=size, max_episode_s=1e6, link="ideal")
    chunk = 1 if render else 10**6
    env.controller.policy = ConstantPolicy(chunk, needs_image=render)
    env.controller.cost = InstantCost(build_cost_model(profile=env.config.profile))
    env.reset(seed=0)
    n = env.controller.n_splits
    infer, keep = np.array([1, n - 1]), np.array([0, 0])
    env.step(infer)
    t0 = time.perf_counter()
    for _ in range(ticks):
        _, _, _, _, info = env.step(infer if render else keep)
        assert not info["stalled"] and (not render or "arrive" in info["events"])
    rate = ticks / (time.perf_counter() - t0)
    env.close()
    return rate


def main() -> None:
    """Print the side-by-side table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--ticks", type=int, default=400)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="best of N, to damp machine noise")
    args = p.parse_args()
    rows = []
    for label, fn, render in [
        ("bare MW + render", bare, True),
        ("rapid env, frame every tick", stack, True),
        ("bare MW, no render", bare, False),
        ("rapid env, no frame", stack, False),
    ]:
        best = max(fn(args.ticks, args.image_size, render) for _ in range(args.repeats))
        rows.append((label, best))
    print(f"{'configuration':32s} {'ticks/s':>9s} {'ms/tick':>8s}")
    for label, rate in rows:
        print(f"{label:32s} {rate:9.1f} {1e3 / rate:8.3f}")
    print(f"\nrender: rapid env / bare = {rows[1][1] / rows[0][1]:.3f} of bare ticks/s "
          f"(overhead {100 * (rows[0][1] / rows[1][1] - 1):+.1f} %)")
    print(f"no frame: rapid env / bare = {rows[3][1] / rows[2][1]:.3f} of bare ticks/s "
          f"(overhead {100 * (rows[2][1] / rows[3][1] - 1):+.1f} %)")


if __name__ == "__main__":
    main()
