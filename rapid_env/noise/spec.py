"""Visual noise scenarios applied to camera frames before the policy (and any vision decider).

A scenario combines three kinds of part, each ``<name>:<severity 1-5>``, joined with ``+``:

* pixel corruptions of the rendered frame: the 15 ImageNet-C corruptions and its 4 extra ones
  (:mod:`rapid_env.noise.corruptions`; Hendrycks & Dietterich 2019);
* in-scene disturbances that change what MuJoCo renders (:mod:`rapid_env.noise.scene`:
  ``lighting``, ``camera_shake``, ``occlusion``, ``distractor``, ``background``);
* sensor faults of the delivered frame (:mod:`rapid_env.noise.sensor`: ``frame_freeze``,
  ``frame_drop``).

Order per frame: scene edits while rendering, then pixel corruptions, then sensor faults. Spec
strings: ``clean``, a preset (``standard``, ``visual-noise``, ``interference``, see ``PRESETS``) or
parts such as ``gaussian_noise:3+camera_shake:2``. Every draw comes from the episode's noise stream,
so the same seed gives the same noise, and changing the noise never changes the task layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rapid_env.noise.corruptions import CORRUPTIONS, PixelCorruption, check_severity
from rapid_env.noise.scene import SCENE_CLASSES, SCENE_NAMES, SceneDisturbance
from rapid_env.noise.sensor import SENSOR_NAMES, SensorFault

if TYPE_CHECKING:
    from rapid_env.task import Task

PIXEL_NAMES = tuple(CORRUPTIONS)
NOISE_NAMES = (*PIXEL_NAMES, *SCENE_NAMES, *SENSOR_NAMES)
PRESETS: dict[str, str] = {
    # Our reading of the paper's Table I scene classes (the paper's own definitions are unread).
    "standard": "clean",
    "visual-noise": "gaussian_noise:2+motion_blur:2+fog:2+lighting:2",
    "interference": "distractor:3+occlusion:2+camera_shake:2+lighting:1",
}


class ImageNoise(Protocol):
    """A seeded image corruption."""

    @property
    def spec(self) -> str:
        """The spec string that builds this noise."""
        ...

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return a corrupted copy of the uint8 HxWx3 ``image``."""
        ...

    def reset(self, task: Task, rng: np.random.Generator) -> None:
        """Start an episode: draw its parameters, install or remove the task's render hook."""
        ...


@dataclass(frozen=True)
class Clean:
    """No corruption."""

    @property
    def spec(self) -> str:
        """The spec string that builds this noise."""
        return "clean"

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the image unchanged."""
        return image

    def reset(self, task: Task, rng: np.random.Generator) -> None:
        """Nothing to draw; make sure no earlier scenario's render hook is left on the task."""
        task.scene_hook = None


@dataclass
class Scenario:
    """A combination of pixel corruptions, in-scene disturbances and sensor faults.

    ``reset`` must be called at the start of each episode with the task and the noise stream; it
    installs the scene edits as the task's render hook.
    """

    spec: str
    pixels: list[ImageNoise] = field(default_factory=list)
    scene: list[SceneDisturbance] = field(default_factory=list)
    sensors: list[SensorFault] = field(default_factory=list)
    _task: Task | None = None

    def reset(self, task: Task, rng: np.random.Generator) -> None:
        """Draw the episode's disturbance parameters and hook the scene edits into rendering."""
        self._task = task
        for d in self.scene:
            d.reset(task, rng)
        horizon = task.max_ticks * task.tick_dt
        for f in self.sensors:
            f.reset(horizon, rng)
        if self.scene:
            parts = self.scene

            def hook(scene: Any) -> None:
                for d in parts:
                    d.apply(scene, rng)

            task.scene_hook = hook
        else:
            task.scene_hook = None

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Pixel corruptions, then sensor faults at the task's current simulated time."""
        for p in self.pixels:
            image = p(image, rng)
        t = self._task.sim_time if self._task is not None else 0.0
        for f in self.sensors:
            image = f(image, t)
        return image


def _parse_part(part: str) -> tuple[str, int]:
    allowed = ", ".join(["clean", *PRESETS, *NOISE_NAMES])
    name, sep, sev = part.partition(":")
    if name not in NOISE_NAMES:
        raise ValueError(f"unknown noise {name!r}; allowed: {allowed}")
    if not sep or not sev.strip().lstrip("-").isdigit():
        raise ValueError(f"malformed noise {part!r}; expected <name>:<severity 1-5>")
    severity = int(sev)
    check_severity(severity)
    return name, severity


def parse_noise(spec: str) -> Scenario:
    """Build a scenario from its spec; a bad spec raises naming it and the allowed names."""
    body = PRESETS.get(spec, spec)
    out = Scenario(spec)
    if body == "clean":
        return out
    if not body or any(not p for p in body.split("+")):
        raise ValueError(f"malformed noise {spec!r}; expected parts like fog:3 joined with '+'")
    for part in body.split("+"):
        name, severity = _parse_part(part.strip())
        if name in SCENE_CLASSES:
            out.scene.append(SCENE_CLASSES[name](name, severity))
        elif name in SENSOR_NAMES:
            out.sensors.append(SensorFault(name, severity))
        else:
            out.pixels.append(PixelCorruption(name, severity))
    return out
