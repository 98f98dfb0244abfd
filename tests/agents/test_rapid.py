"""RAPID's trigger driven by synthetic kinematic streams, plus one check on real episodes."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pytest

from rapid_env.agents.rapid import (
    ABLATIONS,
    DEFAULT_CONFIG,
    RapidConfig,
    RapidDecider,
    acc_weight,
    importance,
    importance_parts,
    make_rapid,
    resolve_split,
)
from rapid_env.agents.registry import DECIDERS
from rapid_env.decision import DeciderContext, DeciderObservation
from rapid_env.tasks.proprio import ProprioWindow
from tests.conftest import FakeCost

SPT = 20  # samples per tick (Meta-World at 20 Hz: 4 steps x 5 substeps)
DT = 0.0025  # physics substep (s)
TICK = SPT * DT
WIN = 200  # samples the controller hands over (0.5 s)


# ----------------------------------------------------------------------------- synthetic streams
def window(
    tau_spike: float = 0.0, acc_spike: float = 0.0, speed: float = 0.3, seed: int = 0
) -> ProprioWindow:
    """0.5 s of steady motion at ``speed`` with sensor noise; spikes in the newest tick."""
    rng = np.random.default_rng(seed)
    t = np.arange(WIN) * DT
    qd = np.full((WIN, 7), speed / math.sqrt(7))
    qdd = rng.normal(0, 0.5, (WIN, 7))
    tau = 10 + rng.normal(0, 0.05, (WIN, 7)).cumsum(axis=0) * 0.1
    tau[-SPT:] += np.linspace(0, tau_spike, SPT)[:, None]
    qdd[-SPT:] += acc_spike
    return ProprioWindow(t, np.zeros((WIN, 7)), qd, qdd, tau)


class Stream:
    """A whole joint trajectory at 400 Hz, cut into the windows the controller would hand over.

    Velocities are sampled from ``qd_fn`` and accelerations differenced from them, as the task's
    proprioception does; torques come from ``tau_fn``; both get small seeded sensor noise.
    """

    def __init__(self, duration_s: float, qd_fn, tau_fn, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        n = int(round(duration_s / DT))
        self.t = (np.arange(n) + 1) * DT
        self.qd = np.array([qd_fn(x) for x in self.t]) + rng.normal(0, 1e-3, (n, 7))
        self.qdd = np.diff(self.qd, axis=0, prepend=self.qd[:1]) / DT
        self.tau = np.array([tau_fn(x) for x in self.t]) + rng.normal(0, 1e-3, (n, 7))
        self.q = np.cumsum(self.qd, axis=0) * DT
        self.ticks = n // SPT

    def window(self, tick: int) -> ProprioWindow:
        """The window seen at the start of ``tick`` (samples of the ticks before it)."""
        end = tick * SPT
        start = max(0, end - WIN)
        s = slice(start, end)
        return ProprioWindow(self.t[s], self.q[s], self.qd[s], self.qdd[s], self.tau[s])


def min_jerk_speed(t: float, start: float, duration: float, amplitude: float) -> np.ndarray:
    """Joint velocities of a minimum-jerk move of ``amplitude`` rad per joint."""
    x = np.clip((t - start) / duration, 0.0, 1.0)
    v = amplitude / duration * (30 * x**2 - 60 * x**3 + 30 * x**4)
    return np.full(7, v)


def obs(
    w: ProprioWindow,
    remaining: int = 5,
    in_flight: int = 0,
    since: float = 1.0,
    latency: float = 0.1,
    t: float = 0.5,
    image: np.ndarray | None = None,
) -> DeciderObservation:
    return DeciderObservation(
        tick=int(round(t / TICK)), t=t, tick_dt=TICK, proprio=w, samples_per_tick=SPT,
        chunk_remaining=remaining, chunk_size=8, in_flight=in_flight, since_request_s=since,
        last_latency_s=latency, link_bandwidth_bps=1e7, link_rtt_s=0.04, n_splits=5, image=image,
    )


def run_stream(decider: RapidDecider, stream: Stream, first_tick: int = 1):
    """Feed every tick of ``stream`` with a full chunk cached and nothing in flight."""
    decisions = []
    for tick in range(first_tick, stream.ticks + 1):
        decisions.append(decider.decide(obs(stream.window(tick), remaining=8, t=tick * TICK)))
    return decisions


# ----------------------------------------------------------------------------- the score
def test_smooth_transport_triggers_nothing():
    """A 1.5 s minimum-jerk transport (onset, cruise at ~3 rad/s, stop) is all redundant."""
    stream = Stream(
        2.0,
        lambda t: min_jerk_speed(t, 0.2, 1.5, 1.0),
        lambda t: 5.0 + 2.0 * min_jerk_speed(t, 0.2, 1.5, 1.0),  # drive torque follows the motion
    )
    d = RapidDecider(record_scores=True)
    decisions = run_stream(d, stream)
    assert all(x.kind == "keep" for x in decisions)
    assert max(d.scores) < DEFAULT_CONFIG.low_threshold
    assert max(np.linalg.norm(stream.qd, axis=1)) > 2.5  # it really was fast transport


def test_contact_torque_step_preempts_exactly_there():
    """Slow approach, then a contact: the drive torque ramps up within 10 ms."""
    contact_t = 1.0

    def tau(t: float) -> np.ndarray:
        return np.full(7, 5.0 + 8.0 * np.clip((t - contact_t) / 0.01, 0.0, 1.0))

    stream = Stream(1.5, lambda t: np.full(7, 0.1), tau)
    d = RapidDecider()
    decisions = run_stream(d, stream)
    fired = [i + 1 for i, x in enumerate(decisions) if x.kind == "infer"]
    contact_tick = int(math.ceil(contact_t / TICK))
    assert fired and fired[0] in (contact_tick, contact_tick + 1)
    assert decisions[fired[0] - 1].preempt
    assert d.counts["critical"] >= 1
    assert d.last_parts.acc_weight < 0.5  # slow motion: torque dominates


def test_torque_spike_preempts():
    dec = RapidDecider().decide(obs(window(tau_spike=30.0, speed=0.05)))
    assert dec.kind == "infer" and dec.preempt


def test_steady_noisy_motion_triggers_nothing():
    d = RapidDecider()
    for seed in range(20):
        for speed in (0.05, 1.0, 3.0):
            assert d.decide(obs(window(speed=speed, seed=seed))).kind == "keep"


def test_acceleration_spike_in_fast_motion_triggers():
    d = RapidDecider()
    dec = d.decide(obs(window(acc_spike=40.0, speed=3.0)))
    assert dec.kind == "infer" and dec.preempt
    assert d.last_parts.acc_weight > 0.5


def test_speed_shifts_weight_between_signals():
    cfg = RapidConfig()
    slow = importance(obs(window(tau_spike=30.0, speed=0.0)), cfg)
    fast = importance(obs(window(tau_spike=30.0, speed=3.0)), cfg)
    assert slow > fast > 0
    assert acc_weight(0.0, cfg) == pytest.approx(cfg.min_weight, abs=0.02)
    assert acc_weight(5.0, cfg) == pytest.approx(1 - cfg.min_weight, abs=0.02)
    assert acc_weight(cfg.speed_ref, cfg) == pytest.approx(0.5)


def test_score_is_zero_during_warm_up():
    w = window(tau_spike=30.0)
    short = ProprioWindow(w.t[-SPT - 10 :], w.q[-SPT - 10 :], w.qd[-SPT - 10 :],
                          w.qdd[-SPT - 10 :], w.tau[-SPT - 10 :])
    parts = importance_parts(obs(short), RapidConfig())
    assert parts.score == 0.0 and not parts.ready


def test_still_robot_jitter_is_not_an_anomaly():
    """A robot standing still: micro-jitter only, then a jitter burst 3x larger."""
    rng = np.random.default_rng(1)
    n = WIN
    qdd = rng.normal(0, 0.01, (n, 7))
    qdd[-SPT:] *= 3
    tau = 10 + rng.normal(0, 1e-4, (n, 7))
    tau[-SPT:] = 10 + rng.normal(0, 3e-4, (SPT, 7))
    w = ProprioWindow(np.arange(n) * DT, np.zeros((n, 7)), np.zeros((n, 7)), qdd, tau)
    assert RapidDecider().decide(obs(w)).kind == "keep"


# ----------------------------------------------------------------------------- the dispatcher
def intermediate_window() -> ProprioWindow:
    """A window whose score lies between the default thresholds."""
    cfg = RapidConfig()
    for spike in np.linspace(0.0, 5.0, 201):
        w = window(tau_spike=float(spike), speed=0.05)
        if cfg.low_threshold <= importance(obs(w), cfg) < cfg.high_threshold:
            return w
    raise AssertionError("no intermediate score found")


def test_intermediate_requests_without_preempting():
    dec = RapidDecider().decide(obs(intermediate_window()))
    assert dec.kind == "infer" and not dec.preempt


def test_critical_fires_while_one_request_is_in_flight():
    d = RapidDecider()
    crit = window(tau_spike=30.0, speed=0.05)
    dec = d.decide(obs(crit, in_flight=1))
    assert dec.kind == "infer" and dec.preempt
    assert RapidDecider().decide(obs(crit, in_flight=2)).kind == "keep"
    single = RapidDecider(RapidConfig(critical_max_in_flight=1))
    assert single.decide(obs(crit, in_flight=1)).kind == "keep"


def test_intermediate_waits_for_nothing_in_flight():
    assert RapidDecider().decide(obs(intermediate_window(), in_flight=1)).kind == "keep"


def test_cooldown_holds_after_a_trigger():
    d = RapidDecider(RapidConfig(cooldown_s=0.3))
    crit = window(tau_spike=30.0, speed=0.05)
    assert d.decide(obs(crit, t=1.0)).kind == "infer"
    assert d.decide(obs(crit, t=1.05, since=0.05)).kind == "keep"
    assert d.decide(obs(crit, t=1.25, since=0.25)).kind == "keep"
    assert d.decide(obs(crit, t=1.30, since=0.30)).kind == "infer"


def test_cooldown_scope_any_counts_refills():
    crit = window(tau_spike=30.0, speed=0.05)
    # a refill went out 0.1 s ago; the trigger itself has never fired
    trig = RapidDecider(RapidConfig(cooldown_s=0.2, cooldown_scope="trigger"))
    anyr = RapidDecider(RapidConfig(cooldown_s=0.2, cooldown_scope="any"))
    assert trig.decide(obs(crit, since=0.1, in_flight=1)).kind == "infer"
    assert anyr.decide(obs(crit, since=0.1, in_flight=1)).kind == "keep"


def test_refill_whatever_the_score():
    d = RapidDecider()
    dec = d.decide(obs(window(), remaining=1, latency=0.1))  # 1 action left, 2 ticks of latency
    assert dec.kind == "infer" and not dec.preempt and dec.split is None
    assert d.counts == {"refill": 1, "critical": 0, "intermediate": 0}


@pytest.mark.parametrize(("choice", "split"), [(None, None), ("edge", 4), ("cloud", 0), (2, 2)])
def test_refill_and_trigger_placement(choice, split):
    d = RapidDecider(RapidConfig(refill_split=choice, trigger_split=choice))
    assert d.decide(obs(window(), remaining=0)).split == split
    assert d.decide(obs(window(tau_spike=30.0, speed=0.05))).split == split


def test_split_out_of_range_fails_early():
    with pytest.raises(ValueError, match="out of range"):
        resolve_split(5, 5)
    d = RapidDecider(RapidConfig(refill_split=7))
    ctx = DeciderContext(cost=FakeCost(n_blocks=2), link_mean_bandwidth_bps=1e7,
                         link_mean_rtt_s=0.04, policy=None, tick_dt=TICK)
    with pytest.raises(ValueError, match=r"allowed: 0 \.\. 2"):
        d.bind(ctx)
    RapidDecider(RapidConfig(refill_split=2, trigger_split="edge")).bind(ctx)


@pytest.mark.parametrize(
    "bad",
    [
        {"low_threshold": 5.0, "high_threshold": 4.0},
        {"low_threshold": 0.0},
        {"high_threshold": math.inf},
        {"cooldown_s": -0.1},
        {"speed_scale": 0.0},
        {"min_weight": 0.6},
        {"signals": "vision"},
        {"cooldown_scope": "sometimes"},
        {"refill_split": "fog"},
        {"trigger_split": -1},
        {"critical_max_in_flight": 0},
        {"min_history_s": 1.0},
    ],
)
def test_bad_config_names_the_value(bad):
    with pytest.raises(ValueError, match=str(next(iter(bad.values()))).split(".")[0]):
        RapidConfig(**bad)


# ----------------------------------------------------------------------------- ablations
def test_each_ablation_flips_exactly_one_field():
    names = {f.name for f in fields(RapidConfig)}
    for name, cfg in ABLATIONS.items():
        diff = {n for n in names if getattr(cfg, n) != getattr(DEFAULT_CONFIG, n)}
        assert len(diff) == (0 if name == "rapid" else 1), (name, diff)
        decider = DECIDERS.create(name)
        assert decider.name == name and decider.config == cfg
    with pytest.raises(ValueError, match="allowed: rapid, rapid-acc-only"):
        make_rapid("rapid-vision")


def test_single_signal_ablations_ignore_the_other_signal():
    tau_spike = obs(window(tau_spike=30.0, speed=0.05))
    acc_spike = obs(window(acc_spike=40.0, speed=0.05))
    assert make_rapid("rapid-acc-only").decide(tau_spike).kind == "keep"
    assert make_rapid("rapid-acc-only").decide(acc_spike).kind == "infer"
    assert make_rapid("rapid-torque-only").decide(acc_spike).kind == "keep"
    assert make_rapid("rapid-torque-only").decide(tau_spike).kind == "infer"


def test_fixed_weights_ignore_speed():
    cfg = ABLATIONS["rapid-fixed-weights"]
    assert acc_weight(0.0, cfg) == acc_weight(5.0, cfg) == cfg.fixed_acc_weight


def test_single_threshold_drops_the_intermediate_tier():
    w = intermediate_window()
    assert make_rapid("rapid-single-threshold").decide(obs(w)).kind == "keep"
    dec = make_rapid("rapid-single-threshold").decide(obs(window(tau_spike=30.0, speed=0.05)))
    assert dec.kind == "infer" and dec.preempt


def test_no_preempt_still_requests():
    dec = make_rapid("rapid-no-preempt").decide(obs(window(tau_spike=30.0, speed=0.05)))
    assert dec.kind == "infer" and not dec.preempt


def test_link_aware_preempts_only_on_a_fast_link():
    spike = window(tau_spike=30.0, speed=0.05)
    fast = make_rapid("rapid-link-aware").decide(obs(spike, latency=0.15))
    slow = make_rapid("rapid-link-aware").decide(obs(spike, latency=0.45))
    first = make_rapid("rapid-link-aware").decide(obs(spike, latency=math.nan))
    assert fast.kind == slow.kind == first.kind == "infer"
    assert fast.preempt and first.preempt and not slow.preempt


def test_no_cooldown_fires_back_to_back():
    crit = window(tau_spike=30.0, speed=0.05)
    d = make_rapid("rapid-no-cooldown")
    assert d.decide(obs(crit, t=1.0)).kind == "infer"
    assert d.decide(obs(crit, t=1.05, since=0.05)).kind == "infer"


# ----------------------------------------------------------------------------- image blindness
def test_decisions_ignore_the_image():
    """Identical proprio streams give identical decisions, whatever the frames."""
    rng = np.random.default_rng(3)
    stream = Stream(
        1.5,
        lambda t: min_jerk_speed(t, 0.1, 0.8, 0.6),
        lambda t: np.full(7, 5.0 + 6.0 * (t > 1.0)),
    )
    runs = []
    for frames in ("none", "noise", "black"):
        d = RapidDecider(record_scores=True)
        decisions = []
        for tick in range(1, stream.ticks + 1):
            image = {
                "none": None,
                "noise": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                "black": np.zeros((32, 32, 3), dtype=np.uint8),
            }[frames]
            decisions.append(d.decide(obs(stream.window(tick), t=tick * TICK, image=image)))
        runs.append((decisions, d.scores))
    assert runs[0] == runs[1] == runs[2]
    assert any(x.kind == "infer" for x in runs[0][0])  # the stream did trigger something
    assert RapidDecider.needs_image is False


@pytest.mark.slow
def test_offload_rate_does_not_depend_on_noise_severity():
    """On real episodes with an image-blind policy, noise severity changes no RAPID decision."""
    from rapid_env.compose import build_controller
    from rapid_env.config import EnvConfig
    from rapid_env.episode import run_episode

    keys = ("inferences", "offloads", "preemptions", "steps", "success")
    results, frames = [], []
    for noise in ("clean", "gaussian_noise:1", "gaussian_noise:5"):
        cfg = replace(EnvConfig(), task="push", policy="expert", noise=noise, image_size=32)
        controller = build_controller(cfg, decider_needs_image=DECIDERS.create("rapid").needs_image)
        try:
            d = DECIDERS.create("rapid")
            assert isinstance(d, RapidDecider)
            rec = run_episode(controller, d, seed=0)
            results.append(({k: rec[k] for k in keys}, dict(d.counts)))
            frames.append(controller.frame())  # what a vision trigger would have seen
        finally:
            controller.task.close()
    assert results[0] == results[1] == results[2]
    assert results[0][0]["inferences"] > 0
    # the noise was real: the frames differ more and more with severity
    err = [float(np.abs(f.astype(float) - frames[0].astype(float)).mean()) for f in frames]
    assert 0 == err[0] < err[1] < err[2]


def test_floored_zscore_matches_its_formula():
    from rapid_env.features import floored_zscore

    x = np.random.default_rng(4).gamma(2.0, 3.0, 181)
    past, now = x[:-20], x[-20:].mean()
    want = (now - past.mean()) / (past.std() + 0.5 + 0.05 * past.mean() + 1e-6)
    assert floored_zscore(x, 20, 0.5, 0.05, 40) == pytest.approx(want, rel=1e-9)
    assert floored_zscore(x[:50], 20, 0.5, 0.05, 40) == 0.0  # 30 past samples < 40
