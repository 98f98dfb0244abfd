"""ImageNet-C's noise family: Gaussian, shot (Poisson), impulse (salt-and-pepper), speckle.

Per-pixel noise on the 0..1 intensities; the levels are dimensionless, so they are the published
ones at any frame size (see :mod:`rapid_env.noise.corruptions`). All draws come from ``rng``.
"""

from __future__ import annotations

import numpy as np

from rapid_env.noise.image_ops import _to_float, _to_uint8


def gaussian_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Additive N(0, c) noise on 0..1 intensities."""
    c = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1]
    x = _to_float(image)
    return _to_uint8(x + rng.normal(0.0, c, size=x.shape).astype(np.float32))


def shot_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon noise: ``Poisson(x * c) / c`` (fewer photons = more noise)."""
    c = (60, 25, 12, 5, 3)[severity - 1]
    x = _to_float(image)
    return _to_uint8(rng.poisson(x * c).astype(np.float32) / c)


def impulse_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise on a fraction ``c`` of values (per channel, as skimage does)."""
    c = (0.03, 0.06, 0.09, 0.17, 0.27)[severity - 1]
    out = image.copy()
    hit = rng.random(image.shape) < c
    salt = rng.random(image.shape) < 0.5
    out[hit & salt] = 255
    out[hit & ~salt] = 0
    return out


def speckle_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative noise ``x + x * N(0, c)``."""
    c = (0.15, 0.2, 0.35, 0.45, 0.6)[severity - 1]
    x = _to_float(image)
    return _to_uint8(x + x * rng.normal(0.0, c, size=x.shape).astype(np.float32))
