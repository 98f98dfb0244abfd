"""Gaussian pixel noise: determinism, severity ordering, spec errors, the observation wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.noise import NoisyImage, parse_noise
from rapid_env.tasks.metaworld_task import MetaWorldTask


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def test_same_seed_same_noise_and_severity_monotonic():
    img = np.random.default_rng(0).integers(40, 200, (32, 32, 3), dtype=np.uint8)
    a = parse_noise("gaussian_noise:3")(img, np.random.default_rng(1))
    b = parse_noise("gaussian_noise:3")(img, np.random.default_rng(1))
    c = parse_noise("gaussian_noise:3")(img, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.uint8 and a.shape == img.shape
    psnr = [_psnr(img, parse_noise(f"gaussian_noise:{s}")(img, np.random.default_rng(3)))
            for s in range(1, 6)]
    assert all(x > y for x, y in zip(psnr, psnr[1:], strict=False))


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("fogg:2", "unknown noise 'fogg'; allowed: clean, standard, visual-noise"),
        ("gaussian_noise:0", "severity 0 out of range"),
        ("gaussian_noise", "malformed noise 'gaussian_noise'"),
        ("gaussian_noise:x", "malformed noise"),
    ],
)
def test_bad_specs(spec, needle):
    with pytest.raises(ValueError, match=needle):
        parse_noise(spec)


def test_wrapper_corrupts_only_the_image():
    env = NoisyImage(MetaWorldTask("reach", image_size=16), "gaussian_noise:5")
    obs, _ = env.reset(seed=0)
    clean = env.unwrapped.render_image()  # type: ignore[attr-defined]
    assert not np.array_equal(obs["image"], clean)
    np.testing.assert_array_equal(obs["proprio"], env.unwrapped.proprio_vector())  # type: ignore[attr-defined]
    env.close()


def test_wrapper_applies_scene_disturbances_from_the_first_frame():
    plain = MetaWorldTask("push", image_size=32)
    clean, _ = plain.reset(seed=4)
    plain.close()
    env = NoisyImage(MetaWorldTask("push", image_size=32), "distractor:5+background:3")
    a, _ = env.reset(seed=4)
    b, _ = env.reset(seed=4)
    assert not np.array_equal(a["image"], clean["image"])
    np.testing.assert_array_equal(a["image"], b["image"])  # seeded through reset(seed=...)
    stepped, *_ = env.step(np.zeros(4, np.float32))
    assert stepped["image"].shape == (32, 32, 3)
    env.close()
