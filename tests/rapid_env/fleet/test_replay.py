"""The trace-driven replay: recorded timelines into the queue, no physics."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from rapid_env.agents.periodic import PeriodicDecider
from rapid_env.cost import build_cost_model
from rapid_env.fleet.loop import FleetRobot, run_fleet
from rapid_env.fleet.queue import BatchPolicy
from rapid_env.fleet.replay import replay
from rapid_env.fleet.transport import RequestTrace
from tests.rapid_env.fleet.test_loop import controller


@pytest.fixture(scope="module")
def recorded() -> tuple[list[list[RequestTrace]], list[list[float]], float]:
    robots = [FleetRobot(controller(), PeriodicDecider(), 200 + i) for i in range(4)]
    result = run_fleet(robots, BatchPolicy(None), stagger_s=0.5, seed=3)
    return result.timelines, result.latencies_s, result.sim_time_s


def test_replay_on_an_unqueued_cloud_gives_the_recorded_latencies(recorded) -> None:
    timelines, latencies, horizon = recorded
    assert all(len(t) > 3 for t in timelines)
    got = replay(timelines, 4, BatchPolicy(None), build_cost_model(), horizon)
    # every delivered chunk's latency is a replayed request's (a few were still on their way
    # when their robot's episode ended: replayed, never delivered)
    replayed = Counter(round(x, 9) for x in got.latencies_s)
    delivered = Counter(round(x, 9) for robot in latencies for x in robot)
    assert not delivered - replayed
    assert got.latencies_s.size - sum(delivered.values()) <= 4
    assert got.queue_s.max() == 0


def test_one_gpu_queues_and_replays_repeat(recorded) -> None:
    timelines, _, horizon = recorded
    one = replay(timelines, 16, BatchPolicy(1), build_cost_model(), horizon, seed=5)
    again = replay(timelines, 16, BatchPolicy(1), build_cost_model(), horizon, seed=5)
    free = replay(timelines, 16, BatchPolicy(None), build_cost_model(), horizon, seed=5)
    assert np.array_equal(one.latencies_s, again.latencies_s)
    assert one.latencies_s.size == free.latencies_s.size == 4 * sum(len(t) for t in timelines)
    assert one.p(95) > free.p(95) and one.queue_s.max() > 0


def test_batching_serves_more_per_gpu_second(recorded) -> None:
    timelines, _, horizon = recorded
    b1 = replay(timelines, 32, BatchPolicy(1), build_cost_model(), horizon, seed=1)
    b8 = replay(timelines, 32, BatchPolicy(1, 8, 0.01), build_cost_model(), horizon, seed=1)
    assert b8.batch_size_mean > 1 and b8.busy_s < b1.busy_s


def test_replay_refuses_nothing_to_replay() -> None:
    with pytest.raises(ValueError, match="timelines"):
        replay([], 3, BatchPolicy(1), build_cost_model(), 10.0)


def test_reactive_replay_on_an_unqueued_cloud_is_the_recording(recorded) -> None:
    timelines, latencies, horizon = recorded
    fixed = replay(timelines, 4, BatchPolicy(None), build_cost_model(), horizon)
    reactive = replay(timelines, 4, BatchPolicy(None), build_cost_model(), horizon,
                      mode="reactive")
    assert np.allclose(np.sort(reactive.latencies_s), np.sort(fixed.latencies_s), atol=1e-9)


def test_reactive_robots_ask_later_when_chunks_come_later(recorded) -> None:
    timelines, _, horizon = recorded
    fixed = replay(timelines, 16, BatchPolicy(1), build_cost_model(), horizon, seed=2)
    reactive = replay(timelines, 16, BatchPolicy(1), build_cost_model(), horizon, seed=2,
                      mode="reactive")
    assert reactive.horizon_s > horizon  # the same requests, spread over a longer time
    assert reactive.latencies_s.size == fixed.latencies_s.size
    assert reactive.p(95) < fixed.p(95)  # a closed loop does not pile up what it waits for
    with pytest.raises(ValueError, match="mode='sometimes'"):
        replay(timelines, 1, BatchPolicy(1), build_cost_model(), horizon, mode="sometimes")
