from __future__ import annotations

import math

import numpy as np
import pytest

from rapid_env.metrics import ldlj, rms_jerk, sparc

# Analytic LDLJ of one minimum-jerk move with the velocity-peak normalisation:
# integral |jerk|^2 = 720 A^2 / T^5, v_peak = 1.875 A / T  ->  DLJ = 720 / 1.875^2 = 204.8.
MINJERK_LDLJ = -math.log(720.0 / 1.875**2)


def min_jerk(duration: float = 1.0, dt: float = 0.01, amplitude: float = 0.3) -> np.ndarray:
    """Straight minimum-jerk move (Flash & Hogan 1985) along a 3-D diagonal, rest to rest."""
    t = np.arange(0.0, duration + dt / 2, dt)
    tau = t / duration
    s = amplitude * (10 * tau**3 - 15 * tau**4 + 6 * tau**5)
    direction = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    return np.array([0.1, -0.2, 0.3]) + s[:, None] * direction


def with_oscillation(
    path: np.ndarray, dt: float, freq: float = 4.0, amp: float = 0.01
) -> np.ndarray:
    """The same move with a 4 Hz surge along the path that vanishes at both ends (rest to rest).

    Along the path, so the speed profile sees it at first order. (A tremor across the path only
    changes the speed at second order, and SPARC, by design, ignores spectral components below
    amp_th = 5 % of the DC magnitude: a 1 cm sideways wobble on a 30 cm move barely moves it.)
    """
    n = path.shape[0]
    t = np.arange(n) * dt
    duration = (n - 1) * dt
    envelope = np.sin(np.pi * t / duration) ** 2
    surge = amp * envelope * np.sin(2 * np.pi * freq * t)
    direction = (path[-1] - path[0]) / np.linalg.norm(path[-1] - path[0])
    return path + surge[:, None] * direction


def test_constant_velocity_has_zero_jerk() -> None:
    dt = 0.05
    t = np.arange(50) * dt
    path = np.stack([0.2 * t, -0.1 * t, 0.05 * t + 1.0], axis=1)
    assert rms_jerk(path, dt) == pytest.approx(0.0, abs=1e-9)


def test_cubic_gives_its_analytic_jerk() -> None:
    # x = a t^3 has jerk 6a everywhere; the third difference is exact for a cubic.
    dt = 0.01
    t = np.arange(100) * dt
    a = np.array([0.5, -2.0, 1.0])
    path = t[:, None] ** 3 * a
    assert rms_jerk(path, dt) == pytest.approx(6 * np.linalg.norm(a), rel=1e-6)


def test_quartic_gives_analytic_rms_jerk_at_midpoints() -> None:
    # x = t^4 -> jerk 24 t; the third forward difference equals it at t + 1.5 dt exactly.
    dt = 0.02
    t = np.arange(60) * dt
    path = np.stack([t**4, np.zeros_like(t), np.zeros_like(t)], axis=1)
    mid = t[:-3] + 1.5 * dt
    expected = float(np.sqrt(np.mean((24 * mid) ** 2)))
    assert rms_jerk(path, dt) == pytest.approx(expected, rel=1e-6)


def test_min_jerk_ldlj_matches_closed_form() -> None:
    # The finite-difference estimate converges at first order in dt / T (the end samples of the
    # jerk integral are lost): about +0.1 at 100 samples, +0.005 at 2000.
    assert ldlj(min_jerk(dt=0.0005), 0.0005) == pytest.approx(MINJERK_LDLJ, abs=0.01)
    assert ldlj(min_jerk(dt=0.01), 0.01) == pytest.approx(MINJERK_LDLJ, abs=0.15)


def test_ldlj_is_dimensionless() -> None:
    a = ldlj(min_jerk(duration=1.0, amplitude=0.3, dt=0.005), 0.005)
    b = ldlj(min_jerk(duration=3.0, amplitude=0.05, dt=0.015), 0.015)
    assert a == pytest.approx(b, abs=1e-9)


def test_sparc_of_min_jerk_is_the_published_value() -> None:
    # Balasubramanian et al. 2015 (J NeuroEng Rehabil 12:112): one submovement ~ -1.4.
    for duration, dt in [(1.0, 0.01), (2.0, 0.05), (0.8, 0.002)]:
        value = sparc(min_jerk(duration=duration, dt=dt), dt)
        assert -1.5 < value < -1.35, (duration, dt, value)


@pytest.mark.parametrize("metric", [ldlj, sparc])
def test_oscillation_makes_dimensionless_measures_worse(metric) -> None:  # type: ignore[no-untyped-def]
    dt = 0.01
    smooth = min_jerk(dt=dt)
    shaky = with_oscillation(smooth, dt)
    assert metric(smooth, dt) > metric(shaky, dt) + 0.3
    assert rms_jerk(smooth, dt) < rms_jerk(shaky, dt)


def test_two_submovements_are_less_smooth_than_one() -> None:
    dt = 0.01
    first = min_jerk(duration=1.0, dt=dt, amplitude=0.2)
    second = min_jerk(duration=1.0, dt=dt, amplitude=0.2)[1:] + (first[-1] - first[0])
    two = np.concatenate([first, second])
    one = min_jerk(duration=2.0, dt=dt, amplitude=0.4)
    assert sparc(two, dt) < sparc(one, dt)
    assert ldlj(two, dt) < ldlj(one, dt)


def test_sparc_clips_fc_at_nyquist() -> None:
    # At 10 Hz the default fc=10 Hz is above Nyquist; the result must equal fc=5 Hz.
    dt = 0.1
    path = min_jerk(duration=2.0, dt=dt)
    assert sparc(path, dt) == sparc(path, dt, fc=5.0)


@pytest.mark.parametrize("metric", [rms_jerk, ldlj, sparc])
def test_degenerate_input_is_nan_not_an_error(metric) -> None:  # type: ignore[no-untyped-def]
    dt = 0.05
    assert math.isnan(metric(np.zeros((0, 3)), dt))
    assert math.isnan(metric(np.zeros((2, 3)), dt))
    bad = min_jerk(dt=dt)
    bad[5, 1] = np.nan
    assert math.isnan(metric(bad, dt))


@pytest.mark.parametrize("metric", [ldlj, sparc])
def test_no_motion_is_nan(metric) -> None:  # type: ignore[no-untyped-def]
    still = np.tile([0.1, 0.2, 0.3], (40, 1))
    assert math.isnan(metric(still, 0.05))


def test_no_motion_has_zero_rms_jerk() -> None:
    assert rms_jerk(np.tile([0.1, 0.2, 0.3], (40, 1)), 0.05) == 0.0


@pytest.mark.parametrize("metric", [rms_jerk, ldlj, sparc])
@pytest.mark.parametrize("dt", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_dt_raises_and_names_it(metric, dt: float) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="dt"):
        metric(min_jerk(), dt)


def test_bad_shape_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        rms_jerk(np.zeros((4, 3, 2)), 0.1)


def test_one_dimensional_path_is_accepted() -> None:
    dt = 0.01
    path = min_jerk(dt=dt)
    along = np.linalg.norm(path - path[0], axis=1)
    assert ldlj(along, dt) == pytest.approx(ldlj(path, dt), abs=1e-9)
