"""``rapid-gallery``: one frame per noise x severity for a task, as a labelled PNG grid.

Users look at a corruption before they trust a number measured under it. Rows are the noise
names (pixel corruptions, then in-scene disturbances), columns clean and severities 1-5; every
tile is the same task layout (``--seed``) under the noise stream ``--noise-seed``. Sensor faults
(``frame_freeze``, ``frame_drop``) act over time and have no single-frame picture, so they are left
out.

Usage: ``rapid-gallery --task push --size 96 --out docs/noise_gallery.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rapid_env.cli.common import EXIT_BAD_INPUT, UsageError, make_parser

if TYPE_CHECKING:
    from PIL import Image

LABEL_W = 110
HEADER_H = 14


def render_grid(task: str, size: int, seed: int, noise_seed: int) -> Image.Image:
    """Render the grid image (MuJoCo, the noise package and PIL load here, not at --help)."""
    import numpy as np
    from PIL import Image, ImageDraw

    from rapid_env.noise.sensor import SENSOR_NAMES
    from rapid_env.noise.spec import NOISE_NAMES, parse_noise
    from rapid_env.tasks.metaworld_task import MetaWorldTask

    names = [n for n in NOISE_NAMES if n not in SENSOR_NAMES]
    env = MetaWorldTask(task, image_size=size)
    grid = Image.new("RGB", (LABEL_W + 6 * size, HEADER_H + len(names) * size), "white")
    draw = ImageDraw.Draw(grid)
    for c, head in enumerate(["clean", "1", "2", "3", "4", "5"]):
        draw.text((LABEL_W + c * size + 2, 1), head, fill="black")
    try:
        for r, name in enumerate(names):
            draw.text((2, HEADER_H + r * size + size // 2 - 6), name, fill="black")
            for c, spec in enumerate(["clean", *[f"{name}:{s}" for s in range(1, 6)]]):
                env.reset(seed=seed)
                scenario = parse_noise(spec)
                rng = np.random.default_rng(noise_seed)
                scenario.reset(env, rng)
                tile = scenario(env.render_image(), rng)
                grid.paste(Image.fromarray(tile), (LABEL_W + c * size, HEADER_H + r * size))
    finally:
        env.scene_hook = None
        env.close()
    return grid


def build_parser() -> argparse.ArgumentParser:
    """The ``rapid-gallery`` command line."""
    p = make_parser("rapid-gallery", "One frame per noise x severity for a task, as a labelled "
                    "PNG grid.", examples=(
        "rapid-gallery --task push --size 96 --out docs/noise_gallery.png",
        "rapid-gallery --task reach --size 64 --seed 1003 --out /tmp/reach_noise.png",
    ))
    p.add_argument("--task", default="push", help="the task whose scene is drawn")
    p.add_argument("--size", type=int, default=96, help="tile side in pixels")
    p.add_argument("--seed", type=int, default=7, help="task layout seed")
    p.add_argument("--noise-seed", type=int, default=1, help="seed of the noise stream")
    p.add_argument("--out", type=Path, default=Path("docs/noise_gallery.png"),
                   help="the PNG to write")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rapid-gallery``."""
    try:
        a = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"rapid-gallery: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    grid = render_grid(a.task, a.size, a.seed, a.noise_seed)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
