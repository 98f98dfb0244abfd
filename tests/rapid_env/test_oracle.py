"""The redundancy oracle: known answers on fake policies, and shadow passes that change nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rapid_env.compose import build_controller, build_decider
from rapid_env.config import EnvConfig
from rapid_env.decision import KEEP, DeciderBase, Decision
from rapid_env.episode import WALL_CLOCK_FIELDS, run_episode
from rapid_env.oracle import (
    OracleTick,
    RedundancyOracle,
    action_distance,
    divergence_events,
    first_request,
    floor_rng,
    policy_rng_kept,
    precision_recall,
    tol_name,
)
from tests.rapid_env.test_controller import make

INFER = Decision("infer")
TOLS = ("0.05", "0.1", "0.2")


def f(t: int) -> np.ndarray:
    """The action a fixed plan puts at tick ``t`` (varies from tick to tick)."""
    return np.array([0.3 * np.sin(0.3 * t), 0.2 * np.cos(0.2 * t), 0.01 * (t % 7), 0.0],
                    dtype=np.float32)


class OnPlan:
    """Every chunk follows one fixed plan from the tick it is asked at: a fresh chunk's first
    action is exactly the action the robot is about to execute from an older chunk."""

    name = "on-plan"
    needs_image = False

    def __init__(self, chunk_size: int = 8, events: frozenset[int] = frozenset()) -> None:
        self.chunk_size = chunk_size
        self.events = events  # ticks on which a fresh plan's first action jumps by 0.5

    def reset(self, rng: np.random.Generator) -> None:
        pass

    def act(self, inp: Any) -> np.ndarray:
        t = inp.sim.tick
        chunk = np.stack([f(t + i) for i in range(self.chunk_size)])
        if t in self.events:
            chunk[0, 0] += 0.5
        return chunk


class OffPlan(OnPlan):
    """A fresh chunk's first action is always 1.0 away from its later actions (and so from
    every action an older chunk has queued for this tick)."""

    def act(self, inp: Any) -> np.ndarray:
        chunk = np.full((self.chunk_size, 4), -0.5, dtype=np.float32)
        chunk[0] = 0.5
        return chunk


def _refill_when_low(c) -> Decision:
    return INFER if c.buffer.remaining <= 1 else KEEP


def test_policy_that_returns_the_executed_chunk_is_100_percent_redundant(reach_task):
    c = make(reach_task, 0.0, OnPlan())
    oracle = RedundancyOracle()
    oracle.begin(c)
    c.step(INFER)
    oracle.begin(c)
    for _ in range(20):
        d = _refill_when_low(c)
        row = oracle.observe(c.observation(), d)
        assert row.distance is not None and row.distance < 1e-6
        c.step(d)
    got = oracle.fields()
    assert got["oracle_ticks"] == 20 and got["oracle_empty_ticks"] == 0
    assert got["oracle_requests"] > 0
    for tol in TOLS:
        assert got[f"redundant_share_{tol}"] == 1.0
        assert got[f"oracle_nonredundant_{tol}"] == 0
        assert got[f"trigger_precision_{tol}"] == 0.0  # every request was on a redundant tick
        assert got[f"trigger_recall_{tol}"] is None  # nothing to recall


def test_policy_that_never_agrees_is_0_percent_redundant(reach_task):
    c = make(reach_task, 0.0, OffPlan())
    oracle = RedundancyOracle()
    oracle.begin(c)
    c.step(INFER)
    oracle.begin(c)
    for _ in range(20):
        d = _refill_when_low(c)
        row = oracle.observe(c.observation(), d)
        assert row.distance == pytest.approx(1.0)
        c.step(d)
    got = oracle.fields()
    for tol in TOLS:
        assert got[f"redundant_share_{tol}"] == 0.0
        assert got[f"trigger_precision_{tol}"] == 1.0
        assert got[f"trigger_recall_{tol}"] == pytest.approx(got["oracle_requests"] / 20)


def test_empty_buffer_is_non_redundant_unless_compared_with_the_hold(reach_task):
    c = make(reach_task, 0.0, OnPlan())
    oracle = RedundancyOracle()
    oracle.begin(c)
    row = oracle.observe(c.observation(), KEEP)  # first tick: nothing cached
    assert row.empty and row.distance is None and not row.redundant(10.0)
    hold = RedundancyOracle(empty="compare_hold")
    hold.begin(c)
    row = hold.observe(c.observation(), KEEP)  # hold [0, 0, 0, 0] vs f(0) = [0, 0.2, 0, 0]
    assert row.empty and row.distance == pytest.approx(0.2)
    assert row.redundant(0.3) and not row.redundant(0.2)


def test_run_episode_counts_the_first_tick_as_non_redundant(reach_task):
    class RefillWhenLow(DeciderBase):
        name, needs_image = "refill-when-low", False

        def reset(self, rng):
            pass

        def decide(self, obs):
            return INFER if obs.chunk_remaining <= 1 else KEEP

    from rapid_env.controller import PartitionedController

    c: PartitionedController = make(reach_task, 0.0, OnPlan())
    oracle = RedundancyOracle()
    record = run_episode(c, RefillWhenLow(), seed=3, oracle=oracle)
    n = record["steps"]
    assert record["oracle_ticks"] == n == len(oracle.ticks) and record["oracle_empty_ticks"] == 1
    for tol in TOLS:
        assert record[f"redundant_share_{tol}"] == pytest.approx((n - 1) / n)
        assert record[f"trigger_recall_{tol}"] == 1.0  # the first tick requested
        assert record[f"trigger_precision_{tol}"] == pytest.approx(1 / record["inferences"])


def test_precision_and_recall_on_a_hand_made_sequence():
    nonred = [1, 0, 0, 1, 1, 0, 0, 0, 1, 0]
    req = [1, 1, 0, 0, 1, 0, 0, 1, 0, 0]
    # requests at 0, 1, 4, 7; non-redundant at 0, 3, 4, 8 -> hits 0, 4
    assert precision_recall([bool(x) for x in nonred], [bool(x) for x in req]) == (0.5, 0.5)
    assert precision_recall([True, False], [False, False]) == (None, 0.0)
    assert precision_recall([False, False], [True, False]) == (0.0, None)
    with pytest.raises(ValueError):
        precision_recall([True], [True, False])


def test_precision_and_recall_of_a_scripted_decider_in_the_loop(reach_task):
    events = {3, 6, 10, 15}  # a fresh plan's first action jumps by 0.5 here: non-redundant
    requests = {1, 3, 10, 12}  # the decider asks here: hits at 3 and 10
    c = make(reach_task, 0.0, OnPlan(chunk_size=40, events=frozenset(events)))
    oracle = RedundancyOracle(refill_due=lambda obs: obs.tick == 12)  # say the rule was due
    c.step(INFER)  # tick 0 fills the buffer; scored from tick 1 on
    oracle.begin(c)
    for t in range(1, 21):
        assert c.task.tick == t
        d = INFER if t in requests else KEEP
        oracle.observe(c.observation(), d)
        c.step(d)
    got = oracle.fields()
    assert {r.tick for r in oracle.ticks if not r.redundant(0.05)} == events
    for tol in TOLS:
        assert got[f"redundant_share_{tol}"] == pytest.approx(16 / 20)
        assert got[f"oracle_nonredundant_{tol}"] == 4 and got[f"oracle_hits_{tol}"] == 2
        assert got[f"trigger_precision_{tol}"] == pytest.approx(2 / 4)
        assert got[f"trigger_recall_{tol}"] == pytest.approx(2 / 4)
        # beyond the refill rule: tick 12 drops out; requests 1, 3, 10 -> hits 3, 10
        assert got[f"trigger_precision_beyond_refill_{tol}"] == pytest.approx(2 / 3)
        assert got[f"trigger_recall_beyond_refill_{tol}"] == pytest.approx(2 / 4)
    assert got["oracle_refill_due_ticks"] == 1 and got["oracle_beyond_refill_requests"] == 3
    # at a tolerance above the 0.5 jumps every tick is redundant
    wide = RedundancyOracle(tolerances=(0.6,))
    wide.ticks = oracle.ticks
    assert wide.fields()["redundant_share_0.6"] == 1.0


def test_hits_line_up_with_the_ticks_they_were_asked_at(reach_task):
    events = frozenset({4, 9, 13})
    c = make(reach_task, 0.0, OnPlan(chunk_size=40, events=events))
    oracle = RedundancyOracle(tolerances=(0.1,))
    oracle.begin(c)
    c.step(INFER)
    for _ in range(16):  # ask exactly on the event ticks, and on tick 6 (redundant)
        d = INFER if c.task.tick in events | {6} else KEEP
        oracle.observe(c.observation(), d)
        c.step(d)
    got = oracle.fields()
    assert got["oracle_nonredundant_0.1"] == 3 and got["oracle_hits_0.1"] == 3
    assert got["trigger_precision_0.1"] == pytest.approx(3 / 4)
    assert got["trigger_recall_0.1"] == 1.0


def _row(tick: int, distance: float | None, requested: bool = False, **kw: Any) -> OracleTick:
    return OracleTick(tick, distance, distance is None, requested, kw.pop("refill_due", False),
                      **kw)


def test_fair_fields_on_a_hand_made_episode():
    nr, ok = 0.5, 0.0  # non-redundant and redundant distances at every tolerance below 0.5
    rows = [
        _row(0, None),  # a stall: not cached, not eligible
        _row(1, nr), _row(2, nr, True, refill_due=True),  # event A; the refill rule catches it
        _row(3, ok),
        _row(4, nr, True, preempt=True, after_stall=2, since_arrival=1),  # event B, own, lead 0
        _row(5, nr, in_flight=1),  # not eligible: a request is on its way
        _row(6, nr), _row(7, ok), _row(8, ok),  # event C: nobody asks within 3 ticks
        _row(9, nr), _row(10, ok), _row(11, ok, True, after_stall=11),  # event D, own, lead 2
    ]
    assert divergence_events(rows, 0.1) == [1, 4, 6, 9]
    assert [first_request(rows, i, 3) for i in (1, 4, 6, 9)] == [1, 0, None, 2]
    assert [first_request(rows, i, 3, own=True) for i in (1, 4, 6, 9)] == [None, 0, None, 2]
    assert first_request(rows, 9, 2) is None  # a narrower window misses D
    oracle = RedundancyOracle(refill_due=lambda obs: False)
    oracle.ticks = rows
    got = oracle.fields()
    assert got["oracle_cached_ticks"] == 11 and got["oracle_eligible_ticks"] == 10
    assert got["oracle_eligible_requests"] == 3
    for tol in TOLS:
        assert got[f"oracle_redundant_cached_{tol}"] == 5
        assert got[f"redundant_share_of_cached_{tol}"] == pytest.approx(5 / 11)
        assert got[f"trigger_precision_eligible_{tol}"] == pytest.approx(2 / 3)
        assert got[f"trigger_chance_eligible_{tol}"] == pytest.approx(5 / 10)
        assert got[f"oracle_events_{tol}"] == 4 and got[f"oracle_events_caught_{tol}"] == 3
        assert got[f"oracle_event_lead_ticks_{tol}"] == 3
        assert got[f"trigger_event_recall_{tol}"] == pytest.approx(3 / 4)
        assert got[f"trigger_event_lead_ticks_{tol}"] == pytest.approx(1.0)
        assert got[f"oracle_events_caught_own_{tol}"] == 2
    assert got["oracle_own_requests"] == 2 == got["oracle_beyond_refill_requests"]
    assert got["oracle_own_after_stall"] == 1 and got["oracle_own_preempt_fresh"] == 1
    assert got["oracle_noise_floor"] is None and got["oracle_noise_spreads"] == []
    with pytest.raises(ValueError, match="event_window 0"):
        RedundancyOracle(event_window=0)


def test_own_requests_after_a_stall_preempting_a_fresh_chunk(reach_task):
    c = make(reach_task, 0.0, OnPlan())
    oracle = RedundancyOracle(refill_due=lambda obs: False)  # every request is the decider's own
    oracle.begin(c)
    script = [KEEP, INFER, Decision("infer", preempt=True), KEEP, KEEP, KEEP,
              Decision("infer", preempt=True)]
    for d in script:  # tick 0 stalls; tick 1's chunk arrives at once (no latency)
        obs = c.observation()
        oracle.observe(obs, d)
        out = c.step(d)
        oracle.on_tick(obs, d, out)
    rows = oracle.ticks
    assert rows[0].empty and rows[2].after_stall == 2 and rows[2].since_arrival == 1
    assert rows[6].after_stall == 6 and rows[6].since_arrival == 4  # tick 2's chunk arrived
    got = oracle.fields()
    assert got["oracle_own_requests"] == 3
    assert got["oracle_own_after_stall"] == 2  # ticks 1 and 2
    assert got["oracle_own_preempt_fresh"] == 1  # tick 2; tick 6's chunk is 4 ticks old
    wide = RedundancyOracle(refill_due=lambda obs: False, fresh_window=4, stall_window=1)
    wide.ticks = rows
    assert wide.fields()["oracle_own_preempt_fresh"] == 2
    assert wide.fields()["oracle_own_after_stall"] == 1


def test_floor_rng_is_a_function_of_the_policy_state():
    class P:
        def __init__(self, seed: int) -> None:
            self.rng = np.random.default_rng(seed)

    draw = [floor_rng(P(s)).random() for s in (1, 1, 2)]
    assert draw[0] == draw[1] != draw[2]
    assert floor_rng(object()).random() == floor_rng(object()).random()  # no generator: a salt


def test_distance_norms_and_field_names():
    a, b = np.array([0.1, -0.2, 0.0, 1.0]), np.array([0.0, 0.0, 0.0, -1.0])
    assert action_distance(a, b) == pytest.approx(2.0)
    assert action_distance(a, b, components=(0, 1, 2)) == pytest.approx(0.2)
    assert action_distance(a, b, "l2", (0, 1)) == pytest.approx(np.hypot(0.1, 0.2))
    assert [tol_name(t) for t in (0.05, 0.1, 0.2, 1)] == ["0.05", "0.1", "0.2", "1"]
    for bad in ({"tolerances": ()}, {"tolerances": (0.0,)}, {"tolerances": (0.1, 0.1)},
                {"norm": "l1"}, {"components": (7,)}, {"empty": "skip"}):
        with pytest.raises(ValueError):
            RedundancyOracle(**bad)


def test_policy_rng_is_put_back():
    import torch

    class Holder:
        def __init__(self) -> None:
            self.np_rng = np.random.default_rng(1)
            self.gen = torch.Generator().manual_seed(2)

    h = Holder()
    want_np, want_t = h.np_rng.random(), torch.rand(1, generator=h.gen)
    h = Holder()
    with policy_rng_kept(h):
        h.np_rng.random(3)
        torch.rand(5, generator=h.gen)
        torch.rand(5)  # torch's global generator too
    g0 = torch.get_rng_state()
    assert h.np_rng.random() == want_np
    assert torch.equal(torch.rand(1, generator=h.gen), want_t)
    torch.set_rng_state(g0)


# ---------------------------------------------------------------------- records unchanged
def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in WALL_CLOCK_FIELDS}


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _assert_fair_fields_consistent(r: dict[str, Any]) -> None:
    """The fair fields of a real record add up: every subset within its whole."""
    assert r["oracle_eligible_ticks"] <= r["oracle_cached_ticks"] <= r["oracle_ticks"]
    assert r["oracle_cached_ticks"] + r["oracle_empty_ticks"] == r["oracle_ticks"]
    assert r["oracle_eligible_requests"] <= min(r["oracle_requests"], r["oracle_eligible_ticks"])
    assert len(r["oracle_noise_spreads"]) <= r["oracle_cached_ticks"]
    assert r["oracle_noise_floor"] is None or r["oracle_noise_floor"] >= 0
    assert all(x >= 0 for x in r["oracle_noise_spreads"] + r["oracle_drifts"])
    for tol in TOLS:
        assert r[f"oracle_redundant_cached_{tol}"] <= r["oracle_cached_ticks"]
        assert r[f"oracle_eligible_hits_{tol}"] <= r[f"oracle_eligible_nonredundant_{tol}"]
        assert r[f"oracle_eligible_nonredundant_{tol}"] <= r["oracle_eligible_ticks"]
        assert r[f"oracle_events_caught_{tol}"] <= r[f"oracle_events_{tol}"]
        assert r[f"oracle_events_{tol}"] <= r[f"oracle_eligible_nonredundant_{tol}"]
        lead = r[f"trigger_event_lead_ticks_{tol}"]
        assert lead is None or 0 <= lead < r["oracle_event_window"]
        if "oracle_own_requests" in r:
            assert r[f"oracle_events_caught_own_{tol}"] <= r[f"oracle_events_caught_{tol}"]
    if "oracle_own_requests" in r:
        assert r["oracle_own_requests"] == r["oracle_beyond_refill_requests"]
        assert r["oracle_own_after_stall"] <= r["oracle_own_requests"]
        assert r["oracle_own_preempt_fresh"] <= min(r["oracle_own_requests"], r["preemptions"])


def _assert_unchanged(cfg: EnvConfig, agent: str, seeds: tuple[int, ...]) -> list[dict]:
    from rapid_env.agents.refill import refill_due

    c = build_controller(cfg)
    out = []
    try:
        for seed in seeds:
            plain = _plain(run_episode(c, build_decider(agent), seed))
            oracle = RedundancyOracle(refill_due=refill_due)
            shadowed = _plain(run_episode(c, build_decider(agent), seed, oracle=oracle))
            new = set(shadowed) - set(plain)
            assert set(plain) <= set(shadowed)
            assert new == set(oracle.fields()), "only the oracle's fields are new"
            diff = {k: (plain[k], shadowed[k]) for k in plain if not _same(plain[k], shadowed[k])}
            assert not diff, f"seed {seed}: the shadow pass changed {diff}"
            assert shadowed["oracle_ticks"] == shadowed["steps"]
            assert shadowed["oracle_requests"] >= shadowed["inferences"] > 0
            _assert_fair_fields_consistent(shadowed)
            out.append(shadowed)
    finally:
        c.task.close()
    return out


def test_records_identical_with_and_without_oracle_expert_rapid_wifi():
    cfg = EnvConfig(task="push", policy="expert", link="wifi", image_size=32, max_episode_s=3.0)
    records = _assert_unchanged(cfg, "rapid", (1000, 1001))
    assert all(0.0 < r["redundant_share_0.1"] < 1.0 for r in records)
    # the scripted expert is deterministic: two plans at the same tick agree exactly
    assert all(r["oracle_noise_floor"] == 0.0 for r in records)
    assert all(r["oracle_cached_ticks"] > 0 for r in records)


@pytest.mark.parametrize("policy", ["chunk-regress", "flow"])
def test_records_identical_with_and_without_oracle_vla_under_noise(policy):
    # the VLA reads the noisy frame (a consumed noise draw would show) and flow draws its noise
    # from the policy's generator (a consumed policy draw would show)
    cfg = EnvConfig(task="reach", policy=policy, link="wifi", noise="gaussian_noise:3",
                    image_size=32, max_episode_s=2.0)
    (record,) = _assert_unchanged(cfg, "rapid", (1000,))
    # chunk-regress is a function of its input (floor 0); flow samples its initial noise, so two
    # plans at the same tick under different seeds differ
    if policy == "flow":
        assert record["oracle_noise_floor"] > 0
    else:
        assert record["oracle_noise_floor"] == 0.0
    assert record["oracle_drift_median"] is not None and record["oracle_drift_median"] > 0


def test_the_identity_check_has_teeth():
    """A shadow pass that read the frame the consuming way would change the record."""
    cfg = EnvConfig(task="reach", policy="chunk-regress", link="wifi", noise="gaussian_noise:3",
                    image_size=32, max_episode_s=2.0)
    c = build_controller(cfg)
    try:
        plain = _plain(run_episode(c, build_decider("rapid"), 1000))
        oracle = RedundancyOracle()
        consuming = c.camera.policy_input
        c.camera.policy_input = lambda policy, peek=False: consuming(policy)  # type: ignore[method-assign]
        consumed = _plain(run_episode(c, build_decider("rapid"), 1000, oracle=oracle))
    finally:
        del c.camera.policy_input
        c.task.close()
    assert any(not _same(plain[k], consumed[k]) for k in plain)


def test_off_by_default_adds_nothing(reach_task):
    c = make(reach_task, 0.0, OnPlan())

    class Keep(DeciderBase):
        name, needs_image = "keep", False

        def reset(self, rng):
            pass

        def decide(self, obs):
            return INFER if obs.tick == 0 else KEEP

    record = run_episode(c, Keep(), seed=3)
    assert not any(k.startswith(("redundant_share", "trigger_", "oracle_")) for k in record)


# ---------------------------------------------------------------------- the rapid-eval hook
def test_rapid_eval_oracle_flag_and_job(tmp_path):
    from dataclasses import replace

    from rapid_env.cli.eval import parse_spec
    from rapid_env.eval.execute import EpisodeRunner, with_oracle
    from rapid_env.eval.jobs import SweepSpec, plan

    base = ["--tasks", "reach", "--agents", "rapid", "--out", str(tmp_path / "o")]
    assert parse_spec(base).oracle == ()
    assert parse_spec([*base, "--oracle"]).oracle == (0.05, 0.1, 0.2)
    assert parse_spec([*base, "--oracle", "0.1,0.3"]).oracle == (0.1, 0.3)
    with pytest.raises(ValueError, match="distinct tolerances > 0"):
        parse_spec([*base, "--oracle", "0,0.1"])

    spec = SweepSpec(tasks=("reach",), agents=("rapid",), links=("wifi",), episodes=1,
                     seed=1000, base=EnvConfig(policy="expert", image_size=32,
                                               max_episode_s=1.0))
    job = plan(spec)[0]
    recorded = replace(job, media_dir="/tmp/v")
    marked = with_oracle([job, recorded], (0.1,))
    assert all(j.oracle == (0.1,) for j in marked)
    assert [j.key() for j in marked] == [job.key(), recorded.key()]
    assert [j.media_dir for j in marked] == ["", "/tmp/v"]
    assert with_oracle([job], ()) == [job]
    runner = EpisodeRunner()
    try:
        plain, shadowed = runner.run(job), runner.run(marked[0])
    finally:
        runner.close()
    assert "fault" not in shadowed or not str(shadowed["fault"]).startswith("episode_error")
    for k in ("redundant_share_0.1", "trigger_precision_0.1", "trigger_recall_0.1",
              "trigger_precision_beyond_refill_0.1", "oracle_refill_due_ticks"):
        assert k in shadowed
    assert _plain(plain) == {k: v for k, v in _plain(shadowed).items() if k in plain}
