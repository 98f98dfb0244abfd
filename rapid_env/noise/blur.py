"""ImageNet-C's blur family: defocus, glass, motion, zoom and Gaussian blur.

Blur radii and sigmas are in pixels, so they are rescaled to the frame by the rule in
:mod:`rapid_env.noise.corruptions`; glass blur's vectorised pixel shuffle is the largest deviation
from the reference and is explained on :func:`_glass_shuffle` and :func:`glass_blur`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from rapid_env.noise.image_ops import (
    _blur,
    _center_zoom,
    _motion_blur,
    _scale,
    _to_float,
    _to_uint8,
)


def _disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """Anti-aliased disk kernel (ImageNet-C ``disk``), sized to the scaled radius."""
    half = int(math.ceil(radius)) + 1
    ax = np.arange(-half, half + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    g = np.exp(-(np.arange(-1, 2, dtype=np.float64) ** 2) / (2 * alias_blur**2))
    g /= g.sum()
    return signal.convolve2d(disk, np.outer(g, g), mode="same")


def defocus_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Convolution with an anti-aliased disk of radius ``c[0]`` (pixels, scaled).

    Deterministic (``rng`` unused). The 3x3 alias blur is kept at the reference sigma because it
    only smooths the disk edge.
    """
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[severity - 1]
    kernel = _disk_kernel(radius * _scale(image), alias).astype(np.float32)
    pad = kernel.shape[0] // 2
    x = np.pad(_to_float(image), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = signal.fftconvolve(x, kernel[..., None], mode="valid", axes=(0, 1))
    return _to_uint8(out)


def _glass_shuffle(x: np.ndarray, delta: int, iterations: float, rng: np.random.Generator) -> None:
    """Swap each pixel with a random neighbour within ``delta``, in place.

    ImageNet-C runs a sequential Python loop over every pixel. Here pixels are swapped in
    ``(2*delta+1)**2`` vectorised passes over a lattice of stride ``2*delta+1``; within a pass no
    two swaps touch the same pixel, so each pass is an exact set of pixel swaps. The visiting
    order differs from the reference, the local-shuffle statistics do not. A fractional last
    iteration swaps each pixel with that probability (see :func:`glass_blur`).
    """
    h, w = x.shape[:2]
    stride = 2 * delta + 1
    for it in range(int(math.ceil(iterations))):
        frac = min(1.0, iterations - it)
        for oy in range(stride):
            for ox in range(stride):
                ys = np.arange(delta + oy, h - delta, stride)
                xs = np.arange(delta + ox, w - delta, stride)
                if ys.size == 0 or xs.size == 0:
                    continue
                grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
                yy, xx = grid_y.ravel(), grid_x.ravel()
                d = rng.integers(-delta, delta + 1, size=(2, yy.size))
                if frac < 1.0:
                    keep = rng.random(yy.size) < frac
                    yy, xx, d = yy[keep], xx[keep], d[:, keep]
                ty, tx = yy + d[0], xx + d[1]
                a = x[yy, xx].copy()
                x[yy, xx] = x[ty, tx]
                x[ty, tx] = a


def glass_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, local pixel shuffling, Gaussian blur (frosted-glass look).

    Scaling: the max shift ``delta * s`` must be a whole pixel, and rounding alone would make
    every severity a 1 px shuffle at 64 px. So the iteration count is rescaled to keep the
    per-axis displacement variance of the shuffle, ``iterations * delta * (delta + 1) / 3``,
    proportional to ``s**2``; at 224 px this is exactly the reference (whole iterations).
    """
    sigma, delta, iterations = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[
        severity - 1
    ]
    s = _scale(image)
    delta_px = max(1, int(round(delta * s)))
    iters = iterations * delta * (delta + 1) * s**2 / (delta_px * (delta_px + 1))
    x = _blur(_to_float(image), sigma * s)
    _glass_shuffle(x, delta_px, iters, rng)
    return _to_uint8(_blur(x, sigma * s))


def motion_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian motion blur of radius/sigma ``c`` (pixels, scaled) at a random angle in +-45 deg."""
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[severity - 1]
    s = _scale(image)
    angle = rng.uniform(-45.0, 45.0)
    return _to_uint8(_motion_blur(_to_float(image), radius * s, sigma * s, angle))


_ZOOMS = (
    np.arange(1, 1.11, 0.01),
    np.arange(1, 1.16, 0.01),
    np.arange(1, 1.21, 0.02),
    np.arange(1, 1.26, 0.02),
    np.arange(1, 1.31, 0.03),
)


def zoom_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Average of the frame with centre zooms of it (zoom factors are relative, not scaled).

    Deterministic (``rng`` unused).
    """
    x = _to_float(image)
    out = np.zeros_like(x)
    zooms = _ZOOMS[severity - 1]
    for z in zooms:
        out += _center_zoom(x, float(z))
    return _to_uint8((x + out) / (len(zooms) + 1))


def gaussian_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur with sigma ``c`` (pixels, scaled). Deterministic (``rng`` unused)."""
    c = (1, 2, 3, 4, 6)[severity - 1]
    return _to_uint8(_blur(_to_float(image), c * _scale(image)))
