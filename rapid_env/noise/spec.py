"""Visual noise scenarios applied to camera frames before the policy (and any vision decider).

A scenario combines three kinds of part, each ``<name>:<severity 1-5>``, joined with ``+``:

* pixel corruptions of the rendered frame: the 15 ImageNet-C corruptions and its 4 extra ones
  (:mod:`rapid_env.noise.corruptions`; Hendrycks & Dietterich 2019);
* in-scene disturbances that change what MuJoCo renders (:mod:`rapid_env.noise.scene`:
  ``lighting``, ``camera_shake``, ``occlusion``, ``distractor``, ``background``);
* sensor faults of the delivered frame (:mod:`rapid_env.noise.sensor`: ``frame_freeze``,
  ``frame_drop``);
* LIBERO-PRO scene variants (``pro-swap``, ``pro-object``, ``pro-language``, ``pro-task``; no
  severity): the task is built from LIBERO-PRO's perturbed suite instead of the original (objects
  at swapped positions, replaced objects, a paraphrased instruction, another task in the same
  scene). They change the simulated scene itself, so they apply to LIBERO tasks only; the
  builder (:mod:`rapid_env.build`) reads :attr:`Scenario.variant`.

Order per frame: scene edits while rendering, then pixel corruptions, then sensor faults. Spec
strings: ``clean``, a preset (``standard``, ``visual-noise``, ``interference``, see ``PRESETS``) or
parts such as ``gaussian_noise:3+camera_shake:2`` (a part may also be written
``gaussian_noise(severity=3)``, the spec grammar of every other registry). Every name is in the
registry :data:`NOISES`. Every draw comes from the episode's noise stream,
so the same seed gives the same noise, and changing the noise never changes the task layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rapid_env.noise.corruptions import CORRUPTIONS, PixelCorruption, check_severity
from rapid_env.noise.scene import SCENE_CLASSES, SCENE_NAMES, SceneDisturbance
from rapid_env.noise.sensor import SENSOR_NAMES, SensorFault
from rapid_env.registry import Registry
from rapid_env.specs import parse_spec

if TYPE_CHECKING:
    from rapid_env.task import Task

PIXEL_NAMES = tuple(CORRUPTIONS)
VARIANTS: dict[str, str] = {
    "pro-swap": "swap", "pro-object": "object", "pro-language": "lan", "pro-task": "task",
}
"""LIBERO-PRO scene variants: noise name -> the perturbed suite's suffix (``..._swap``)."""
NOISE_NAMES = (*PIXEL_NAMES, *SCENE_NAMES, *SENSOR_NAMES)  # image noises; VARIANTS apart
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
    variant: str | None = None
    """A LIBERO-PRO suite suffix (``swap``) the task is built from, or None."""
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


NOISES: Registry[Any] = Registry("noise")
"""Every noise name: whole scenarios (``clean`` and the presets: extra ``scenario``, the parts they
stand for) and parts (extra ``layer``: ``pixels``, ``scene`` or ``sensors``; the factory takes the
severity). Register a name here and every front end accepts it."""

NOISES.register("clean", lambda: parse_noise("clean"), scenario="clean")
for _preset, _body in PRESETS.items():
    NOISES.register(_preset, lambda name=_preset: parse_noise(name), scenario=_body)
for _name in PIXEL_NAMES:
    NOISES.register(_name, partial(PixelCorruption, _name), layer="pixels")
for _name in SCENE_NAMES:
    NOISES.register(_name, partial(SCENE_CLASSES[_name], _name), layer="scene")
for _name in SENSOR_NAMES:
    NOISES.register(_name, partial(SensorFault, _name), layer="sensors")
for _name, _suffix in VARIANTS.items():
    NOISES.register(_name, lambda severity=0, s=_suffix: s, layer="variant")


def _parse_part(part: str) -> tuple[str, int]:
    """``<name>:<severity>`` or ``<name>(severity=<n>)`` -> (name, severity)."""
    if "(" in part:
        name, overrides = parse_spec(part)
        sev = overrides.pop("severity", "")
        sep = ":" if not overrides else ""
    else:
        name, sep, sev = part.partition(":")
    NOISES.check(name)
    if NOISES.extra(name, "layer") is None:
        raise ValueError(f"noise {name!r} is a whole scenario; it takes no severity and cannot "
                         "be joined with '+'")
    if NOISES.extra(name, "layer") == "variant":
        if sep:
            raise ValueError(f"noise {part!r}: {name} is a LIBERO-PRO scene variant and takes no "
                             f"severity; allowed: {name}")
        return name, 0
    if not sep or not sev.strip().lstrip("-").isdigit():
        raise ValueError(f"malformed noise {part!r}; expected <name>:<severity 1-5>")
    severity = int(sev)
    check_severity(severity)
    return name, severity


def noise_identity(spec: str) -> tuple[tuple[str, int], ...]:
    """The ``(part, severity)`` pairs ``spec`` stands for, presets expanded, nothing built.

    ``fog:3`` and ``fog(severity=3)`` are one noise; a sweep's duplicate check compares these.

    Raises:
        ValueError: as :func:`parse_noise` does for a malformed or unknown spec.
    """
    named = spec in NOISES
    scenario = NOISES.extra(spec, "scenario") if named else None
    body = spec if scenario is None else scenario
    if body == "clean":
        return ()
    if not body or any(not p for p in body.split("+")):
        raise ValueError(f"malformed noise {spec!r}; expected parts like fog:3 joined with '+'")
    return tuple(_parse_part(part.strip()) for part in body.split("+"))


def parse_noise(spec: str) -> Scenario:
    """Build a scenario from its spec; a bad spec raises naming it and the allowed names."""
    named = spec in NOISES
    scenario = NOISES.extra(spec, "scenario") if named else None
    body = spec if scenario is None else scenario
    out = Scenario(spec)
    if body == "clean":
        return out
    if not body or any(not p for p in body.split("+")):
        raise ValueError(f"malformed noise {spec!r}; expected parts like fog:3 joined with '+'")
    for part in body.split("+"):
        name, severity = _parse_part(part.strip())
        layer = NOISES.extra(name, "layer")
        if layer == "variant":
            if out.variant is not None:
                raise ValueError(f"noise {spec!r} names two LIBERO-PRO variants; allowed: one")
            out.variant = NOISES.create(name)
        else:
            getattr(out, layer).append(NOISES.create(name, severity))
    return out
