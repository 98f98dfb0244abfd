"""The shared cloud's queue: FIFO, batching (B, W), memory admission, deadlines, GPUs."""

from __future__ import annotations

import math

import pytest

from rapid_env.cost import build_cost_model
from rapid_env.fleet.queue import BatchPolicy, CloudJob, CloudQueue


def service(kind: object, batch: int) -> float:
    """1 s for one job, 0.5 s more per extra job in the batch."""
    return 1.0 + 0.5 * (batch - 1)


def run(policy: BatchPolicy, arrivals: list[tuple[float, str]]) -> list[tuple[float, float, int]]:
    """Each job's (start, service, batch size), in submission order."""
    q = CloudQueue(policy, service)
    got: list[tuple[float, float, int]] = [(-1.0, -1.0, 0)] * len(arrivals)
    for i, (t, kind) in enumerate(arrivals):
        q.submit(CloudJob(kind, t, math.inf, lambda s, d, b, i=i: got.__setitem__(i, (s, d, b))))
    q.drain()
    return got


def test_fifo_one_gpu_queues_in_arrival_order_not_submission_order() -> None:
    # the second job is submitted first but arrives later: the first arrival is served first
    got = run(BatchPolicy(1), [(0.5, "a"), (0.0, "a"), (0.2, "a")])
    assert got == [(2.0, 1.0, 1), (0.0, 1.0, 1), (1.0, 1.0, 1)]


def test_unbounded_gpus_start_every_job_on_arrival() -> None:
    got = run(BatchPolicy(None), [(0.0, "a"), (0.1, "a"), (0.2, "a")])
    assert [s for s, _, _ in got] == [0.0, 0.1, 0.2]


def test_two_gpus_serve_two_at_once() -> None:
    got = run(BatchPolicy(2), [(0.0, "a"), (0.0, "a"), (0.0, "a")])
    assert sorted(s for s, _, _ in got) == [0.0, 0.0, 1.0]


def test_batch_waits_at_most_w_for_b_same_kind_jobs() -> None:
    # B=3, W=0.3: the head (t=0) waits until 0.3; the job of another kind does not join
    got = run(BatchPolicy(1, max_batch=3, max_wait_s=0.3),
              [(0.0, "a"), (0.1, "a"), (0.2, "b"), (0.25, "a"), (0.4, "a")])
    assert got[0] == got[1] == got[3] == (0.25, 2.0, 3)  # full at 0.25, before its wait ran out
    assert got[2] == (2.25, 1.0, 1)  # "b" heads the next batch once the GPU is free
    assert got[4] == (3.25, 1.0, 1)


def test_batch_starts_when_head_waited_w() -> None:
    got = run(BatchPolicy(1, max_batch=4, max_wait_s=0.3), [(0.0, "a"), (0.1, "a"), (1.0, "a")])
    assert got[0] == got[1] == (0.3, 1.5, 2)
    assert got[2][0] == pytest.approx(1.8)


def test_memory_admission_caps_the_batch() -> None:
    got = run(BatchPolicy(1, max_batch=8, max_concurrent=2), [(0.0, "a")] * 3)
    assert sorted(b for _, _, b in got) == [1, 2, 2]


def test_advance_decides_only_what_cannot_change() -> None:
    q = CloudQueue(BatchPolicy(1, max_batch=2, max_wait_s=0.5), service)
    got: list[float] = []
    q.submit(CloudJob("a", 0.0, math.inf, lambda s, d, b: got.append(b)))
    q.advance(0.4)  # its batch would start at 0.5: a later job may still join
    assert got == []
    q.submit(CloudJob("a", 0.45, math.inf, lambda s, d, b: got.append(b)))
    q.advance(1.0)
    assert got == [2, 2]


def test_a_job_past_its_deadline_is_dropped_not_served() -> None:
    q = CloudQueue(BatchPolicy(1), service)
    dropped: list[float] = []
    q.submit(CloudJob("a", 0.0, math.inf, lambda s, d, b: None))
    q.submit(CloudJob("a", 0.1, 0.5, lambda s, d, b: pytest.fail("served"), dropped.append))
    q.drain()
    assert dropped == [1.0] and q.dropped == 1


@pytest.mark.parametrize("bad", [{"gpus": 0}, {"max_batch": 0}, {"max_wait_s": -1.0},
                                 {"max_concurrent": 0}])
def test_bad_policy_names_the_value(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        BatchPolicy(**bad)  # type: ignore[arg-type]


def test_cost_model_batch_of_one_is_the_plan_and_batches_amortise_weights() -> None:
    model = build_cost_model()
    for k in (0, 5, model.n_blocks - 1):
        plan = tuple(s.seconds for s in model.plan(k).stages if s.kind == "cloud")
        assert model.cloud_stage_seconds(k) == plan
    one, eight = model.cloud_stage_seconds(0)[0], model.cloud_stage_seconds(0, 8)[0]
    assert one < eight < 8 * one  # more work, weights read once
    step1, step8 = model.cloud_stage_seconds(5)[1], model.cloud_stage_seconds(5, 8)[1]
    assert step8 / step1 < eight / one  # a memory-bound decode pass gains more from batching
    with pytest.raises(ValueError, match="batch=0"):
        model.cloud_stage_seconds(0, 0)
