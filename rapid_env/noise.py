"""Visual noise applied to camera frames before the policy (and any vision-based decider) sees them.

First version: ImageNet-C's ``gaussian_noise`` with its five published severities (sigma 0.08,
0.12, 0.18, 0.26, 0.38 on a 0..1 intensity scale; Hendrycks & Dietterich 2019). Noise is drawn
from the episode's noise stream only, so the same seed gives the same noise, and changing the noise
never changes the task layout.

Spec strings: ``clean`` or ``<name>:<severity>`` (severity 1-5), e.g. ``gaussian_noise:3``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

GAUSSIAN_SIGMAS = (0.08, 0.12, 0.18, 0.26, 0.38)
NOISE_NAMES = ("gaussian_noise",)


class ImageNoise(Protocol):
    """A seeded image corruption."""

    @property
    def spec(self) -> str:
        """The spec string that builds this noise."""
        ...

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return a corrupted copy of the uint8 HxWx3 ``image``."""
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


@dataclass(frozen=True)
class GaussianNoise:
    """Additive Gaussian pixel noise, ImageNet-C severities."""

    severity: int

    def __post_init__(self) -> None:
        _check_severity(self.severity)

    @property
    def spec(self) -> str:
        """The spec string that builds this noise."""
        return f"gaussian_noise:{self.severity}"

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add N(0, sigma) noise on a 0..1 scale, clip, and return uint8."""
        sigma = GAUSSIAN_SIGMAS[self.severity - 1]
        x = image.astype(np.float32) / 255.0
        x += rng.normal(0.0, sigma, size=image.shape).astype(np.float32)
        return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _check_severity(severity: object) -> None:
    if not isinstance(severity, int) or isinstance(severity, bool) or not 1 <= severity <= 5:
        raise ValueError(f"severity {severity!r} out of range; allowed: 1, 2, 3, 4, 5")


def parse_noise(spec: str) -> ImageNoise:
    """Build a noise from its spec; a bad spec raises naming it and the allowed names."""
    if spec == "clean":
        return Clean()
    name, sep, sev = spec.partition(":")
    if name not in NOISE_NAMES:
        raise ValueError(f"unknown noise {name!r}; allowed: clean, {', '.join(NOISE_NAMES)}")
    if not sep or not sev.strip().lstrip("-").isdigit():
        raise ValueError(f"malformed noise {spec!r}; expected <name>:<severity 1-5>")
    severity = int(sev)
    _check_severity(severity)
    return GaussianNoise(severity)


class NoisyImage(
    gym.ObservationWrapper[dict[str, Any], np.ndarray, dict[str, Any]],
    gym.utils.RecordConstructorArgs,
):
    """Corrupt the ``image`` key of a dict observation with a seeded :class:`ImageNoise`.

    The wrapper's randomness comes from ``self.np_random``, seeded through ``reset(seed=...)``.

    Example:
        >>> from rapid_env.tasks.metaworld_task import MetaWorldTask
        >>> env = NoisyImage(MetaWorldTask("reach", image_size=32), "gaussian_noise:2")
    """

    def __init__(self, env: gym.Env[dict[str, Any], np.ndarray], noise: str) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, noise=noise)
        gym.ObservationWrapper.__init__(self, env)
        self.noise = parse_noise(noise)

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        """Return the observation with its image corrupted."""
        out = dict(observation)
        out["image"] = self.noise(observation["image"], self.np_random)
        return out
