"""Delivery: newest request wins, alignment to what was executed, loss at the deadline."""

from __future__ import annotations

import numpy as np

from rapid_env.chunks import ChunkBuffer
from rapid_env.delivery import InFlight, Request
from rapid_env.link import LinkEstimator, TransferResult
from rapid_env.transport import TimedRequest


def chunk(tag: float, n: int = 4) -> np.ndarray:
    c = np.zeros((n, 4), dtype=np.float32)
    c[:, 0] = tag
    c[:, 1] = np.arange(n)
    return c


def request(
    flight: InFlight, t: float, arrival: float | None, tag: float = 1.0, executed: int = 0,
    tick: int = 0, transfers: tuple[TransferResult, ...] = (),
) -> Request:
    req = Request(
        seq=flight.next_seq, tick=tick, t=t, executed_at_request=executed,
        chunk=chunk(tag) if tag else None, fault=None if tag else "policy_error: boom",
        timed=TimedRequest(arrival, transfers=transfers), deadline=t + 1.0,
    )
    flight.add(req)
    return req


def make(align: str = "executed") -> tuple[InFlight, ChunkBuffer]:
    buffer = ChunkBuffer()
    return InFlight(buffer, LinkEstimator(), align), buffer  # type: ignore[arg-type]


def test_nothing_arrives_before_its_time():
    flight, buffer = make()
    request(flight, 0.0, 0.2)
    assert list(flight.deliver(0.1, executed=0, tick=2)) == []
    assert len(flight) == 1 and buffer.remaining == 0


def test_arrival_skips_the_actions_executed_since_the_request():
    flight, buffer = make()
    request(flight, 0.0, 0.2, executed=3)
    (out,) = flight.deliver(0.2, executed=5, tick=9)
    assert out.result == "installed" and out.latency == 0.2
    assert buffer.remaining == 2 and buffer.pop()[1] == 2  # chunk[2:] installed


def test_time_alignment_skips_one_action_per_elapsed_tick():
    flight, buffer = make("time")
    request(flight, 0.0, 0.2, tick=1)
    (out,) = flight.deliver(0.2, executed=1, tick=4)
    assert out.result == "installed" and buffer.remaining == 1


def test_a_chunk_with_nothing_left_is_stale():
    flight, _ = make()
    request(flight, 0.0, 0.2)
    (out,) = flight.deliver(0.2, executed=9, tick=9)
    assert out.result == "stale"


def test_an_older_chunk_arriving_late_is_superseded():
    flight, buffer = make()
    request(flight, 0.0, 0.5, tag=1.0)
    request(flight, 0.1, 0.3, tag=2.0)
    outs = list(flight.deliver(0.6, executed=0, tick=0))
    assert [o.result for o in outs] == ["installed", "superseded"]  # earliest arrival first
    assert buffer.pop()[0] == 2.0


def test_preemption_supersedes_every_chunk_in_flight():
    flight, buffer = make()
    request(flight, 0.0, 0.3, tag=1.0)
    flight.supersede_all()
    request(flight, 0.1, 0.4, tag=2.0)
    outs = list(flight.deliver(0.5, executed=0, tick=0))
    assert [o.result for o in outs] == ["superseded", "installed"]
    assert buffer.pop()[0] == 2.0


def test_a_faulty_request_empties_the_buffer():
    flight, buffer = make()
    buffer.install(chunk(7.0), 0)
    request(flight, 0.0, 0.1, tag=0.0)
    (out,) = flight.deliver(0.1, executed=0, tick=0)
    assert out.result == "fault" and buffer.remaining == 0


def test_a_lost_request_is_given_up_at_its_deadline_and_the_estimator_learns():
    flight, _ = make()
    lost = TransferResult(1000, "up", 0.0, None, timed_out=True)
    request(flight, 0.0, None, transfers=(lost,))
    assert list(flight.deliver(0.99, executed=0, tick=0)) == []
    (out,) = flight.deliver(1.0, executed=0, tick=0)
    assert out.result == "lost" and out.timed_out and out.latency is None
    assert len(flight) == 0
