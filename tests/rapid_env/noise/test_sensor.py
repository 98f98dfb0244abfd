"""Sensor faults: frame_freeze repeats, frame_drop blanks, rate grows with severity."""

from __future__ import annotations

import numpy as np

from rapid_env.noise.sensor import SensorFault


def test_frame_freeze_repeats_and_frame_drop_blanks() -> None:
    rng = np.random.default_rng(0)
    freeze, drop = SensorFault("frame_freeze", 5), SensorFault("frame_drop", 5)
    freeze.reset(30.0, rng)
    drop.reset(30.0, rng)
    assert freeze.intervals and drop.intervals
    imgs = [np.full((4, 4, 3), i % 256, np.uint8) for i in range(250)]
    times = np.arange(250) * 0.05
    out = [freeze(im, t) for im, t in zip(imgs, times, strict=True)]
    frozen = [i for i, t in enumerate(times) if freeze.active(t) and i > 0]
    assert frozen and all(out[i][0, 0, 0] < i for i in frozen)
    assert all(out[i][0, 0, 0] == i for i, t in enumerate(times) if not freeze.active(t))
    assert len(frozen) < len(times)
    t_drop = next(a for a, _ in drop.intervals)
    assert not drop(imgs[1], t_drop).any()


def test_fault_rate_grows_with_severity() -> None:
    def busy(sev: int) -> float:
        total = 0.0
        for seed in range(20):
            f = SensorFault("frame_freeze", sev)
            f.reset(10.0, np.random.default_rng(seed))
            total += sum(b - a for a, b in f.intervals)
        return total

    assert busy(1) < busy(3) < busy(5)
