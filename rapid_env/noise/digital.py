"""ImageNet-C's digital family: brightness, contrast, saturate, JPEG, pixelate, elastic transform.

All their parameters are already relative to the image (ratios, quality, HSV amounts), so none is
rescaled (see :mod:`rapid_env.noise.corruptions`). Saturate and elastic transform deviate from
``make_imagenet_c.py``'s order or table so that severity is monotonic; their docstrings say how.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from rapid_env.noise.image_ops import _to_float, _to_uint8


def brightness(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Raise HSV value by ``c``. Deterministic (``rng`` unused)."""
    c = (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]
    # With H and S fixed, HSV->RGB is linear in V, so scaling RGB by V'/V is the exact HSV edit
    # without a full colour-space round trip; black pixels (V=0, S=0) become grey V'.
    x = _to_float(image)
    v = x.max(axis=-1, keepdims=True)
    v_new = np.minimum(v + np.float32(c), 1.0)
    ratio = np.where(v > 0, v_new / np.where(v > 0, v, 1.0), 0.0)
    return _to_uint8(np.where(v > 0, x * ratio, v_new))


def contrast(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Shrink each channel towards its mean by ``c``. Deterministic (``rng`` unused)."""
    c = (0.4, 0.3, 0.2, 0.1, 0.05)[severity - 1]
    x = _to_float(image)
    means = x.mean(axis=(0, 1), keepdims=True)
    return _to_uint8((x - means) * c + means)


def saturate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Scale and shift HSV saturation, ``S*c0 + c1``. Deterministic (``rng`` unused).

    The five published settings, listed in order of measured distortion (mean absolute error to
    the clean frame on Meta-World frames; the edit is per pixel, so the same at every size):
    published severities 3, 1, 2, 4, 5. The published order (desaturate at 1-2, oversaturate at
    3-5) puts its mildest setting, a 2x boost, at severity 3.
    """
    c0, c1 = ((2, 0), (0.3, 0), (0.1, 0), (5, 0.1), (20, 0.2))[severity - 1]
    # With H and V fixed, each channel's gap below V is proportional to S, so scaling the gaps by
    # S'/S is the exact HSV edit without a colour-space round trip. Grey pixels (S=0) have H=0
    # (red) in the skimage convention, so they become (V, V(1-S'), V(1-S')).
    x = _to_float(image)
    v = x.max(axis=-1, keepdims=True)
    gap = v - x
    sat = gap.max(axis=-1, keepdims=True) / np.where(v > 0, v, 1.0)
    sat_new = np.clip(sat * c0 + c1, 0.0, 1.0)
    grey = sat <= 0
    out = v - gap * (sat_new / np.where(grey, 1.0, sat))
    grey_rgb = v * np.array([1.0, 1.0, 1.0], dtype=np.float32) * (1 - sat_new)
    grey_rgb[..., 0] = v[..., 0]
    return _to_uint8(np.where(grey, grey_rgb, out))


def jpeg_compression(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Pillow JPEG round trip at quality ``c`` (the reference uses Pillow too). Deterministic."""
    c = (25, 18, 15, 10, 7)[severity - 1]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=c)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8).copy()


def pixelate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Box-downsample to ``c`` of the size and box-upsample back (Pillow, as the reference).

    ``c`` is a ratio of the frame size, so it already scales with resolution. Deterministic.
    """
    c = (0.6, 0.5, 0.4, 0.3, 0.25)[severity - 1]
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize(
        (max(1, int(w * c)), max(1, int(h * c))), Image.Resampling.BOX
    )
    return np.asarray(small.resize((w, h), Image.Resampling.BOX), dtype=np.uint8).copy()


def elastic_transform(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Smoothed random displacement field (the ``imagecorruptions`` table of Michaelis et al. 2019).

    ImageNet-C's original ``make_imagenet_c.py`` table pairs a large random affine skew with
    severities 1-2 and a small one with 3-5, so its distortion is not monotonic in severity. The
    ``imagecorruptions`` package, which re-published the ImageNet-C corruptions for arbitrary image
    sizes, replaced it with a field whose strength grows with severity: uniform noise of amplitude
    ``0.005 * H`` blurred with sigma ``0.01 * (H, W)`` and scaled by ``alpha = 250 * (0.05, 0.065,
    0.085, 0.1, 0.12)``. Its parameters are already relative to the image, so no extra scaling.
    Resampling is bilinear with a mirror border.
    """
    alpha = 250 * (0.05, 0.065, 0.085, 0.1, 0.12)[severity - 1]
    x = _to_float(image)
    h, w = x.shape[:2]
    amp = 0.005 * h
    sigma = (0.01 * h, 0.01 * w)
    dx = ndimage.gaussian_filter(rng.uniform(-amp, amp, (h, w)), sigma, mode="reflect", truncate=3)
    dy = ndimage.gaussian_filter(rng.uniform(-amp, amp, (h, w)), sigma, mode="reflect", truncate=3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = np.stack([yy + alpha * dy, xx + alpha * dx])
    out = np.stack(
        [
            ndimage.map_coordinates(x[..., ch], coords, order=1, mode="mirror")
            for ch in range(x.shape[2])
        ],
        axis=-1,
    )
    return _to_uint8(out)
