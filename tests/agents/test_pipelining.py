"""Pipelined refills (``max_in_flight``), the crossing reading of the vision trigger, and RAPID's
settle option: truth tables on built observations, plus real episodes in MuJoCo."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rapid_env.agents.rapid import RapidConfig, RapidDecider
from rapid_env.agents.refill import covered_ticks, lead_ticks, refill_due, ticks_since_request
from rapid_env.agents.registry import DECIDERS
from rapid_env.agents.vision_entropy import VisionEntropyConfig, VisionEntropyDecider
from rapid_env.decision import DeciderObservation
from tests.agents.test_baselines import _noisy, observe
from tests.agents.test_rapid import obs as rapid_obs
from tests.agents.test_rapid import window as rapid_window

# every built-in decider that uses the shared refill rule (chunk-threshold: its own trigger is
# its refill rule and has had the field all along)
REFILL_DECIDERS = (
    "rapid", "rapid-acc-only", "rapid-torque-only", "rapid-fixed-weights",
    "rapid-single-threshold", "rapid-no-preempt", "rapid-no-cooldown", "rapid-settle",
    "rapid-link-aware", "edge-only", "cloud-only", "static-split", "periodic", "vision-entropy",
    "bandwidth-adaptive", "chunk-threshold",
)


def at(
    remaining: int, in_flight: int, since_ticks: float, latency_ticks: float
) -> DeciderObservation:
    """An observation with ``since_ticks`` ticks since the last request and that latency."""
    return observe(remaining=remaining, in_flight=in_flight, since=since_ticks * 0.05,
                   latency=latency_ticks * 0.05)


# ----------------------------------------------------------------------------- refill_due
@pytest.mark.parametrize(
    ("remaining", "in_flight", "since", "latency", "mif", "due"),
    [
        # nothing in flight: today's rule, whatever max_in_flight says
        (6, 0, 9, 5.4, 1, True), (7, 0, 9, 5.4, 1, False), (6, 0, 9, 5.4, 2, True),
        (7, 0, 2, 5.4, 2, False), (0, 0, 1, float("nan"), 2, True),
        # one in flight, max_in_flight=1: never (today)
        (0, 1, 7, 5.4, 1, False), (2, 1, 4, 5.4, 1, False),
        # one in flight, pipelined: the newest chunk covers chunk_size - since ticks
        (2, 1, 1, 5.4, 2, False),  # covered 7 > lead 6
        (2, 1, 2, 5.4, 2, False),  # covered 6 <= 6 but only 2 ticks after it (spacing: 3)
        (2, 1, 3, 5.4, 2, True),   # covered 5, spaced by lead / 2
        (7, 1, 3, 5.4, 2, False),  # the cache itself still covers 7 ticks
        (0, 1, 2, 5.4, 3, True),   # three slots: spacing lead / 3 = 2 ticks
        (0, 2, 7, 5.4, 2, False),  # both slots taken
        (0, 2, 7, 5.4, 3, True),
        (0, 1, 7, float("nan"), 2, False),  # before any latency is known: wait for the chunk
        (0, 1, 8, float("nan"), 2, True),   # ... unless the newest would be used up already
    ],
)
def test_refill_due_truth_table(remaining, in_flight, since, latency, mif, due):
    o = at(remaining, in_flight, since, latency)
    assert refill_due(o, mif) is due
    if mif == 1:
        assert refill_due(o) is due


def test_max_in_flight_one_is_the_single_request_rule_everywhere():
    for remaining in range(0, 9):
        for in_flight in range(0, 3):
            for since in (0.5, 1, 3, 8, float("inf")):
                for latency in (float("nan"), 1.0, 5.4, 9.0):
                    o = at(remaining, in_flight, since, latency)
                    single = o.in_flight == 0 and o.chunk_remaining <= lead_ticks(o)
                    assert refill_due(o, 1) is single


def test_covered_ticks_and_ticks_since_request():
    o = at(2, 1, 3, 5.4)
    assert ticks_since_request(o) == 3 and covered_ticks(o) == 5 and lead_ticks(o) == 6
    assert ticks_since_request(observe(since=float("inf"))) > 10**6


# ----------------------------------------------------------------------------- every decider
@pytest.mark.parametrize("name", REFILL_DECIDERS)
def test_every_refill_decider_accepts_max_in_flight(name):
    d = DECIDERS.create(f"{name}(max_in_flight=2)")
    assert d.config.max_in_flight == 2 and d.name == f"{name}(max_in_flight=2)"
    assert DECIDERS.create(name).config.max_in_flight == 1
    for bad in ("0", "65", "1.5", "two"):
        with pytest.raises(ValueError, match="max_in_flight"):
            DECIDERS.create(f"{name}(max_in_flight={bad})")


@pytest.mark.parametrize("value", [0, 65, -1, True, 2.0])
def test_bad_max_in_flight_is_named(value):
    with pytest.raises(ValueError, match=r"max_in_flight=.*allowed: an int in 1\.\.64"):
        RapidConfig(max_in_flight=value)  # type: ignore[arg-type]


def test_pipelined_deciders_ask_while_one_request_is_in_flight():
    o = at(2, 1, 3, 5.4)
    for name in REFILL_DECIDERS:
        if name in ("periodic", "chunk-threshold"):
            continue  # their own schedules; covered below
        one, two = DECIDERS.create(name), DECIDERS.create(f"{name}(max_in_flight=2)")
        for d in (one, two):
            d.reset(np.random.default_rng(0))
            if name == "static-split":
                d.split = 4  # what bind plans; the rule is what is under test
            if name == "bandwidth-adaptive":
                d.split = 4
                d.cost = _OneSplit()
        image = _noisy(0.0) if name == "vision-entropy" else None
        oo = dataclasses.replace(o, image=image)
        assert one.decide(oo).kind == "keep", name
        assert two.decide(oo).kind == "infer", name
    periodic = DECIDERS.create("periodic(period_ticks=100,max_in_flight=2)")
    assert periodic.decide(dataclasses.replace(o, tick=3)).kind == "infer"
    assert DECIDERS.create("periodic(period_ticks=100)").decide(
        dataclasses.replace(o, tick=3)).kind == "keep"


class _OneSplit:
    """A planner whose best split is always 4 (bandwidth-adaptive's re-plan is not under test)."""

    n_blocks = 4

    def best_split(self, bandwidth_bps: float, rtt_s: float) -> int:
        return 4


def test_rapid_trigger_bounds_count_on_top_of_the_refill_pipeline():
    crit = rapid_window(tau_spike=30.0, speed=0.05)
    # two refills in flight (the pipeline of 2): the critical request still has its slot
    assert RapidDecider().decide(rapid_obs(crit, in_flight=2)).kind == "keep"
    two = RapidDecider(RapidConfig(max_in_flight=2))
    dec = two.decide(rapid_obs(crit, in_flight=2, since=0.05))
    assert dec.kind == "infer" and dec.preempt and two.counts["critical"] == 1
    assert RapidDecider(RapidConfig(max_in_flight=2)).decide(
        rapid_obs(crit, in_flight=3, since=0.05)).kind == "keep"


# ----------------------------------------------------------------------------- cross reading
def test_cross_mode_escalates_every_refill_and_charges_the_detector():
    d = VisionEntropyDecider(VisionEntropyConfig(mode="escalate", untriggered="cross",
                                                 detector_ms=0.5))
    d.reset(np.random.default_rng(0))
    quiet, noisy = _noisy(0.0), _noisy(40.0)
    calm = d.decide(observe(image=quiet, remaining=0))
    assert (calm.kind, calm.escalate) == ("infer", True)  # crosses although the scene is calm
    assert d.decide(observe(image=quiet, remaining=8)).kind == "keep"
    # a trigger asks for a fresh plan beyond the refill rule (nothing in flight) ...
    hot = d.decide(observe(image=noisy, remaining=8))
    assert (hot.kind, hot.escalate) == ("infer", True) and d.cross_triggers == 1
    # ... with one slot beyond the refills (the controller's default cap of 2), not past it
    assert d.decide(observe(image=noisy, remaining=8, in_flight=1)).kind == "infer"
    assert d.decide(observe(image=noisy, remaining=8, in_flight=2)).kind == "keep"
    assert d.model_overhead_s == pytest.approx(5 * 0.5e-3)  # 5 ticks, one probe each
    early = VisionEntropyDecider(VisionEntropyConfig(mode="escalate"))
    early.reset(np.random.default_rng(0))
    early.decide(observe(image=quiet, remaining=0))
    assert early.model_overhead_s == 0.0  # the default reading charges nothing (unchanged)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "escalate", "untriggered": "never"},
         "untriggered='never'; allowed: early-exit, cross"),
        ({"untriggered": "cross"}, "untriggered='cross' with mode='offload'; allowed"),
        ({"mode": "escalate", "untriggered": "cross", "detector_ms": -1.0}, "detector_ms=-1.0"),
        ({"detector_ms": float("nan")}, "detector_ms=nan"),
    ],
)
def test_cross_mode_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VisionEntropyConfig(**kwargs)


# ----------------------------------------------------------------------------- settle
def test_settle_silences_the_trigger_right_after_a_stall_ends():
    crit = rapid_window(tau_spike=30.0, speed=0.05)
    plain, settle = RapidDecider(), RapidDecider(RapidConfig(settle_ticks=2))
    for d in (plain, settle):
        d.reset(np.random.default_rng(0))
    # a stall (nothing cached, a chunk in flight), then the chunk lands with 8 actions
    seq = [(0, 1, 0.5), (0, 1, 0.55), (8, 0, 0.6), (7, 0, 0.65), (6, 0, 0.7)]
    got = {}
    for d in (plain, settle):
        kinds = []
        for remaining, in_flight, t in seq:
            o = rapid_obs(crit, remaining=remaining, in_flight=in_flight, t=t, since=1.0)
            kinds.append(d.decide(o).kind)
            d._last_trigger_t = -1.0  # no cooldown in the way: settle is what is under test
        got[d] = kinds
    assert got[plain][2] == "infer"  # without the option the restart itself triggers
    assert got[settle][2:] == ["keep", "keep", "infer"]  # 2 ticks of silence, then it may fire
    assert settle.settled == 2 and settle.counts["critical"] < plain.counts["critical"]


def test_settle_never_holds_back_a_refill():
    d = RapidDecider(RapidConfig(settle_ticks=5))
    d.reset(np.random.default_rng(0))
    d.decide(rapid_obs(rapid_window(), remaining=0, in_flight=1))
    dec = d.decide(rapid_obs(rapid_window(), remaining=1, in_flight=0, latency=0.1))
    assert dec.kind == "infer" and d.counts["refill"] == 1


def test_rapid_settle_is_registered_as_a_one_switch_ablation():
    d = DECIDERS.create("rapid-settle")
    assert d.config == dataclasses.replace(RapidConfig(), settle_ticks=2)
    for bad in (-1, 1001, True):
        with pytest.raises(ValueError, match="settle_ticks"):
            RapidConfig(settle_ticks=bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- real episodes
def _episode(spec: str, link: str, edge_budget_gib: float | None, task: str = "reach") -> dict:
    """One 4 s episode of the chunk-regress@v1 policy, seed 1000, with the sweep flag's cap.

    Pinned to v1: the stall counts these tests compare were chosen on its episodes (the
    mechanism, not the policy, is under test).
    """
    from rapid_env.compose import build_controller, build_decider
    from rapid_env.config import ControlConfig, EnvConfig
    from rapid_env.episode import run_episode

    d = build_decider(spec)
    cap = max(2, d.config.max_in_flight + 1)  # what rapid-eval --max-in-flight sets
    cfg = EnvConfig(task=task, policy="chunk-regress@v1", link=link, image_size=32,
                    max_episode_s=4.0, edge_budget_gib=edge_budget_gib,
                    control=ControlConfig(max_in_flight=cap))
    c = build_controller(cfg, d.needs_image)
    try:
        return run_episode(c, d, 1000)
    finally:
        c.task.close()


def test_pipelining_cuts_stalls_when_requests_do_not_share_the_link():
    # 150 ms RTT: a request takes 283 ms, more than half a chunk of 8 at 20 Hz
    one = _episode("rapid", "constant:20:150", None)
    two = _episode("rapid(max_in_flight=2)", "constant:20:150", None)
    assert one["latency_ms_mean"] > 200  # the regime where one request at a time stalls
    assert two["stall_steps"] < one["stall_steps"], (two["stall_steps"], one["stall_steps"])
    assert two["inferences"] > one["inferences"] and two["refused_requests"] == 0


def test_pipelining_cuts_stalls_in_the_papers_regime():
    one = _episode("rapid", "lab-wifi6", 2.4)
    two = _episode("rapid(max_in_flight=2)", "lab-wifi6", 2.4)
    assert two["stall_steps"] < one["stall_steps"], (two["stall_steps"], one["stall_steps"])
    # the second request's upload goes out in the gaps between the first's token transfers
    # (the link books out of order), so pipelining does not buy its refills a longer wait
    assert two["latency_ms_mean"] < 1.15 * one["latency_ms_mean"]


def test_cross_reading_in_a_real_episode_never_exits_early_and_charges_the_detector():
    early = _episode("vision-entropy(mode=escalate)", "lab-wifi6", 4.7)
    cross = _episode("vision-entropy(mode=escalate,untriggered=cross)", "lab-wifi6", 4.7)
    assert early["early_exits"] > 0  # the default reading: mostly early exits on a clean scene
    assert cross["early_exits"] == 0 and cross["offloads"] == cross["inferences"] > 0
    ticks = cross["steps"]
    assert cross["decision_model_ms"] == pytest.approx(0.7 * ticks)
    assert early["decision_model_ms"] == 0.0
