"""Render the 10 MT10 tasks at reset into one PNG grid (docs/frames.png).

Why: a quick visual check that every task shows the workspace, the object and the goal from
the suite's default camera, right way up, with the visual-only goal markers applied -- the
exact pixels a VLA would get as its first observation (here at 128 px, ``fast`` quality).

Usage::

    MUJOCO_GL=egl python scripts/render_frames.py [--size 128] [--seed 0] [--out docs/frames.png]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from metaworld.env_dict import ALL_V3_ENVIRONMENTS  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from rapid_env.tasks.markers import (  # noqa: E402
    DEFAULT_CAMERA,
    MT10_TASKS,
    make_goal_visible,
    refresh_site_poses,
)
from rapid_env.tasks.rendering import CameraRenderer  # noqa: E402

_LABEL_H = 14


def render_task(task: str, size: int, seed: int, camera: str) -> np.ndarray:
    """Build ``task``, reset it with ``seed`` and return its first frame as seen by a policy."""
    env = ALL_V3_ENVIRONMENTS[task]()
    env._freeze_rand_vec = False
    env.seeded_rand_vec = True
    env._set_task_called = True
    env._partially_observable = False
    make_goal_visible(env.model, task)
    env.seed(seed)
    env.reset()
    refresh_site_poses(env.model, env.data)  # Meta-World leaves the goal site stale at reset.
    with CameraRenderer(env.model, env.data, camera, size, size) as cam:
        frame = cam.render()
    env.close()
    return frame


def main() -> None:
    """Render all tasks and write the labelled grid (5 columns x 2 rows)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--camera", default=DEFAULT_CAMERA)
    parser.add_argument("--out", type=Path, default=Path("docs/frames.png"))
    args = parser.parse_args()

    cols, size = 5, args.size
    rows = -(-len(MT10_TASKS) // cols)
    grid = Image.new("RGB", (cols * size, rows * (size + _LABEL_H)), "white")
    draw = ImageDraw.Draw(grid)
    for i, task in enumerate(MT10_TASKS):
        x, y = (i % cols) * size, (i // cols) * (size + _LABEL_H)
        grid.paste(Image.fromarray(render_task(task, size, args.seed, args.camera)), (x, y))
        draw.text((x + 2, y + size + 1), task.removesuffix("-v3"), fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print(f"wrote {args.out} ({args.camera}, {size} px, seed {args.seed})")


if __name__ == "__main__":
    main()
