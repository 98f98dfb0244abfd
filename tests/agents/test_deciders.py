"""Deciders driven by synthetic kinematic streams."""

from __future__ import annotations

import math

import numpy as np

from rapid_env.agents.fixed_split import FixedSplitDecider
from rapid_env.agents.rapid import RapidConfig, RapidDecider, importance
from rapid_env.decision import DeciderObservation
from rapid_env.proprio import ProprioWindow

SPT = 20  # samples per tick
DT = 0.0025


def window(tau_spike: float = 0.0, acc_spike: float = 0.0, speed: float = 0.3) -> ProprioWindow:
    n = 200
    rng = np.random.default_rng(0)
    t = np.arange(n) * DT
    qd = np.full((n, 7), speed / math.sqrt(7))
    qdd = rng.normal(0, 0.5, (n, 7))
    tau = 10 + rng.normal(0, 0.05, (n, 7)).cumsum(axis=0) * 0.1
    tau[-SPT:] += np.linspace(0, tau_spike, SPT)[:, None]
    qdd[-SPT:] += acc_spike
    return ProprioWindow(t, np.zeros((n, 7)), qd, qdd, tau)


def obs(w: ProprioWindow, remaining: int = 5, in_flight: int = 0, since: float = 1.0,
        latency: float = 0.1) -> DeciderObservation:
    return DeciderObservation(
        tick=10, t=0.5, tick_dt=0.05, proprio=w, samples_per_tick=SPT, chunk_remaining=remaining,
        chunk_size=8, in_flight=in_flight, since_request_s=since, last_latency_s=latency,
        link_bandwidth_bps=1e7, link_rtt_s=0.04, n_splits=5,
    )


def test_smooth_transport_triggers_nothing():
    d = RapidDecider()
    assert d.decide(obs(window())).kind == "keep"


def test_torque_spike_preempts():
    d = RapidDecider()
    dec = d.decide(obs(window(tau_spike=30.0, speed=0.05)))
    assert dec.kind == "infer" and dec.preempt


def test_acceleration_spike_in_fast_motion_triggers():
    d = RapidDecider()
    assert d.decide(obs(window(acc_spike=40.0, speed=1.5))).kind == "infer"


def test_speed_shifts_weight_between_signals():
    cfg = RapidConfig()
    w = window(tau_spike=30.0)
    slow = importance(obs(window(tau_spike=30.0, speed=0.0)), cfg)
    fast = importance(obs(window(tau_spike=30.0, speed=2.0)), cfg)
    assert slow > fast > 0
    assert importance(obs(w), cfg) > 0


def test_cooldown_holds():
    d = RapidDecider(RapidConfig(cooldown_s=0.3))
    assert d.decide(obs(window(tau_spike=30.0, speed=0.05), since=0.1)).kind == "keep"
    assert d.decide(obs(window(tau_spike=30.0, speed=0.05), since=0.4)).kind == "infer"


def test_refill_whatever_the_score():
    d = RapidDecider()
    dec = d.decide(obs(window(), remaining=1, latency=0.1))  # 1 action left, 2 ticks of latency
    assert dec.kind == "infer" and not dec.preempt


def test_fixed_split_deciders():
    o = obs(window(), remaining=0)
    assert FixedSplitDecider("edge").decide(o).split == 4
    assert FixedSplitDecider("cloud").decide(o).split == 0
    assert FixedSplitDecider("edge").decide(obs(window(), remaining=0, in_flight=1)).kind == "keep"
