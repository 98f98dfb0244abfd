"""rapid-gallery writes a grid with one row per single-frame noise."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from rapid_env.cli.gallery import main
from rapid_env.noise.sensor import SENSOR_NAMES
from rapid_env.noise.spec import NOISE_NAMES


def test_gallery_grid_has_a_row_per_noise_and_six_columns(tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    assert main(["--task", "reach", "--size", "16", "--out", str(out)]) == 0
    rows = len([n for n in NOISE_NAMES if n not in SENSOR_NAMES])
    w, h = Image.open(out).size
    assert (w - 110, h - 14) == (6 * 16, rows * 16)

