"""The simulated transport times each stage of a plan over a link, with small fakes of both."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rapid_env.cost.model import InferencePlan, Stage
from rapid_env.link import ConstantLink, IdealLink, TransferResult
from rapid_env.transport import SimulatedTransport, TimedRequest


@dataclass
class PlanOf:
    """A cost planner whose every split has the same given stages."""

    stages: tuple[Stage, ...]
    n_blocks: int = 4

    def plan(self, k: int) -> InferencePlan:
        return InferencePlan(k, self.stages)

    def best_split(self, bandwidth_bps: float, rtt_s: float) -> int:
        return 0

    def edge_memory_bytes(self, k: int) -> float:
        return 0.0


class LosingLink(IdealLink):
    """Loses every uplink transfer."""

    def transfer(self, nbytes: int, t_start: float, direction: str) -> TransferResult:  # type: ignore[override]
        if direction == "up":
            return TransferResult(nbytes, "up", t_start, None, timed_out=True)
        return super().transfer(nbytes, t_start, direction)  # type: ignore[arg-type]


SPLIT_PLAN = (
    Stage("edge", 0.1, 0), Stage("up", 0.0, 1000), Stage("cloud", 0.02, 0),
    Stage("down", 0.0, 100),
)


def test_stages_add_up_in_order_over_an_ideal_link():
    timed = SimulatedTransport(PlanOf(SPLIT_PLAN), IdealLink()).send(2, 1.0)
    assert timed.arrival == pytest.approx(1.12)
    assert (timed.edge_s, timed.cloud_s, timed.up_s, timed.down_s) == (0.1, 0.02, 0.0, 0.0)
    assert (timed.bytes_up, timed.bytes_down) == (1000, 100)
    assert [tr.direction for tr in timed.transfers] == ["up", "down"]
    assert timed.transfers[0].start == pytest.approx(1.1)  # sent when the edge part is done


def test_transfer_time_comes_from_the_link():
    # 8 Mbit/s, 20 ms RTT: 1000 B take 1 ms to serialise + 10 ms one way
    timed = SimulatedTransport(PlanOf(SPLIT_PLAN), ConstantLink(8e6, 0.02)).send(2, 0.0)
    assert timed.up_s == pytest.approx(0.011)
    assert timed.down_s == pytest.approx(0.0001 + 0.01)
    assert timed.arrival == pytest.approx(0.1 + 0.011 + 0.02 + 0.0101)


def test_a_lost_transfer_ends_the_request_and_counts_its_bytes():
    timed = SimulatedTransport(PlanOf(SPLIT_PLAN), LosingLink()).send(2, 0.0)
    assert timed.arrival is None
    assert timed.bytes_up == 1000 and timed.bytes_down == 0  # nothing sent after the loss
    assert len(timed.transfers) == 1 and timed.transfers[0].timed_out
    assert timed.cloud_s == 0.0


def test_edge_only_plan_never_touches_the_link():
    timed = SimulatedTransport(PlanOf((Stage("edge", 0.3, 0),)), LosingLink()).send(4, 2.0)
    assert timed == TimedRequest(arrival=2.3, edge_s=0.3)
