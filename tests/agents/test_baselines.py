"""The baseline deciders, driven by synthetic observations and, for vision-entropy, real frames."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import pytest

from rapid_env.agents.bandwidth_adaptive import BandwidthAdaptiveConfig, BandwidthAdaptiveDecider
from rapid_env.agents.chunk_threshold import ChunkThresholdConfig, ChunkThresholdDecider
from rapid_env.agents.periodic import PeriodicConfig, PeriodicDecider
from rapid_env.agents.registry import DECIDERS
from rapid_env.agents.static_split import StaticSplitDecider
from rapid_env.agents.vision_entropy import (
    CLEAN_REFERENCE_BITS,
    POLICY_THRESHOLDS,
    VisionEntropyConfig,
    VisionEntropyDecider,
    grey_entropy_bits,
)
from rapid_env.cost.model import InferencePlan, Stage, build_cost_model
from rapid_env.decision import DeciderContext, DeciderObservation
from rapid_env.tasks.proprio import ProprioWindow

N_SPLITS = 5  # a 4-block model: split 4 is all-edge


def window(n: int = 40) -> ProprioWindow:
    z = np.zeros((n, 7))
    return ProprioWindow(np.arange(n) * 0.0025, z, z, z, z)


def observe(
    remaining: int = 8, in_flight: int = 0, latency: float = 0.1, tick: int = 1,
    bandwidth: float = 1e7, rtt: float = 0.04, image: np.ndarray | None = None,
    since: float = 1.0, chunk_size: int = 8,
) -> DeciderObservation:
    return DeciderObservation(
        tick=tick, t=tick * 0.05, tick_dt=0.05, proprio=window(), samples_per_tick=20,
        chunk_remaining=remaining, chunk_size=chunk_size, in_flight=in_flight,
        since_request_s=since, last_latency_s=latency, link_bandwidth_bps=bandwidth,
        link_rtt_s=rtt, n_splits=N_SPLITS, image=image,
    )


@dataclass
class LinkCost:
    """A 4-block planner: edge compute grows with k, the uplink shrinks with k.

    Split k costs 0.05 s of edge compute per block, ``up_bytes[k]`` of uplink, 0.01 s of cloud.
    """

    n_blocks: int = 4
    up_bytes: tuple[int, ...] = (400_000, 200_000, 100_000, 50_000, 0)

    def plan(self, k: int) -> InferencePlan:
        stages = [Stage("edge", 0.05 * k, 0)]
        if k < self.n_blocks:
            stages += [Stage("up", 0.0, self.up_bytes[k]), Stage("cloud", 0.01, 0),
                       Stage("down", 0.0, 64)]
        return InferencePlan(k, tuple(stages))

    def best_split(self, bandwidth_bps: float, rtt_s: float) -> int:
        lat = [self.plan(k).latency_s(bandwidth_bps, rtt_s) for k in range(self.n_blocks + 1)]
        return int(np.argmin(lat))

    def edge_memory_bytes(self, k: int) -> float:
        return float(k)


def context(
    cost: object, bw: float = 1e7, rtt: float = 0.04, policy: object = None
) -> DeciderContext:
    return DeciderContext(
        cost=cost,  # type: ignore[arg-type]
        link_mean_bandwidth_bps=bw, link_mean_rtt_s=rtt, policy=policy, tick_dt=0.05,
    )


def test_registered_names_build_deciders():
    for name in ("static-split", "chunk-threshold", "periodic", "vision-entropy",
                 "bandwidth-adaptive"):
        d = DECIDERS.create(name)
        assert d.name == name
        d.reset(np.random.default_rng(0))


# ----------------------------------------------------------------------------- static-split


def test_static_split_plans_once_for_the_nominal_link():
    cost = LinkCost()
    fast, slow = StaticSplitDecider(), StaticSplitDecider()
    fast.bind(context(cost, bw=1e9, rtt=0.002))
    slow.bind(context(cost, bw=1e6, rtt=0.1))
    assert fast.split == 0 and slow.split == 4
    # the live estimate does not move it: the split was fixed at bind time
    dec = fast.decide(observe(remaining=0, bandwidth=1e3, rtt=1.0))
    assert dec.kind == "infer" and dec.split == 0
    assert fast.decide(observe(remaining=8)).kind == "keep"
    assert fast.decide(observe(remaining=0, in_flight=1)).kind == "keep"


def test_static_split_on_the_real_cost_model_and_ideal_link():
    cost = build_cost_model("openvla-7b", "jetson-agx-orin", "a100")
    ideal, dialup = StaticSplitDecider(), StaticSplitDecider()
    ideal.bind(context(cost, bw=math.inf, rtt=0.0))
    dialup.bind(context(cost, bw=1e6, rtt=0.2))
    assert ideal.split == 0  # free transfers: the A100 does everything
    assert dialup.split == cost.n_blocks  # 1 Mbps: shipping anything costs more than the Jetson


def test_static_split_rejects_unbound_use_and_bad_links():
    d = StaticSplitDecider()
    with pytest.raises(RuntimeError, match="bind"):
        d.decide(observe(remaining=0))
    with pytest.raises(ValueError, match="bandwidth_bps=0"):
        d.bind(context(LinkCost(), bw=0.0))
    with pytest.raises(ValueError, match="nan"):
        d.bind(context(LinkCost(), rtt=math.nan))


# ----------------------------------------------------------------------------- bandwidth-adaptive


def test_bandwidth_adaptive_follows_the_estimate():
    d = BandwidthAdaptiveDecider(BandwidthAdaptiveConfig(hysteresis=0.0))
    d.reset(np.random.default_rng(0))
    d.bind(context(LinkCost()))
    assert d.decide(observe(remaining=0, bandwidth=1e9, rtt=0.002)).split == 0
    assert d.decide(observe(remaining=0, bandwidth=1e6, rtt=0.1)).split == 4
    assert d.decide(observe(remaining=8, bandwidth=1e9)).kind == "keep"
    assert d.replans == 1


def test_bandwidth_adaptive_hysteresis_keeps_a_near_optimal_split():
    cost = LinkCost()
    d = BandwidthAdaptiveDecider(BandwidthAdaptiveConfig(hysteresis=0.5))
    d.bind(context(cost))
    assert d.plan(1e9, 0.002) == 0
    # find a bandwidth where another split is best but by less than 50%
    for bw in np.geomspace(1e9, 1e5, 200):
        best = cost.best_split(bw, 0.04)
        if best != 0:
            gain = 1 - cost.plan(best).latency_s(bw, 0.04) / cost.plan(0).latency_s(bw, 0.04)
            if gain < 0.5:
                assert d.plan(bw, 0.04) == 0
                break
    else:
        pytest.fail("no bandwidth with a small gain found")
    assert d.plan(1e5, 0.04) == 4  # a large gain moves it
    with pytest.raises(ValueError, match="hysteresis"):
        BandwidthAdaptiveConfig(hysteresis=1.0)
    with pytest.raises(RuntimeError, match="bind"):
        BandwidthAdaptiveDecider().plan(1e6, 0.04)


# ----------------------------------------------------------------------------- chunk-threshold


def test_chunk_threshold_requests_at_the_remaining_fraction():
    d = ChunkThresholdDecider()  # LeRobot's 0.5
    assert d.decide(observe(remaining=5)).kind == "keep"
    assert d.decide(observe(remaining=4)).kind == "infer"  # 4 / 8 <= 0.5
    assert d.decide(observe(remaining=0)).split is None
    assert d.decide(observe(remaining=2, in_flight=1)).kind == "keep"
    two = ChunkThresholdDecider(ChunkThresholdConfig(threshold=0.25, max_in_flight=2, split=3))
    assert two.decide(observe(remaining=3)).kind == "keep"
    dec = two.decide(observe(remaining=2, in_flight=1))
    assert dec.kind == "infer" and dec.split == 3
    with pytest.raises(ValueError, match="threshold"):
        ChunkThresholdConfig(threshold=1.5)
    with pytest.raises(ValueError, match="max_in_flight"):
        ChunkThresholdConfig(max_in_flight=0)


# ----------------------------------------------------------------------------- periodic


def test_periodic_requests_on_schedule_and_refills():
    d = PeriodicDecider()  # half of the 8-action chunk
    kinds = [d.decide(observe(tick=t, remaining=8, in_flight=1)).kind for t in range(12)]
    assert [t for t, k in enumerate(kinds) if k == "infer"] == [0, 4, 8]
    assert d.decide(observe(tick=3, remaining=1, latency=0.1)).kind == "infer"  # refill due
    d3 = PeriodicDecider(PeriodicConfig(period_ticks=3, split=0))
    assert d3.decide(observe(tick=6)).split == 0 and d3.decide(observe(tick=7)).kind == "keep"
    assert PeriodicDecider().period(1) == 1
    with pytest.raises(ValueError, match="period_ticks"):
        PeriodicConfig(period_ticks=0)


# ----------------------------------------------------------------------------- vision-entropy


def test_grey_entropy_of_flat_and_uniform_frames():
    flat = np.full((64, 64, 3), 128, np.uint8)
    assert grey_entropy_bits(flat) == 0.0
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert grey_entropy_bits(uniform, analysis_size=64) > 5.5  # near log2(64) = 6
    with pytest.raises(ValueError, match="HxWx3"):
        grey_entropy_bits(np.zeros((8, 8)))


def _noisy(level: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.zeros((64, 64, 3), np.float32)
    base[:, :32] = 60.0
    base[:, 32:] = 180.0
    return np.clip(base + rng.normal(0, level, base.shape), 0, 255).astype(np.uint8)


def test_vision_entropy_offloads_to_the_cloud_when_uncertain_else_refills_on_the_edge():
    d = VisionEntropyDecider(VisionEntropyConfig(reference_bits=1.0))
    d.reset(np.random.default_rng(0))
    quiet, noisy = _noisy(0.0), _noisy(40.0)
    assert d.decide(observe(image=quiet)).kind == "keep"
    dec = d.decide(observe(image=quiet, remaining=0))
    assert dec.kind == "infer" and dec.split == N_SPLITS - 1  # refill at the edge
    dec = d.decide(observe(image=noisy))
    assert dec.kind == "infer" and dec.split == 0 and d.last_score_bits > 1.0
    assert d.decide(observe(image=noisy, in_flight=1)).kind == "keep"
    assert d.triggers == 2
    cool = VisionEntropyDecider(VisionEntropyConfig(reference_bits=1.0, cooldown_s=0.5))
    assert cool.decide(observe(image=noisy, since=0.2)).kind == "keep"
    with pytest.raises(ValueError, match="image=None"):
        d.decide(observe())


def test_vision_entropy_escalate_mode_asks_at_refills_and_escalates_only_when_uncertain():
    d = VisionEntropyDecider(VisionEntropyConfig(reference_bits=1.0, mode="escalate"))
    d.reset(np.random.default_rng(0))
    quiet, noisy = _noisy(0.0), _noisy(40.0)
    assert d.decide(observe(image=noisy)).kind == "keep"  # no refill due: the signal waits
    calm = d.decide(observe(image=quiet, remaining=0))
    assert (calm.kind, calm.split, calm.escalate) == ("infer", None, False)  # early exit
    hot = d.decide(observe(image=noisy, remaining=0))
    assert (hot.kind, hot.split, hot.escalate) == ("infer", None, True)  # to the cloud
    assert d.triggers == 2
    with pytest.raises(ValueError, match="mode='escalate' splits at the env's fixed partition"):
        VisionEntropyConfig(mode="escalate", offload_split=3)
    with pytest.raises(ValueError, match="mode='cloud'; allowed: offload, escalate"):
        VisionEntropyConfig(mode="cloud")  # type: ignore[arg-type]


def test_vision_entropy_episode_reference_cancels_a_constant_corruption():
    cfg = VisionEntropyConfig(reference_bits=None, baseline_frames=3)
    d = VisionEntropyDecider(cfg)
    d.reset(np.random.default_rng(0))
    kinds = [d.decide(observe(image=_noisy(40.0, s))).kind for s in range(8)]
    assert kinds == ["keep"] * 8  # noisy from the start: the reference absorbs it
    d.reset(np.random.default_rng(0))
    for s in range(3):
        d.decide(observe(image=_noisy(0.0, s)))
    assert d.decide(observe(image=_noisy(40.0))).kind == "infer"  # noise that appears later


def test_vision_entropy_config_validation():
    with pytest.raises(ValueError, match="signal"):
        VisionEntropyConfig(signal="policy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold_bits"):
        VisionEntropyConfig(threshold_bits=0.0)
    with pytest.raises(ValueError, match="reference_bits"):
        VisionEntropyConfig(reference_bits=9.0)
    with pytest.raises(ValueError, match="policy_threshold"):
        VisionEntropyConfig(policy_threshold=0.0)


class SpreadPolicy:
    """A policy whose uncertainty is whatever the test sets."""

    def __init__(self, value: float | None) -> None:
        self.value = value
        self.calls = 0

    def action_uncertainty(
        self, inp: object, rng: np.random.Generator, samples: int
    ) -> float | None:
        self.calls += 1
        return self.value


def _policy_context(policy: object) -> DeciderContext:
    return replace(context(LinkCost(), policy=policy), policy_input=lambda: None)


def test_vision_entropy_policy_signal_triggers_and_is_charged_a_full_edge_pass():
    cfg = VisionEntropyConfig(signal="image+policy", reference_bits=1.0, policy_threshold=0.2)
    quiet = _noisy(0.0)
    for value, expect in ((0.5, "infer"), (0.1, "keep"), (None, "keep")):
        policy = SpreadPolicy(value)
        d = VisionEntropyDecider(cfg)
        d.reset(np.random.default_rng(0))
        d.bind(_policy_context(policy))  # type: ignore[arg-type]
        for _ in range(3):
            kind = d.decide(observe(image=quiet)).kind
        assert kind == expect and policy.calls == 3
        full_edge = LinkCost().plan(4).edge_seconds  # 4 blocks x 0.05 s
        assert d.model_overhead_s == pytest.approx(0.0 if value is None else 3 * full_edge)
    unbound = VisionEntropyDecider(cfg)
    with pytest.raises(RuntimeError, match="bind"):
        unbound.decide(observe(image=quiet))
    plain = VisionEntropyDecider(cfg)
    plain.bind(context(LinkCost(), policy=SpreadPolicy(0.5)))  # no policy_input provider
    with pytest.raises(RuntimeError, match="policy_input"):
        plain.decide(observe(image=quiet))


def test_image_only_signal_costs_no_model_pass():
    d = VisionEntropyDecider()
    d.reset(np.random.default_rng(0))
    d.bind(context(LinkCost(), policy=SpreadPolicy(0.9)))
    d.decide(observe(image=_noisy(40.0)))
    assert d.model_overhead_s == 0.0


def test_vision_entropy_offload_rate_rises_with_noise_severity():
    """On real rendered frames, more gaussian noise -> the trigger fires at least as often."""
    from rapid_env.noise import parse_noise
    from rapid_env.tasks.metaworld_task import MetaWorldTask

    task = MetaWorldTask("reach", image_size=64)
    try:
        frames = []
        for seed in range(3):
            task.reset(seed=seed)
            for _ in range(2):
                task.advance(np.array([0.5, -0.3, 0.2, 0.0], np.float32))
                frames.append(task.render_image())
        clean = VisionEntropyDecider()
        assert all(clean.decide(observe(image=f)).kind == "keep" for f in frames)
        assert abs(clean.last_entropy_bits - CLEAN_REFERENCE_BITS) < 0.3
        rates = [0.0]  # severity 0: the clean frames above, none fired
        for severity in range(1, 6):
            noise = parse_noise(f"gaussian_noise:{severity}")
            d = VisionEntropyDecider()
            fired = 0
            for i, frame in enumerate(frames):
                rng = np.random.default_rng(100 + i)  # same draws at every severity
                d.reset(rng)
                dec = d.decide(observe(image=noise(frame, rng)))
                fired += dec.kind == "infer" and dec.split == 0
            rates.append(fired / len(frames))
    finally:
        task.close()
    assert all(a <= b for a, b in zip(rates[:-1], rates[1:], strict=True)), rates
    assert rates[-1] > rates[0], rates
    assert rates[-1] == 1.0, rates



def test_default_policy_threshold_comes_from_the_family():
    cfg = VisionEntropyConfig(signal="image+policy")
    flow = SimpleNamespace(model=SimpleNamespace(cfg=SimpleNamespace(family="flow")))
    d = VisionEntropyDecider(cfg)
    d.bind(context(LinkCost(), policy=flow))
    assert d._policy_threshold == POLICY_THRESHOLDS["flow"]
    with pytest.raises(ValueError, match="family 'mystery'"):
        mystery = SimpleNamespace(model=SimpleNamespace(cfg=SimpleNamespace(family="mystery")))
        VisionEntropyDecider(cfg).bind(context(LinkCost(), policy=mystery))


@pytest.mark.parametrize("family", ["flow", "ar-token", "chunk-regress"])
def test_shipped_policy_action_uncertainty(family):
    """Flow: sample spread; ar-token: bin entropy; chunk-regress: none. ``act`` is unaffected."""
    import torch

    from rapid_env.agents.vla.policy import VLAPolicy
    from rapid_env.policy import PolicyInput

    torch.set_num_threads(1)
    policy = VLAPolicy.shipped(family)
    extra = {cam: _noisy(20.0, seed=1 + i) for i, cam in enumerate(policy.cameras)}
    inp = PolicyInput(  # a frame for every camera the checkpoint reads (two for some)
        _noisy(20.0), np.array([0.0, 0.6, 0.2, 1.0]), "reach the goal", images=extra
    )
    policy.reset(np.random.default_rng(1))
    before = policy.act(inp)
    policy.reset(np.random.default_rng(1))
    u = policy.action_uncertainty(inp, np.random.default_rng(5))
    assert np.array_equal(policy.act(inp), before)  # the probe leaves the policy's stream alone
    if family == "chunk-regress":
        assert u is None
    else:
        assert u is not None and 0.0 < u < 1.0
        assert u == policy.action_uncertainty(inp, np.random.default_rng(5))  # seeded
    with pytest.raises(ValueError, match="samples"):
        policy.action_uncertainty(inp, np.random.default_rng(0), samples=1)
