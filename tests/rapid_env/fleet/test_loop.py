"""The fleet loop on the point-mass task (no MuJoCo): one robot alone is today's episode,
robots that share one GPU queue, the same fleet twice gives the same records."""

from __future__ import annotations

from typing import Any

import pytest

from rapid_env.agents.periodic import PeriodicDecider
from rapid_env.agents.rapid import RapidDecider
from rapid_env.config import ControlConfig
from rapid_env.controller import PartitionedController
from rapid_env.cost import build_cost_model
from rapid_env.decision import Decider
from rapid_env.episode import WALL_CLOCK_FIELDS, run_episode
from rapid_env.fleet.cell import CellSpec
from rapid_env.fleet.loop import FleetRobot, run_fleet
from rapid_env.fleet.queue import BatchPolicy
from rapid_env.link import parse_link
from rapid_env.noise import parse_noise
from tests.rapid_env.fakes import GoToGoal, PointMass

FLEET_ONLY = {"fleet_key", "fleet_robots", "fleet_robot", "fleet_gpus", "fleet_max_batch",
              "fleet_max_wait_ms", "fleet_cell", "queue_ms_mean", "queue_ms_p95",
              "batch_size_mean", "airtime_share"}


def controller(link: str = "lab-wifi6", in_flight: int = 2) -> PartitionedController:
    return PartitionedController(
        PointMass(max_episode_s=3.0), GoToGoal(), build_cost_model(), parse_link(link),
        parse_noise("clean"), ControlConfig(max_in_flight=in_flight),
    )


def deciders() -> dict[str, type[Decider]]:
    return {"rapid": RapidDecider, "periodic": PeriodicDecider}


def same(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The fields that differ, wall-clock and fleet-only ones aside."""
    keys = (set(a) | set(b)) - set(WALL_CLOCK_FIELDS) - FLEET_ONLY
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


@pytest.mark.parametrize("name", ["rapid", "periodic"])
@pytest.mark.parametrize("gpus", [None, 1])
def test_one_robot_fleet_is_the_lone_robot(name: str, gpus: int | None) -> None:
    seed = 11
    alone = run_episode(controller(in_flight=1), deciders()[name](), seed)
    fleet = run_fleet([FleetRobot(controller(in_flight=1), deciders()[name](), seed)],
                      BatchPolicy(gpus, 1, 0.0))
    assert alone["inferences"] > 3
    assert same(alone, fleet.records[0]) == {}
    assert fleet.records[0]["airtime_share"] == 1.0


def test_one_robot_with_a_gpu_per_request_is_the_lone_robot_when_it_pipelines() -> None:
    alone = run_episode(controller(in_flight=2), PeriodicDecider(), 5)
    fleet = run_fleet([FleetRobot(controller(in_flight=2), PeriodicDecider(), 5)],
                      BatchPolicy(None), cell=CellSpec(300e6, 300e6))
    assert same(alone, fleet.records[0]) == {}  # and a cell to itself adds nothing


def eight(gpus: int | None, cell: CellSpec | None = None, stagger: float = 0.5) -> list[dict]:
    robots = [FleetRobot(controller(), PeriodicDecider(), 100 + i) for i in range(8)]
    return run_fleet(robots, BatchPolicy(gpus, 1, 0.0), cell, stagger, seed=7).records


def test_eight_robots_on_one_gpu_queue_and_are_deterministic() -> None:
    first, second = eight(1), eight(1)
    assert [same(a, b) for a, b in zip(first, second, strict=True)] == [{}] * 8
    assert any(r["queue_ms_mean"] > 0 for r in first)
    unshared = eight(None)
    assert all(r["queue_ms_mean"] == 0 for r in unshared)
    mean = sum(r["latency_ms_mean"] for r in first) / 8
    assert mean > sum(r["latency_ms_mean"] for r in unshared) / 8


def test_a_narrow_cell_shares_airtime() -> None:
    records = eight(None, CellSpec(20e6, 20e6), stagger=0.0)
    assert min(r["airtime_share"] for r in records) < 1.0
    assert all(r["queue_ms_mean"] == 0 for r in records)


def test_batching_forms_batches_when_robots_coincide() -> None:
    robots = [FleetRobot(controller(), PeriodicDecider(), 100 + i) for i in range(4)]
    result = run_fleet(robots, BatchPolicy(1, 4, 0.05), stagger_s=0.0)
    assert max(b.size for b in result.cloud.batches) > 1  # type: ignore[union-attr]
    assert any((r["batch_size_mean"] or 0) > 1 for r in result.records)


def test_a_fleet_refuses_mixed_clouds() -> None:
    other = PartitionedController(
        PointMass(), GoToGoal(), build_cost_model(cloud="h100"), parse_link("lab-wifi6"),
        parse_noise("clean"),
    )
    with pytest.raises(ValueError, match="share one cloud"):
        run_fleet([FleetRobot(controller(), PeriodicDecider(), 1),
                   FleetRobot(other, PeriodicDecider(), 2)], BatchPolicy(1))
