"""Every preset builds, is deterministic per seed, and documents its source and nominal means."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.link.models import TraceLink
from rapid_env.link.presets import PRESETS
from rapid_env.link.spec import LINK_FORMS, parse_link

RNG = np.random.default_rng


def _run(link, seed: int) -> list[float | None]:
    link.reset(RNG(seed))
    out = []
    t = 0.0
    for i in range(200):
        up = link.transfer(30_000 + 1000 * (i % 7), t, "up")
        out.append(up.arrival)
        out.append(link.transfer(800, (up.arrival or t) + 0.01, "down").arrival)
        t += 0.05
    return out


@pytest.mark.parametrize("spec", [s for s in LINK_FORMS if "<" not in s])
def test_every_preset_builds_and_same_seed_gives_identical_arrivals(spec):
    link = parse_link(spec)
    assert link.name == spec
    assert _run(link, 3) == _run(parse_link(spec), 3)
    assert link.mean_rtt_s >= 0 and link.mean_bandwidth_bps > 0
    if spec not in ("ideal",):
        assert _run(link, 3) != _run(link, 4)  # offset / jitter / loss really come from the seed


def test_presets_have_documented_sources_and_nominal_means():
    assert set(PRESETS) == {"wifi", "lab-wifi6", "5g-driving", "5g-walking", "4g", "3g-train",
                            "3g-bus", "broadband-slow", "puffer"}
    for p in PRESETS.values():
        assert p.description and p.source and p.licence
    lab = parse_link("lab-wifi6")
    assert lab.mean_bandwidth_bps == pytest.approx(300e6)
    assert lab.mean_rtt_s == pytest.approx(0.010, abs=5e-4)  # 8 ms base + 1 ms jitter each way
    drive = parse_link("5g-driving")
    assert isinstance(drive, TraceLink)
    assert drive.mean_bandwidth_down_bps == pytest.approx(274.9e6, rel=1e-3)
    assert drive.mean_bandwidth_bps == pytest.approx(27.49e6, rel=1e-3)  # uplink = 0.1 x down
    assert drive.mean_rtt_s == pytest.approx(0.0624, abs=5e-4)
