"""The per-tick episode trace: one row per tick, consistent with the record, and free when off."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from rapid_env.compose import build_controller, build_decider
from rapid_env.config import EnvConfig
from rapid_env.controller import PartitionedController
from rapid_env.episode import WALL_CLOCK_FIELDS, run_episode
from rapid_env.link import ConstantLink, IdealLink
from rapid_env.link.spec import parse_link
from rapid_env.trace import IMPORTANCE_FIELDS, EpisodeTrace, link_bandwidth_bps

CFG = EnvConfig(task="push", policy="expert", link="wifi", image_size=32, max_episode_s=3.0)


@pytest.fixture(scope="module")
def controller() -> Any:
    c = build_controller(CFG)
    yield c
    c.task.close()


def _traced(c: PartitionedController, agent: str, seed: int = 1000,
            frames: bool = False) -> tuple[dict[str, Any], EpisodeTrace]:
    trace = EpisodeTrace(frames=frames)
    return run_episode(c, build_decider(agent), seed, trace), trace


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in WALL_CLOCK_FIELDS}


def test_one_row_per_tick_keyed_by_time(controller: PartitionedController) -> None:
    record, trace = _traced(controller, "rapid")
    rows = trace.rows
    assert len(rows) == record["steps"] > 0
    assert [r["tick"] for r in rows] == list(range(len(rows)))
    dt = trace.meta["tick_dt"]
    assert [r["t"] for r in rows] == pytest.approx([i * dt for i in range(len(rows))])
    assert rows[-1]["success"] == record["success"]
    cols = trace.columns()
    assert all(len(v) == len(rows) for v in cols.values())
    json.dumps(trace.to_dict())  # plain data


def test_decisions_and_events_match_the_record(controller: PartitionedController) -> None:
    record, trace = _traced(controller, "rapid")
    counts = trace.counts()
    assert counts["request"] == record["inferences"] > 0
    assert counts["preempt"] == record["preemptions"] > 0  # wifi + push: RAPID preempts
    assert counts["refused"] == record["refused_requests"]
    assert counts["lost"] == record["lost_requests"]
    assert counts["superseded"] == record["superseded_chunks"]
    assert counts["stalled"] == record["stall_steps"]
    assert sum(r["delivered"] for r in trace.rows) == len(controller.latencies_s)
    for row in trace.rows:
        requested = any(e.startswith("request:") for e in row["events"])
        assert (row["decision"] in ("request", "preempt")) == requested
        assert (row["split"] is not None) == requested
        assert (row["latency_ms"] is None) == (row["delivered"] == 0)
    lat = [r["latency_ms"] for r in trace.rows if r["latency_ms"] is not None]
    if len(lat) == len(controller.latencies_s):  # one delivery per tick: means are the values
        assert lat == pytest.approx([x * 1e3 for x in controller.latencies_s])
    staged = [r for r in trace.rows if r["delivered"]]
    for r in staged:
        total = r["edge_ms"] + r["up_ms"] + r["cloud_ms"] + r["down_ms"]
        assert r["latency_ms"] >= total - 1e-6  # queueing comes on top of the stages


def test_link_and_motion_columns(controller: PartitionedController) -> None:
    _, trace = _traced(controller, "rapid")
    rows = trace.rows
    assert all(r["link_bandwidth_mbps"] is not None and r["link_bandwidth_mbps"] >= 0
               for r in rows)  # wifi is a trace link: it tells its rate
    assert rows[0]["est_bandwidth_mbps"] > 0 and rows[0]["est_rtt_ms"] > 0
    assert all(r["ee_speed"] >= 0 and math.isfinite(r["jerk"]) for r in rows)
    assert max(r["ee_speed"] for r in rows) > 0.01  # the expert moves the hand


def test_importance_score_only_for_deciders_that_expose_it(
    controller: PartitionedController,
) -> None:
    _, rapid = _traced(controller, "rapid")
    assert rapid.has_importance
    assert all(set(IMPORTANCE_FIELDS) <= set(r) for r in rapid.rows)
    assert rapid.meta["high_threshold"] == 4.0 and rapid.meta["low_threshold"] == 2.0
    assert any(r["score"] > 0 for r in rapid.rows)
    assert not any(r["score_ready"] for r in rapid.rows[:1])  # too little history at tick 0
    _, cloud = _traced(controller, "cloud-only")
    assert not cloud.has_importance
    assert not any(set(IMPORTANCE_FIELDS) & set(r) for r in cloud.rows)
    assert "high_threshold" not in cloud.meta


def test_the_trace_changes_no_record(controller: PartitionedController) -> None:
    plain = run_episode(controller, build_decider("rapid"), 1001)
    traced, _ = _traced(controller, "rapid", seed=1001, frames=True)
    assert _plain(traced) == _plain(plain)


def test_frames_of_an_image_policy_leave_the_noise_stream_alone() -> None:
    """The policy reads frames on request ticks only; peeking every tick must not shift draws."""
    cfg = EnvConfig(task="reach", policy="chunk-regress", link="constant:20:40", image_size=32,
                    noise="gaussian_noise:3+occlusion:3+frame_freeze:3+lighting:3",
                    max_episode_s=1.5)
    c = build_controller(cfg)
    try:
        plain = run_episode(c, build_decider("rapid"), 1000)
        traced, trace = _traced(c, "rapid", frames=True)
    finally:
        c.task.close()
    assert _plain(traced) == _plain(plain)
    assert len(trace.frames) == len(trace.rows) + 1
    assert trace.frames[0].shape == (32, 32, 3) and trace.frames[0].dtype == np.uint8


def test_link_bandwidth_of_each_link_kind() -> None:
    assert link_bandwidth_bps(ConstantLink(20e6, 0.04), 1.0) == 20e6
    assert link_bandwidth_bps(IdealLink(), 1.0) is None
    assert link_bandwidth_bps(object(), 1.0) is None
    link = parse_link("5g-driving")  # a measured trace: the rate changes over the episode
    link.reset(np.random.default_rng(0))
    rates = {link_bandwidth_bps(link, t) for t in np.arange(0.0, 10.0, 0.25)}
    assert all(r is not None and r >= 0 for r in rates) and len(rates) > 1
    before = link.transfer(100_000, 0.0, "up")
    link.reset(np.random.default_rng(0))
    link_bandwidth_bps(link, 3.0)  # reading the rate changes nothing the link does
    assert link.transfer(100_000, 0.0, "up") == before


def test_record_before_begin_is_an_error(controller: PartitionedController) -> None:
    with pytest.raises(RuntimeError, match="before begin"):
        EpisodeTrace().record(controller.observation(), build_decider("rapid").decide(
            controller.observation()), None)  # type: ignore[arg-type]
