"""ImageNet-C corruptions: shape/dtype, determinism, severity ordering, errors, ImageNoise use."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.noise.corruptions import CORRUPTIONS, PixelCorruption, corrupt
from rapid_env.noise.spec import ImageNoise
from rapid_env.tasks.metaworld_task import MetaWorldTask

NAMES = list(CORRUPTIONS)
# Corruptions that draw from the rng; the rest must ignore it.
RANDOM = {
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "glass_blur",
    "motion_blur",
    "snow",
    "frost",
    "fog",
    "spatter",
    "elastic_transform",
}


def _render(size: int, seeds: tuple[int, ...]) -> list[np.ndarray]:
    env = MetaWorldTask("reach", image_size=size)
    frames = []
    for seed in seeds:
        env.reset(seed=seed)
        frames.append(np.asarray(env.render_image()).copy())
    env.close()
    return frames


@pytest.fixture(scope="module")
def frames64() -> list[np.ndarray]:
    return _render(64, (1, 2, 3))


@pytest.fixture(scope="module")
def frames128() -> list[np.ndarray]:
    return _render(128, (1, 2))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(float) - b.astype(float))))


def test_registry_has_the_19_imagenet_c_corruptions():
    assert len(CORRUPTIONS) == 19
    assert NAMES[:3] == ["gaussian_noise", "shot_noise", "impulse_noise"]
    assert RANDOM <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_input_untouched(name, frames64, frames128):
    for frame in (*frames64[:2], *frames128):
        before = frame.copy()
        for severity in range(1, 6):
            out = corrupt(name, frame, severity, np.random.default_rng(0))
            assert out.shape == frame.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(frame, before)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_given_seed(name, frames64):
    frame = frames64[0]
    a = corrupt(name, frame, 3, np.random.default_rng(11))
    b = corrupt(name, frame, 3, np.random.default_rng(11))
    c = corrupt(name, frame, 3, np.random.default_rng(12))
    np.testing.assert_array_equal(a, b)
    if name in RANDOM:
        assert not np.array_equal(a, c)
    else:
        np.testing.assert_array_equal(a, c)


def test_global_numpy_rng_untouched(frames64):
    np.random.seed(5)
    expected = np.random.random()
    np.random.seed(5)
    for name in NAMES:
        corrupt(name, frames64[0], 5, np.random.default_rng(0))
    assert np.random.random() == expected


@pytest.mark.parametrize("name", NAMES)
def test_severity_monotonic(name, frames64):
    psnr, mae = [], []
    for severity in range(1, 6):
        outs = [corrupt(name, f, severity, np.random.default_rng(7)) for f in frames64]
        psnr.append(np.mean([_psnr(f, o) for f, o in zip(frames64, outs, strict=True)]))
        mae.append(np.mean([_mae(f, o) for f, o in zip(frames64, outs, strict=True)]))
    psnr_ok = all(x > y for x, y in zip(psnr, psnr[1:], strict=False))
    mae_ok = all(x < y for x, y in zip(mae, mae[1:], strict=False))
    assert psnr_ok or mae_ok, f"psnr {psnr}, mae {mae}"


def test_bad_name_and_severity(frames64):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown corruption 'rain'; allowed: gaussian_noise"):
        corrupt("rain", frames64[0], 1, rng)
    for bad in (0, 6, True, 2.0):
        with pytest.raises(ValueError, match="out of range; allowed: 1, 2, 3, 4, 5"):
            corrupt("fog", frames64[0], bad, rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="severity 6 out of range; allowed: 1, 2, 3, 4, 5"):
        PixelCorruption("fog", 6)
    with pytest.raises(ValueError, match="unknown corruption"):
        PixelCorruption("nope", 1)


def test_pixel_corruption_is_an_image_noise(frames64):
    noise: ImageNoise = PixelCorruption("motion_blur", 2)
    assert noise.spec == "motion_blur:2"
    out = noise(frames64[0], np.random.default_rng(3))
    ref = corrupt("motion_blur", frames64[0], 2, np.random.default_rng(3))
    np.testing.assert_array_equal(out, ref)
    env = MetaWorldTask("reach", image_size=32)
    env.scene_hook = lambda *args: None
    noise.reset(env, np.random.default_rng(0))
    assert env.scene_hook is None
    env.close()
    frozen = PixelCorruption("fog", 1)
    with pytest.raises(AttributeError):
        frozen.severity = 3  # type: ignore[misc]
