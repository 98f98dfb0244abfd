"""The modelling readings as parameters: placement, loop cost and the action contract.

Each reading changes one thing and keeps the rest: the placement moves the edge's blocks from the
model's front to its tail, the loop cost changes how often a loop cut crosses the link (never the
compute), the action contract how many actions of a policy call the robot executes. Defaults keep
every record as it was (the golden records check that on the whole sweep).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rapid_env.build import GIB, assemble_controller
from rapid_env.compose import build_controller, build_decider
from rapid_env.config import LATE_FIELDS, EnvConfig
from rapid_env.controller import PartitionedController, PlacementOption
from rapid_env.cost import LOOP_COSTS, PLACEMENTS, build_cost_model
from rapid_env.decision import Decision
from rapid_env.episode import run_episode
from rapid_env.eval.jobs import EpisodeJob
from rapid_env.link import IdealLink
from rapid_env.noise import Clean
from rapid_env.transport import SimulatedTransport, early_exit
from tests.conftest import CountingPolicy

MODELS = {
    (p, lc): build_cost_model(placement=p, loop_cost=lc)  # type: ignore[arg-type]
    for p in PLACEMENTS
    for lc in LOOP_COSTS
}
PREFIX = MODELS["edge-prefix", "per-pass"]
SUFFIX = MODELS["edge-suffix", "per-pass"]
N = PREFIX.n_blocks
PROFILE = PREFIX.profile
ROUND_PREFIX = ("edge", "up", "cloud", "down")
ROUND_SUFFIX = ("up", "cloud", "down", "edge")


# ------------------------------------------------------------------ the cost model
def test_the_default_model_is_the_edge_prefix_per_pass_one():
    default = build_cost_model()
    assert (default.placement, default.loop_cost) == ("edge-prefix", "per-pass")
    assert repr(default) == "CostModel(profile='openvla-7b', edge='jetson-agx-orin', cloud='a100')"
    for k in default.splits:
        assert default.plan(k) == PREFIX.plan(k)
        assert default.edge_memory_bytes(k) == PREFIX.edge_memory_bytes(k)


def test_cloud_only_and_edge_only_are_the_same_under_every_reading():
    for model in MODELS.values():
        for k in (0, N):
            assert model.plan(k).stages == PREFIX.plan(k).stages
            assert model.edge_memory_bytes(k) == PREFIX.edge_memory_bytes(k)
    assert PREFIX.plan(0).kinds == ("up", "cloud", "down")
    assert PREFIX.plan(N).kinds == ("edge",)


@pytest.mark.parametrize("k", [5, 6, 11, 12, 20])
def test_plans_inside_the_loop_per_placement_and_loop_cost(k):
    decode = PROFILE.decode_steps
    # edge-prefix: the edge's last block's output goes up, the action comes down
    cut = PREFIX.profile.blocks[k - 1]
    per_pass, once = PREFIX.plan(k), MODELS["edge-prefix", "once"].plan(k)
    assert PREFIX.splits_decoder(k)
    assert per_pass.kinds == ROUND_PREFIX * (decode + 1)
    assert once.kinds == ROUND_PREFIX
    assert once.up_bytes == int(cut.activation_bytes) and once.down_bytes == PROFILE.output_bytes
    assert per_pass.up_bytes == int(cut.activation_bytes) + decode * int(
        cut.decode_activation_bytes
    )
    assert per_pass.down_bytes == decode * PROFILE.token_bytes + PROFILE.output_bytes
    # edge-suffix: the raw input goes up, the cloud's last block's output comes down, and the
    # edge answers (nothing comes down at the end)
    cut = SUFFIX.profile.blocks[N - k - 1]
    per_pass, once = SUFFIX.plan(k), MODELS["edge-suffix", "once"].plan(k)
    assert SUFFIX.splits_decoder(k)
    assert per_pass.kinds == ROUND_SUFFIX * (decode + 1)
    assert per_pass.kinds[-1] == "edge" and once.kinds == ROUND_SUFFIX
    assert once.up_bytes == PROFILE.input_bytes and once.down_bytes == int(cut.activation_bytes)
    assert per_pass.up_bytes == PROFILE.input_bytes + decode * PROFILE.token_bytes
    assert per_pass.down_bytes == int(cut.activation_bytes) + decode * int(
        cut.decode_activation_bytes
    )
    assert (per_pass.n_transfers, once.n_transfers) == (2 * (decode + 1), 2)
    for placement in PLACEMENTS:  # the loop cost moves bytes and round trips, never compute
        a, b = MODELS[placement, "per-pass"], MODELS[placement, "once"]
        assert a.plan(k).edge_seconds == pytest.approx(b.plan(k).edge_seconds, rel=1e-12)
        assert a.plan(k).cloud_seconds == pytest.approx(b.plan(k).cloud_seconds, rel=1e-12)
        assert a.plan(k).edge_seconds == pytest.approx(a.compute_seconds(k)[0], rel=1e-12)
        assert a.plan(k).cloud_seconds == pytest.approx(a.compute_seconds(k)[1], rel=1e-12)
        assert all(s.placement == placement for s in (a.plan(k), b.plan(k)))


def test_a_suffix_split_outside_the_loop_runs_the_cloud_first_once():
    # k = 36: the cloud runs only DINOv2 and ships its output down; the edge runs the rest
    plan = SUFFIX.plan(36)
    assert not SUFFIX.splits_decoder(36) and not SUFFIX.splits_decoder(34)
    assert SUFFIX.splits_decoder(33)  # the cut after the token embedding is inside the loop
    assert plan.kinds == ROUND_SUFFIX
    assert plan.down_bytes == int(PROFILE.blocks[0].activation_bytes)
    assert plan == MODELS["edge-suffix", "once"].plan(36)
    assert list(SUFFIX.edge_blocks(36)) == list(range(1, N))
    assert list(SUFFIX.cloud_blocks(36)) == [0]


def test_edge_memory_per_placement():
    # the suffix holds the tail: k = 1 is the LM head alone, plus the received hidden state
    head = PROFILE.blocks[-1]
    received = PROFILE.blocks[-2].activation_bytes
    assert SUFFIX.edge_memory_bytes(1) == head.weight_bytes + 2 * received
    assert PREFIX.edge_memory_bytes(1) == pytest.approx(
        PROFILE.blocks[0].weight_bytes + 2 * PROFILE.blocks[0].activation_bytes
    )
    for k in range(1, N):
        blocks = [PROFILE.blocks[i] for i in range(N - k, N)]
        weights_kv = sum(b.weight_bytes + b.kv_cache_bytes for b in blocks)
        assert weights_kv < SUFFIX.edge_memory_bytes(k) < weights_kv + 5e6
        assert SUFFIX.edge_memory_bytes(k) < SUFFIX.edge_memory_bytes(k + 1)


def test_the_suffix_within_the_papers_budgets():
    """RoboECC's reading: the LM head and the last LLM layers on the edge."""
    k24, k47 = SUFFIX.deepest_split_within(2.4 * GIB), SUFFIX.deepest_split_within(4.7 * GIB)
    assert (k24, k47) == (6, 12)
    assert [PROFILE.blocks[i].name for i in SUFFIX.edge_blocks(k24)] == [
        "llm.layer.27", "llm.layer.28", "llm.layer.29", "llm.layer.30", "llm.layer.31",
        "llm.lm_head",
    ]
    assert SUFFIX.compute_seconds(k24)[0] * 1e3 == pytest.approx(129.0, abs=0.05)
    assert SUFFIX.compute_seconds(k47)[0] * 1e3 == pytest.approx(268.8, abs=0.05)
    assert SUFFIX.edge_memory_bytes(k24) / GIB == pytest.approx(2.155, abs=0.001)
    assert SUFFIX.edge_memory_bytes(k24 + 1) > 2.4 * GIB
    assert SUFFIX.edge_memory_bytes(k47 + 1) > 4.7 * GIB
    # the prefix's figures stay as they were
    assert (PREFIX.deepest_split_within(2.4 * GIB), PREFIX.deepest_split_within(4.7 * GIB)) == (
        5, 11,
    )


def test_the_closed_form_numbers_of_the_docs_table():
    """docs/cost_model.md's placement x loop-cost table, at the two budgets and two links."""
    expected = {  # (placement, loop cost, budget): (300 Mbit/s 10 ms, 1 Gbit/s 2 ms), in ms
        ("edge-prefix", "per-pass", 2.4): (247.1, 148.0),
        ("edge-prefix", "once", 2.4): (185.8, 135.6),
        ("edge-suffix", "per-pass", 2.4): (325.1, 223.2),
        ("edge-suffix", "once", 2.4): (263.8, 210.8),
        ("edge-prefix", "per-pass", 4.7): (374.0, 274.9),
        ("edge-prefix", "once", 4.7): (312.7, 262.5),
        ("edge-suffix", "per-pass", 4.7): (452.1, 350.1),
        ("edge-suffix", "once", 4.7): (390.8, 337.8),
    }
    for (placement, loop_cost, budget), (wifi6, gigabit) in expected.items():
        model = MODELS[placement, loop_cost]
        k = model.deepest_split_within(budget * GIB)
        assert model.latency_s(k, 300e6, 0.010) * 1e3 == pytest.approx(wifi6, abs=0.05)
        assert model.latency_s(k, 1e9, 0.002) * 1e3 == pytest.approx(gigabit, abs=0.05)


def test_bad_readings_are_refused_by_name():
    with pytest.raises(ValueError, match="placement='best'; allowed: edge-prefix, edge-suffix"):
        build_cost_model(placement="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loop_cost='twice'; allowed: per-pass, once"):
        build_cost_model(loop_cost="twice")  # type: ignore[arg-type]


def test_an_early_exit_needs_the_models_front_on_the_edge():
    with pytest.raises(ValueError, match="placement='edge-suffix'.*cannot answer"):
        early_exit(SUFFIX, 6, 0.0)
    assert early_exit(SUFFIX, N, 1.0).edge_s == PREFIX.plan(N).edge_seconds
    assert early_exit(SUFFIX, 0, 1.0).arrival == 1.0


def test_the_simulated_transport_walks_a_suffix_plan_cloud_first():
    timed = SimulatedTransport(SUFFIX, IdealLink()).send(6, 0.0)
    assert timed.edge_s == pytest.approx(SUFFIX.compute_seconds(6)[0])
    assert timed.bytes_up == SUFFIX.plan(6).up_bytes
    assert timed.bytes_down == SUFFIX.plan(6).down_bytes
    assert [tr.direction for tr in timed.transfers] == ["up", "down"] * 7
    assert timed.arrival == pytest.approx(SUFFIX.plan(6).edge_seconds + timed.cloud_s)


# ------------------------------------------------------------------ the configuration
@pytest.mark.parametrize(
    ("field", "bad", "allowed"),
    [
        ("placement", "tail", "edge-prefix, edge-suffix, best"),
        ("placement", None, "edge-prefix, edge-suffix, best"),
        ("loop_cost", "per-token", "per-pass, once"),
        ("action_contract", "pair", "chunk, single"),
        ("action_contract", 1, "chunk, single"),
    ],
)
def test_a_bad_reading_in_the_config_is_refused_by_name(field, bad, allowed):
    with pytest.raises(ValueError, match=f"{field}={bad!r}; allowed: {allowed}"):
        EnvConfig(**{field: bad})


def test_the_readings_at_their_defaults_keep_existing_episode_keys():
    job = EpisodeJob(("reach", "clean", "wifi", "rapid"), 1000, EnvConfig())
    env = job.identity()["env"]
    for name in ("placement", "loop_cost", "action_contract"):
        assert name not in env
        assert LATE_FIELDS[name] == getattr(EnvConfig(), name)
    for name, value in (("placement", "best"), ("loop_cost", "once"),
                        ("action_contract", "single")):
        other = EpisodeJob(job.cell, 1000, EnvConfig(**{name: value}))
        assert other.identity()["env"][name] == value and other.key() != job.key()


def test_the_readings_reach_the_gym_env():
    import gymnasium as gym

    import rapid_env  # noqa: F401  (registers the ids)

    env = gym.make("rapid_env/Rapid-v0", task="reach", image_size=16, placement="edge-suffix",
                   loop_cost="once", action_contract="single", edge_budget_gib=2.4)
    try:
        ctrl = env.unwrapped.controller
        assert (ctrl.cost.placement, ctrl.cost.loop_cost) == ("edge-suffix", "once")
        assert ctrl.partition == 6 and ctrl.chunk_size == 1
    finally:
        env.close()
    with pytest.raises(ValueError, match="placement='middle'"):
        gym.make("rapid_env/Rapid-v0", task="reach", placement="middle")


# ------------------------------------------------------------------ the controller
def _cfg(**kw) -> EnvConfig:
    base = EnvConfig(task="reach", policy="expert", image_size=16, max_episode_s=1.0)
    return replace(base, **kw)


def test_rapid_on_the_2_4_gib_edge_suffix_computes_129_ms_on_the_edge():
    """The must-show: RAPID's edge part at 2.4 GiB under edge-suffix is the LM head + 5 layers."""
    cfg = _cfg(link="lab-wifi6", edge_budget_gib=2.4, placement="edge-suffix")
    ctrl = build_controller(cfg)
    try:
        rec = run_episode(ctrl, build_decider("rapid"), seed=1000)
    finally:
        ctrl.task.close()
    assert rec["offloads"] > 0 and rec["suffix_requests"] == rec["offloads"]
    assert rec["split"] == 6
    assert abs(rec["edge_ms_mean"] - 129.0) <= 0.15 * 129.0
    assert rec["edge_memory_gb"] == pytest.approx(SUFFIX.edge_memory_bytes(6) / 1e9)
    assert rec["bytes_up"] >= rec["offloads"] * PROFILE.input_bytes  # the raw input goes up


def test_the_default_placement_makes_no_suffix_requests():
    ctrl = build_controller(_cfg(link="lab-wifi6", edge_budget_gib=2.4))
    try:
        rec = run_episode(ctrl, build_decider("rapid"), seed=1000)
    finally:
        ctrl.task.close()
    assert rec["suffix_requests"] == 0 and rec["split"] == 5 and rec["offloads"] > 0
    assert rec["edge_ms_mean"] == pytest.approx(48.0, abs=0.05)


PI0 = build_cost_model("pi0")
PI0_TAIL = PI0.with_readings(placement="edge-suffix")


@pytest.mark.parametrize(
    ("bandwidth_bps", "rtt_s", "expected"),
    [(20e6, 0.04, "edge-suffix"), (300e6, 0.01, "edge-suffix"), (10e9, 0.0005, "edge-prefix")],
)
def test_best_runs_the_cheaper_placement_for_the_link_estimate(
    reach_task, bandwidth_bps, rtt_s, expected
):
    """pi0 within 4.7 GiB: its expert on the edge wins on slow links, its front on a fast one."""
    prefix = PI0.deepest_split_within(4.7 * GIB)
    tail = PI0_TAIL.deepest_split_within(4.7 * GIB)
    c = PartitionedController(
        reach_task, CountingPolicy(), PI0, IdealLink(), Clean(), partition=prefix,
        alternative=PlacementOption(PI0_TAIL, tail),
    )
    c.estimator.bandwidth_bps, c.estimator.rtt_s = bandwidth_bps, rtt_s
    cost, split = c.route(Decision("infer"))
    assert cost.plan(split).placement == expected
    lp = PI0.latency_s(prefix, bandwidth_bps, rtt_s)
    ls = PI0_TAIL.latency_s(tail, bandwidth_bps, rtt_s)
    assert (ls < lp) == (expected == "edge-suffix")
    # a named split and an early exit stay on the controller's own placement
    assert c.route(Decision("infer", split=3)) == (PI0, 3)
    assert c.route(Decision("infer", escalate=False)) == (PI0, prefix)


def test_best_without_a_budget_compares_each_placements_best_split(reach_task):
    c = PartitionedController(
        reach_task, CountingPolicy(), PREFIX, IdealLink(), Clean(),
        alternative=PlacementOption(SUFFIX),
    )
    c.estimator.bandwidth_bps, c.estimator.rtt_s = 300e6, 0.01
    assert c.route(Decision("infer")) == (PREFIX, 0)  # both pick cloud-only: ties stay prefix


def test_best_in_an_episode_records_which_placement_each_request_used():
    cfg = _cfg(profile="pi0", link="constant:20:40", edge_budget_gib=4.7, placement="best")
    ctrl = build_controller(cfg)
    try:
        assert ctrl.alternative is not None and ctrl.alternative.partition == 38
        assert ctrl.partition == PI0.deepest_split_within(4.7 * GIB)
        rec = run_episode(ctrl, build_decider("rapid"), seed=1000)
    finally:
        ctrl.task.close()
    # 20 Mbit/s: the suffix is cheaper (an expert on the edge ships no prefix KV cache up)
    assert rec["inferences"] > 0 and rec["suffix_requests"] == rec["inferences"]
    assert rec["edge_memory_gb"] == pytest.approx(PI0_TAIL.edge_memory_bytes(38) / 1e9)


def test_an_alternative_placement_is_checked(reach_task):
    with pytest.raises(ValueError, match="partition 99 out of range"):
        PartitionedController(reach_task, CountingPolicy(), PREFIX, IdealLink(), Clean(),
                              alternative=PlacementOption(SUFFIX, 99))
    with pytest.raises(ValueError, match="action_contract='pair'; allowed: chunk, single"):
        PartitionedController(reach_task, CountingPolicy(), PREFIX, IdealLink(), Clean(),
                              action_contract="pair")  # type: ignore[arg-type]


def _ticks(contract: str, ticks: int = 6) -> tuple[dict, list[int], list[int]]:
    """Cloud-only on an ideal link at 10 Hz: 72 ms per request, within one 100 ms tick."""
    cfg = _cfg(link="ideal", control_hz=10.0, action_contract=contract)
    ctrl = assemble_controller(cfg, CountingPolicy(chunk_size=8))
    decider = build_decider("cloud-only")
    rng = np.random.default_rng
    try:
        obs = ctrl.reset(1000, rng(1), rng(2), rng(3))
        decider.reset(rng(4))
        decider.bind(ctrl.context())
        sizes, remaining = [obs.chunk_size], []
        for _ in range(ticks):
            out = ctrl.step(decider.decide(obs))
            obs = out.obs
            sizes.append(obs.chunk_size)
            remaining.append(out.info["chunk_remaining"])
        return ctrl.episode_metrics(), sizes, remaining
    finally:
        ctrl.task.close()


def test_the_single_action_contract_requests_every_tick_with_chunks_of_one():
    """A request every tick; an action that lands after the robot executed another is stale.

    Under ``align="executed"`` the one action of a call is meant for the tick it was asked on, so
    only a call made with nothing buffered (the robot holding) drives the robot: with 72 ms per
    call and 100 ms ticks, every other tick holds -- a synchronous one-action-per-call loop at
    tick resolution.
    """
    single, sizes, remaining = _ticks("single")
    assert set(sizes) == {1} and max(remaining) <= 1
    assert single["inferences"] == 6 and single["latency_n"] == 6
    assert single["stall_steps"] == 3 and single["stale_chunks"] == 3
    chunk, sizes, remaining = _ticks("chunk")
    assert set(sizes) == {8} and max(remaining) > 1
    assert chunk["inferences"] < single["inferences"]
