"""Noise specs: determinism, severity ordering, presets, spec errors."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.noise.spec import PRESETS, parse_noise


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


def test_specs_presets_and_errors() -> None:
    sc = parse_noise("gaussian_noise:2+camera_shake:3+frame_drop:1")
    assert (len(sc.pixels), len(sc.scene), len(sc.sensors)) == (1, 1, 1)
    assert sc.spec == "gaussian_noise:2+camera_shake:3+frame_drop:1"
    for preset in PRESETS:
        assert parse_noise(preset).spec == preset
    with pytest.raises(ValueError, match="severity 6 out of range"):
        parse_noise("occlusion:6")
    with pytest.raises(ValueError, match="malformed noise"):
        parse_noise("lighting:2+")
    with pytest.raises(ValueError, match="unknown noise 'shake'; allowed: clean, standard"):
        parse_noise("shake:2")


def test_the_registry_spellings_and_suggestions() -> None:
    from rapid_env.noise import NOISES

    img = np.random.default_rng(0).integers(40, 200, (16, 16, 3), dtype=np.uint8)
    a = parse_noise("fog(severity=3)+frame_drop:2")
    b = parse_noise("fog:3+frame_drop(severity=2)")
    assert (a.pixels, a.sensors[0].severity) == (b.pixels, 2)
    np.testing.assert_array_equal(a.pixels[0](img, np.random.default_rng(1)),
                                  parse_noise("fog:3")(img, np.random.default_rng(1)))
    assert NOISES.extra("fog", "layer") == "pixels"
    assert NOISES.extra("lighting", "layer") == "scene"
    assert NOISES.extra("frame_drop", "layer") == "sensors"
    assert NOISES.extra("visual-noise", "scenario") == PRESETS["visual-noise"]
    with pytest.raises(ValueError, match=r"unknown noise 'fogg'.*; did you mean 'fog'\?$"):
        parse_noise("fogg:2")
    with pytest.raises(ValueError, match="'clean' is a whole scenario"):
        parse_noise("clean:2")
    with pytest.raises(ValueError, match=r"malformed noise 'fog\(sev=2\)'"):
        parse_noise("fog(sev=2)")
    with pytest.raises(ValueError, match="severity 9 out of range"):
        parse_noise("fog(severity=9)")
