"""The Gilbert-Elliott chain: loss rate, burst lengths and parameter checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rapid_env.link.loss import GilbertElliott, GilbertElliottChannel

RNG = np.random.default_rng


def _bursts(lost: np.ndarray) -> np.ndarray:
    padded = np.concatenate(([0], lost.astype(np.int8), [0]))
    edges = np.diff(padded)
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def test_gilbert_loss_rate_and_mean_burst_match_parameters():
    model = GilbertElliott.from_loss(0.05, 4.0)
    assert model.loss_rate == pytest.approx(0.05) and model.mean_bad_run == pytest.approx(4.0)
    ch = GilbertElliottChannel(model, RNG(11))
    n = 1_000_000
    # in uneven pieces, as transfers would ask for them: state must carry across calls
    sizes = RNG(1).integers(1, 3000, 2000)
    sizes = sizes[np.cumsum(sizes) <= n]
    lost = np.concatenate([ch.sample(int(k)) for k in sizes])
    n = lost.size
    # loss rate: variance of a two-state chain's occupancy, inflated by its correlation
    pb, lam = model.stationary_bad, 1.0 - model.p - model.r
    sd_rate = math.sqrt(pb * (1 - pb) * (1 + lam) / (1 - lam) / n)
    assert abs(lost.mean() - 0.05) < 5 * sd_rate
    bursts = _bursts(lost)
    sd_burst = math.sqrt((1 - model.r) / model.r**2 / bursts.size)  # geometric burst lengths
    assert abs(bursts.mean() - 4.0) < 5 * sd_burst


def test_general_gilbert_elliott_loss_rate():
    model = GilbertElliott(p=0.02, r=0.2, loss_good=0.01, loss_bad=0.5)
    ch = GilbertElliottChannel(model, RNG(5))
    n = 400_000
    counted = sum(ch.count(1000) for _ in range(n // 1000))
    assert counted / n == pytest.approx(model.loss_rate, rel=0.1)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"p": 1.5, "r": 0.1}, "p must be in"),
        ({"p": 0.1, "r": 0.0}, "r must be > 0 when p > 0"),
        ({"p": 0.1, "r": 0.5, "loss_bad": -0.1}, "loss_bad must be in"),
    ],
)
def test_bad_gilbert_parameters(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        GilbertElliott(**kwargs)
