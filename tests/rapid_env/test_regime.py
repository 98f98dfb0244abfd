"""The paper's regime as configuration: early exits, escalation and a fixed memory partition.

The must-show: with the escalating (vision-triggered) scheme on a fixed partition, mean latency
rises with the trigger rate (a fixed trigger sequence replayed at every refill), and edge-only
stays the calibrated 783 ms whatever the partition.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rapid_env.agents.refill import refill_due
from rapid_env.build import GIB, assemble_controller
from rapid_env.config import EnvConfig
from rapid_env.controller import PartitionedController
from rapid_env.cost import build_cost_model
from rapid_env.decision import KEEP, DeciderBase, DeciderObservation, Decision
from rapid_env.eval.jobs import EpisodeJob
from rapid_env.link import IdealLink, parse_link
from rapid_env.noise import Clean
from rapid_env.transport import SimulatedTransport, early_exit
from tests.conftest import CountingPolicy

OPENVLA = build_cost_model("openvla-7b", "jetson-agx-orin", "a100")
VISION_SPLIT = OPENVLA.deepest_split_within(4.7 * GIB)
RAPID_SPLIT = OPENVLA.deepest_split_within(2.4 * GIB)


def test_the_papers_memory_figures_give_these_partitions():
    # 2.4 GiB: vision encoders, projector, embeddings and the first LLM layer; 4.7 GiB: six more
    assert (RAPID_SPLIT, VISION_SPLIT) == (5, 11)
    assert OPENVLA.profile.blocks[RAPID_SPLIT - 1].name == "llm.layer.00"
    assert OPENVLA.profile.blocks[VISION_SPLIT - 1].name == "llm.layer.06"
    assert OPENVLA.edge_memory_bytes(5) / GIB == pytest.approx(2.12, abs=0.01)
    assert OPENVLA.edge_memory_bytes(11) / GIB == pytest.approx(4.41, abs=0.01)
    # the next block would not fit: these are the deepest prefixes within each budget
    assert OPENVLA.edge_memory_bytes(6) > 2.4 * GIB
    assert OPENVLA.edge_memory_bytes(12) > 4.7 * GIB
    assert OPENVLA.deepest_split_within(0.0) == 0
    assert OPENVLA.deepest_split_within(100 * GIB) == OPENVLA.n_blocks


def test_early_exit_costs_the_edge_part_of_the_escalated_plan_and_sends_nothing():
    for k in (1, RAPID_SPLIT, VISION_SPLIT, OPENVLA.n_blocks):
        timed = early_exit(OPENVLA, k, 2.0)
        assert timed.edge_s == pytest.approx(OPENVLA.plan(k).edge_seconds)
        assert timed.edge_s == pytest.approx(OPENVLA.compute_seconds(k)[0])
        assert timed.arrival == pytest.approx(2.0 + timed.edge_s)
        assert (timed.bytes_up, timed.bytes_down, timed.transfers) == (0, 0, ())
    full = SimulatedTransport(OPENVLA, IdealLink()).send(VISION_SPLIT, 0.0)
    assert full.edge_s == pytest.approx(early_exit(OPENVLA, VISION_SPLIT, 0.0).edge_s)
    assert full.arrival > early_exit(OPENVLA, VISION_SPLIT, 0.0).arrival + full.cloud_s - 1e-9


def test_an_early_exit_needs_an_infer_decision():
    with pytest.raises(ValueError, match="escalate=False"):
        Decision("keep", escalate=False)
    assert Decision("infer", escalate=False).escalate is False


class ReplayTriggers(DeciderBase):
    """Asks at every refill; escalates when the next entry of a fixed trigger sequence is 1."""

    name = "replay"
    needs_image = False

    def __init__(self, triggers: list[int]) -> None:
        self.triggers = triggers
        self.i = 0

    def reset(self, rng: np.random.Generator) -> None:
        self.i = 0

    def decide(self, obs: DeciderObservation) -> Decision:
        if not refill_due(obs):
            return KEEP
        fire = bool(self.triggers[self.i % len(self.triggers)])
        self.i += 1
        return Decision("infer", escalate=fire)


def _regime_latency(task, decider, partition: int | None, ticks: int = 80) -> dict:
    c = PartitionedController(
        task, CountingPolicy(chunk_size=8), OPENVLA, parse_link("lab-wifi6"), Clean(),
        partition=partition,
    )
    rng = np.random.default_rng
    obs = c.reset(3, rng(1), rng(2), rng(3))
    decider.reset(rng(4))
    for _ in range(ticks):
        obs = c.step(decider.decide(obs)).obs
    return c.episode_metrics()


@pytest.mark.parametrize("partition", [RAPID_SPLIT, VISION_SPLIT])
def test_escalating_latency_rises_with_the_trigger_rate(reach_task, partition):
    sequences = {0.0: [0], 0.25: [1, 0, 0, 0], 0.5: [1, 0], 0.75: [1, 1, 1, 0], 1.0: [1]}
    means = {}
    for rate, seq in sequences.items():
        m = _regime_latency(reach_task, ReplayTriggers(seq), partition)
        means[rate] = m["latency_ms_mean"]
        assert m["early_exits"] + m["offloads"] == m["inferences"]
        assert m["offloads"] / m["inferences"] == pytest.approx(rate, abs=0.15)
    rates = sorted(means)
    assert all(means[a] < means[b] for a, b in zip(rates, rates[1:], strict=False)), means
    # never triggered: every chunk is the edge part's early exit, at the edge's modelled time
    assert means[0.0] == pytest.approx(OPENVLA.compute_seconds(partition)[0] * 1e3)
    # always triggered: every request pays uplink + cloud + downlink on top of that edge part
    assert means[1.0] > means[0.0] + OPENVLA.compute_seconds(partition)[1] * 1e3


def test_edge_only_stays_the_calibrated_783_ms_on_any_partition(reach_task):
    class EdgeOnly(ReplayTriggers):
        def decide(self, obs):
            return Decision("infer", split=obs.n_splits - 1) if refill_due(obs) else KEEP

    for partition in (None, RAPID_SPLIT, VISION_SPLIT):
        m = _regime_latency(reach_task, EdgeOnly([0]), partition, ticks=40)
        assert m["latency_ms_mean"] == pytest.approx(782.9, abs=0.5)
        assert m["offloads"] == 0 and m["early_exits"] == 0


def test_a_request_without_a_split_uses_the_fixed_partition(reach_task):
    cfg = EnvConfig(task="reach", policy="expert", image_size=16, link="lab-wifi6",
                    edge_budget_gib=2.4)
    c = assemble_controller(cfg, CountingPolicy())
    assert c.partition == RAPID_SPLIT and c.default_split() == RAPID_SPLIT
    c.task.close()
    free = assemble_controller(replace(cfg, edge_budget_gib=None), CountingPolicy())
    assert free.partition is None
    free.task.close()
    with pytest.raises(ValueError, match="partition 99 out of range"):
        PartitionedController(reach_task, CountingPolicy(), OPENVLA, IdealLink(), Clean(),
                              partition=99)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "2.4"])
def test_a_bad_edge_budget_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="edge_budget_gib="):
        EnvConfig(edge_budget_gib=bad)


def test_the_budget_left_at_its_default_keeps_existing_episode_keys():
    job = EpisodeJob(("reach", "clean", "wifi", "rapid"), 1000, EnvConfig())
    assert "edge_budget_gib" not in job.identity()["env"]
    budget = EpisodeJob(job.cell, 1000, EnvConfig(edge_budget_gib=2.4))
    assert budget.identity()["env"]["edge_budget_gib"] == 2.4
    assert budget.key() != job.key()


def test_the_vision_entropy_decider_in_escalate_mode_gets_slower_as_its_signal_fires_more(
    reach_task,
):
    """The registered decider itself, its image signal replaced by a fixed per-tick sequence."""
    from rapid_env.agents.vision_entropy import VisionEntropyConfig, VisionEntropyDecider

    draws = np.random.default_rng(0).random(400)  # one fixed sequence; a higher rate fires on
    means = {}  # a superset of the ticks a lower one fires on
    for rate in (0.0, 0.5, 1.0):
        d = VisionEntropyDecider(VisionEntropyConfig(mode="escalate"))
        scores = iter([1.0 if u < rate else 0.0 for u in draws])
        d.image_score = lambda image, scores=scores: next(scores)  # type: ignore[method-assign]
        c = PartitionedController(
            reach_task, CountingPolicy(chunk_size=8), OPENVLA, parse_link("lab-wifi6"), Clean(),
            decider_needs_image=True, partition=VISION_SPLIT,
        )
        rng = np.random.default_rng
        obs = c.reset(3, rng(1), rng(2), rng(3))
        d.reset(rng(4))
        for _ in range(120):
            obs = c.step(d.decide(obs)).obs
        m = c.episode_metrics()
        means[rate] = m["latency_ms_mean"]
        assert m["offloads"] + m["early_exits"] == m["inferences"] > 5
        if rate == 0.0:
            assert m["offloads"] == 0
        if rate == 1.0:
            assert m["early_exits"] == 0
    assert means[0.0] < means[0.5] < means[1.0], means
    assert means[0.0] == pytest.approx(187.8, abs=0.1)
