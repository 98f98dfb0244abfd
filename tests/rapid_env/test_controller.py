"""The control loop's clock, holding, alignment and fault handling, on the real reach task."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rapid_env.controller import ControlConfig, PartitionedController
from rapid_env.decision import KEEP, Decision
from rapid_env.link import IdealLink
from rapid_env.noise import Clean
from tests.conftest import CountingPolicy, FakeCost, NaNPolicy

INFER = Decision("infer")


def make(task, latency_s: float, policy=None, **control) -> PartitionedController:
    c = PartitionedController(
        task, policy or CountingPolicy(), FakeCost(latency_s), IdealLink(), Clean(),
        ControlConfig(**control),
    )
    rng = np.random.default_rng
    c.reset(7, rng(1), rng(2), rng(3))
    return c


@pytest.mark.parametrize("latency", [0.0, 0.05, 0.051, 0.12, 0.15, 0.3])
def test_chunk_takes_effect_at_first_tick_at_or_after_latency(reach_task, latency):
    c = make(reach_task, latency)
    first_exec_tick = None
    for tick in range(12):
        out = c.step(INFER if tick == 0 else KEEP)
        if not out.info["stalled"] and first_exec_tick is None:
            first_exec_tick = tick
    dt = reach_task.tick_dt
    assert first_exec_tick == math.ceil(latency / dt - 1e-9)
    # the robot held (stalled) on every tick before the chunk arrived
    assert c.episode_metrics()["stall_steps"] >= first_exec_tick
    assert c.episode_metrics()["latency_ms_mean"] == pytest.approx(latency * 1e3)


def test_holding_keeps_the_hand_still(reach_task):
    c = make(reach_task, 10.0)  # the chunk never arrives within the test
    c.step(INFER)
    start = reach_task.end_effector_pos()
    for _ in range(10):
        out = c.step(KEEP)
        assert out.info["stalled"]
    assert np.linalg.norm(reach_task.end_effector_pos() - start) < 1e-2
    assert c.episode_metrics()["stall_steps"] == 11


class PushRight(CountingPolicy):
    def act(self, inp):
        return np.array([[0.5, 0.0, 0.0, 0.0]], dtype=np.float32)


def test_repeat_last_hold_policy_keeps_moving(reach_task):
    c = make(reach_task, 0.0, PushRight(chunk_size=1), hold_policy="repeat_last")
    c.step(INFER)
    start = reach_task.end_effector_pos()
    for _ in range(5):
        c.step(KEEP)
    assert np.linalg.norm(reach_task.end_effector_pos() - start) > 0.03


def test_arriving_chunk_skips_actions_executed_meanwhile(reach_task):
    policy = CountingPolicy(chunk_size=8)
    c = make(reach_task, 0.1, policy)
    for _ in range(3):  # first chunk arrives after 2 ticks of holding, nothing skipped
        c.step(INFER if c.task.tick == 0 else KEEP)
    assert c.buffer.remaining == 8 - 1
    c.step(INFER)  # request 2 at tick 3; the robot keeps executing chunk 1 meanwhile
    c.step(KEEP)
    # arrived at t = 0.25: two actions of chunk 1 were executed since the request -> skip 2
    assert c.buffer.remaining == 8 - 2
    a = c.buffer.pop()
    assert a is not None and a[0] == pytest.approx(0.02) and a[1] == pytest.approx(0.02)


def test_time_alignment_drops_actions_even_while_holding(reach_task):
    c = make(reach_task, 0.1, CountingPolicy(chunk_size=8), align="time")
    c.step(INFER)
    c.step(KEEP)  # arrives at the end of this tick: 2 ticks elapsed -> skip 2
    assert c.buffer.remaining == 6


def test_in_flight_limit_refuses_extra_request(reach_task):
    c = make(reach_task, 1.0, max_in_flight=1)
    c.step(INFER)
    out = c.step(INFER)
    assert "refused_in_flight" in out.info["events"]
    assert c.episode_metrics()["refused_requests"] == 1


class SlowThenFast(FakeCost):
    """First request takes 0.3 s, later ones 0.05 s: the second overtakes the first."""

    def __init__(self) -> None:
        super().__init__(0.3)
        self.calls = 0

    def plan(self, k):
        self.calls += 1
        self.latency_s = 0.3 if self.calls == 1 else 0.05
        return super().plan(k)


def test_newest_request_wins_over_an_older_late_chunk(reach_task):
    c = PartitionedController(
        reach_task, CountingPolicy(chunk_size=8), SlowThenFast(), IdealLink(), Clean()
    )
    rng = np.random.default_rng
    c.reset(7, rng(1), rng(2), rng(3))
    c.step(INFER)  # request 0, arrives at 0.3 s
    c.step(INFER)  # request 1 at 0.05 s, arrives at 0.1 s and is installed
    events = []
    for _ in range(6):
        events += c.step(KEEP).info["events"]
    assert "superseded" in events  # request 0 arrived after request 1's chunk: dropped
    m = c.episode_metrics()
    assert m["superseded_chunks"] == 1 and m["inferences"] == 2


def test_preempting_request_drops_older_chunks_in_flight(reach_task):
    c = make(reach_task, 0.2, CountingPolicy(chunk_size=8))
    c.step(INFER)  # request 0 at t=0, arrives at 0.2 s
    c.step(Decision("infer", preempt=True))  # request 1 at 0.05 s, arrives at 0.25 s
    events = []
    for _ in range(5):
        events += c.step(KEEP).info["events"]
    assert events.count("superseded") == 1 and events.count("arrive") == 1
    a = c.buffer.pop()
    assert a is not None and a[0] == pytest.approx(0.02)  # the second (preempting) request


def test_preempt_drops_cached_actions(reach_task):
    c = make(reach_task, 0.0, CountingPolicy(chunk_size=8))
    c.step(INFER)
    assert c.buffer.remaining == 7
    c.step(Decision("infer", preempt=True))
    m = c.episode_metrics()
    assert m["preemptions"] == 1 and m["inferences"] == 2


def test_nan_policy_is_recorded_and_robot_holds(reach_task):
    c = make(reach_task, 0.0, NaNPolicy())
    start = reach_task.end_effector_pos()
    for tick in range(4):
        out = c.step(INFER if tick == 0 else KEEP)
        assert out.info["stalled"]
    m = c.episode_metrics()
    assert m["faults"] == 1 and m["fault"] == "policy_nonfinite_action"
    assert np.linalg.norm(reach_task.end_effector_pos() - start) < 1e-2


class ExitingPolicy(CountingPolicy):
    """A user's model that calls sys.exit: a fault of the model, not the end of the sweep."""

    def act(self, inp):
        raise SystemExit(3)


class AbsurdPolicy(CountingPolicy):
    """Finite but absurd actions: executed clipped to [-1, 1], and counted."""

    def act(self, inp):
        return np.full((self.chunk_size, 4), 1e30, dtype=np.float32)


def test_policy_calling_sys_exit_is_a_recorded_fault(reach_task):
    c = make(reach_task, 0.0, ExitingPolicy())
    c.step(INFER)
    m = c.episode_metrics()
    assert m["faults"] == 1 and m["fault"] == "policy_error: SystemExit: 3"


def test_out_of_range_actions_are_clipped_and_counted(reach_task):
    c = make(reach_task, 0.0, AbsurdPolicy())
    for tick in range(3):
        c.step(INFER if tick == 0 else KEEP)
    m = c.episode_metrics()
    assert m["clipped_actions"] == 3 and m["faults"] == 0
    assert np.all(np.isfinite(reach_task.end_effector_pos()))


def test_bad_split_names_range(reach_task):
    c = make(reach_task, 0.0)
    with pytest.raises(ValueError, match=r"split 9 out of range; allowed: 0 .. 2"):
        c.step(Decision("infer", split=9))


def test_bad_control_config():
    with pytest.raises(ValueError, match="hold_policy='drift'"):
        ControlConfig(hold_policy="drift")  # type: ignore[arg-type]
