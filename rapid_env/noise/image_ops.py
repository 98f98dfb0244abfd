"""Array operations shared by the ImageNet-C corruption families, in numpy, scipy and Pillow.

The reference ``make_imagenet_c.py`` builds its corruptions on OpenCV, Wand (ImageMagick) and
scikit-image. These are the stand-ins that more than one family uses: uint8/float conversion, the
pixel scale from ImageNet-C's 224 px to the frame (the scaling rule is in
:mod:`rapid_env.noise.corruptions`), Gaussian blur, ``clipped_zoom``, Wand's motion blur, HSV
conversion and the diamond-square plasma fractal of fog and frost. Their names keep the leading
underscore: they are internal to :mod:`rapid_env.noise`, not part of its API.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

_REF_SIZE = 224.0


def _scale(image: np.ndarray) -> float:
    """Pixel-unit scale from ImageNet-C's 224 px to this frame (see module docstring)."""
    return min(image.shape[0], image.shape[1]) / _REF_SIZE


def _to_float(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in 0..1, the working range of every reference formula."""
    return image.astype(np.float32) * np.float32(1.0 / 255.0)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """0..1 float -> uint8 with clipping and rounding."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Spatial Gaussian blur of an HxW or HxWxC array (channels untouched)."""
    if sigma <= 0:
        return x
    sig = (sigma, sigma, 0.0)[: x.ndim]
    return ndimage.gaussian_filter(x, sig, mode="reflect")


def _linear_index(n: int, zoom: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights to zoom a length-n axis about its centre by ``zoom``."""
    centre = (n - 1) / 2.0
    src = (np.arange(n, dtype=np.float64) - centre) / zoom + centre
    src = np.clip(src, 0.0, n - 1.0)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (src - i0).astype(np.float32)
    return i0, i1, w


def _center_zoom(x: np.ndarray, zoom: float) -> np.ndarray:
    """ImageNet-C ``clipped_zoom``: enlarge about the centre by ``zoom`` and keep the frame size.

    Separable bilinear interpolation, equivalent to cropping ``1/zoom`` of the frame and resizing
    it back up with ``scipy.ndimage.zoom(order=1)``, but without the intermediate crop.
    """
    r0, r1, rw = _linear_index(x.shape[0], zoom)
    c0, c1, cw = _linear_index(x.shape[1], zoom)
    shape_r = (-1,) + (1,) * (x.ndim - 1)
    rows = x[r0] * (1 - rw.reshape(shape_r)) + x[r1] * rw.reshape(shape_r)
    shape_c = (1, -1) + (1,) * (x.ndim - 2)
    return rows[:, c0] * (1 - cw.reshape(shape_c)) + rows[:, c1] * cw.reshape(shape_c)


def _motion_blur(x: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """One-sided Gaussian motion blur along ``angle`` (degrees), as Wand/ImageMagick does it.

    Follows imagecorruptions' numpy port: ``2*radius+1`` taps with Gaussian weights of ``sigma``
    along a line, edge-replicated shifts. Shift-and-add over the taps keeps it O(taps * pixels).
    """
    width = max(1, int(round(radius)) * 2 + 1)
    sigma = max(sigma, 1e-3)
    k = np.exp(-(np.arange(width, dtype=np.float64) ** 2) / (2 * sigma**2))
    k /= k.sum()
    py, px = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    h, w = x.shape[:2]
    pad = width + 1
    padded = np.pad(x, ((pad, pad), (pad, pad)) + ((0, 0),) * (x.ndim - 2), mode="edge")
    out = np.zeros_like(x, dtype=np.float32)
    for i in range(width):
        dy = -math.ceil(i * py - 0.5)
        dx = -math.ceil(i * px - 0.5)
        if abs(dy) >= h or abs(dx) >= w:
            break
        out += np.float32(k[i]) * padded[pad - dy : pad - dy + h, pad - dx : pad - dx + w]
    return out


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """Vectorised RGB -> HSV on 0..1 floats (same convention as skimage.color.rgb2hsv)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    delta = v - rgb.min(axis=-1)
    safe_v = np.where(v > 0, v, 1.0)
    s = np.where(v > 0, delta / safe_v, 0.0)
    safe_d = np.where(delta > 0, delta, 1.0)
    h = np.where(
        v == r, (g - b) / safe_d, np.where(v == g, 2.0 + (b - r) / safe_d, 4.0 + (r - g) / safe_d)
    )
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], axis=-1).astype(np.float32)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB on 0..1 floats (inverse of :func:`_rgb_to_hsv`)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    h6 = h * 6.0
    i = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack(
        [
            np.stack([v, t, p], -1),
            np.stack([q, v, p], -1),
            np.stack([p, v, t], -1),
            np.stack([p, q, v], -1),
            np.stack([t, p, v], -1),
            np.stack([v, p, q], -1),
        ],
        axis=0,
    )
    return np.take_along_axis(table, i[None, ..., None], axis=0)[0].astype(np.float32)


def _plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square plasma fractal in 0..1, a direct port of ImageNet-C's ``plasma_fractal``.

    Kept bit-for-bit in structure (including the reference's ``wibble * U(-wibble, wibble)``) so
    fog looks like ImageNet-C fog.
    """
    maparray = np.zeros((mapsize, mapsize), dtype=np.float64)
    stepsize = mapsize
    wibble = 100.0
    while stepsize >= 2:
        half = stepsize // 2
        corner = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        sq = corner + np.roll(corner, -1, axis=0)
        sq = sq + np.roll(sq, -1, axis=1)
        maparray[half:mapsize:stepsize, half:mapsize:stepsize] = sq / 4 + wibble * rng.uniform(
            -wibble, wibble, sq.shape
        )
        dr = maparray[half:mapsize:stepsize, half:mapsize:stepsize]
        ul = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        lt = dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1)
        maparray[0:mapsize:stepsize, half:mapsize:stepsize] = lt / 4 + wibble * rng.uniform(
            -wibble, wibble, lt.shape
        )
        tt = dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0)
        maparray[half:mapsize:stepsize, 0:mapsize:stepsize] = tt / 4 + wibble * rng.uniform(
            -wibble, wibble, tt.shape
        )
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / max(maparray.max(), 1e-12)


def _next_pow2(n: int) -> int:
    """Smallest power of two >= n (the plasma fractal needs a power-of-two map)."""
    return 1 << max(1, (n - 1).bit_length())
