"""Visual noise for the policy's camera: spec strings, ImageNet-C corruptions, scene, sensor faults.

RAPID's first claim is that a camera-triggered offloading decision is fooled by visual noise while a
kinematic trigger is not, so every run names its noise scenario by one spec string (``clean``, a
preset such as ``interference``, or parts like ``fog:3+camera_shake:2``; see ``docs/noise.md``).
This package turns that string into a seeded scenario and holds everything it is built from. It is
part of the core layer: it imports numpy, scipy, Pillow and Gymnasium, reads a task only through
the :class:`~rapid_env.task.Task` protocol and imports MuJoCo only where it edits a MuJoCo scene;
it never imports a task suite (except the ``rapid-gallery`` command, which builds one), the agents,
the controller, the config or the evaluation.

Which module holds what:

* :mod:`~rapid_env.noise.spec`: the spec grammar, the presets (``PRESETS``), ``NOISE_NAMES``,
  the ``ImageNoise`` protocol, ``Clean``, the composed ``Scenario`` and ``parse_noise``;
* :mod:`~rapid_env.noise.corruptions`: the 19 ImageNet-C pixel corruptions' registry
  (``CORRUPTIONS``) and API (``corrupt``, ``PixelCorruption``, ``check_severity``), with the scaling
  rule and the deviations from the reference; the corruptions themselves, by ImageNet-C family, in
  :mod:`~rapid_env.noise.pixel_noise`, :mod:`~rapid_env.noise.blur`,
  :mod:`~rapid_env.noise.weather` and :mod:`~rapid_env.noise.digital`, on the shared array
  operations of :mod:`~rapid_env.noise.image_ops`;
* :mod:`~rapid_env.noise.scene`: in-scene disturbances edited into the rendered ``MjvScene``
  (``lighting``, ``camera_shake``, ``occlusion``, ``distractor``, ``background``);
* :mod:`~rapid_env.noise.sensor`: sensor faults of the delivered frame (``frame_freeze``,
  ``frame_drop``);
* :mod:`~rapid_env.noise.noisy_image`: ``NoisyImage``, a scenario as a Gymnasium observation
  wrapper around a task env;
* :mod:`~rapid_env.cli.gallery`: the ``rapid-gallery`` command (the noise gallery).

The names below are re-exported, so ``from rapid_env.noise import parse_noise`` is the usual import.
"""

from __future__ import annotations

from rapid_env.noise.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    Corruption,
    PixelCorruption,
    check_severity,
    corrupt,
)
from rapid_env.noise.noisy_image import NoisyImage
from rapid_env.noise.scene import SCENE_CLASSES, SCENE_NAMES, SceneDisturbance
from rapid_env.noise.sensor import SENSOR_NAMES, SensorFault
from rapid_env.noise.spec import (
    NOISE_NAMES,
    NOISES,
    PIXEL_NAMES,
    PRESETS,
    Clean,
    ImageNoise,
    Scenario,
    parse_noise,
)

__all__ = [
    "CORRUPTIONS",
    "NOISES",
    "NOISE_NAMES",
    "PIXEL_NAMES",
    "PRESETS",
    "SCENE_CLASSES",
    "SCENE_NAMES",
    "SENSOR_NAMES",
    "SEVERITIES",
    "Clean",
    "Corruption",
    "ImageNoise",
    "NoisyImage",
    "PixelCorruption",
    "Scenario",
    "SceneDisturbance",
    "SensorFault",
    "check_severity",
    "corrupt",
    "parse_noise",
]
