"""What a configuration of the Meta-World suite is checked against, importable without MuJoCo.

:class:`rapid_env.config.EnvConfig` checks its numbers when it is made (the control rate, the camera
size) and names the suite's default camera. Those few constants live here, apart from
:mod:`rapid_env.tasks.metaworld_task`, so that reading them does not import MuJoCo or Meta-World:
the control loop imports the configuration, and a task suite without MuJoCo must be able to run it.
"""

from __future__ import annotations

import math

__all__ = [
    "CONTROL_HZ_ALLOWED", "DEFAULT_CAMERA", "IMAGE_SIZE_RANGE", "MW_STEP_HZ", "image_shape",
    "mw_steps_per_tick",
]

MW_STEP_HZ = 80.0  # Meta-World: 5 substeps x 2.5 ms

DEFAULT_CAMERA = "corner4"
"""Camera for the suite: every MT10 workspace, object and goal is in view across reset seeds.

``corner4`` looks at the table from the front-right corner, closer than ``corner2``
(same orientation): over 15 reset seeds per task the goal, object and end effector project
within 75 % of the image half-width from its centre (``corner2``: within 38 %, i.e. everything
is half the size; ``topview`` sees windows and doors edge-on and loses reach's goal height).
Its raw image is upside down; :class:`rapid_env.tasks.rendering.CameraRenderer` rotates it.
"""

IMAGE_SIZE_RANGE = (16, 1024)
"""Camera sizes the harness accepts, in pixels per side: below 16 no policy can see the scene,
above 1024 one frame costs more memory and time than any VLA input uses."""


CONTROL_HZ_ALLOWED = (80, 40, 20, 16, 10, 8, 5, 4, 2, 1)
"""Control rates the suite runs at: 1 to 80 Hz, each a whole number of Meta-World steps per tick.

Below 1 Hz one tick would hold an action for seconds (an episode of ``max_episode_s`` = 1 would
run one 100 s tick at 0.01 Hz); above 80 Hz a tick would be shorter than one Meta-World step.
"""


def mw_steps_per_tick(control_hz: float) -> int:
    """Meta-World steps per control tick; ``control_hz`` must be one of :data:`CONTROL_HZ_ALLOWED`.

    This is the one check of the control rate: :class:`rapid_env.config.EnvConfig` (the CLI flag,
    ``gym.make`` keywords) and the task env both call it.
    """
    ok = (
        isinstance(control_hz, int | float)
        and not isinstance(control_hz, bool)
        and math.isfinite(control_hz)
        and any(abs(control_hz - hz) <= 1e-9 * hz for hz in CONTROL_HZ_ALLOWED)
    )
    if not ok:
        raise ValueError(
            f"control_hz={control_hz!r} must divide 80 Hz evenly; allowed: "
            f"{list(CONTROL_HZ_ALLOWED)} (Hz, 1 to 80)"
        )
    return int(round(MW_STEP_HZ / control_hz))


def image_shape(image_size: object) -> tuple[int, int]:
    """``(height, width)`` of a camera size given as an int or a pair; ValueError otherwise."""
    lo, hi = IMAGE_SIZE_RANGE
    pair = (image_size, image_size) if not isinstance(image_size, tuple | list) else image_size
    if (
        len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        or not all(lo <= v <= hi for v in pair)  # type: ignore[operator]
    ):
        raise ValueError(
            f"image_size={image_size!r}; allowed: an int or a (height, width) pair in {lo}..{hi}"
        )
    return int(pair[0]), int(pair[1])  # type: ignore[call-overload]
