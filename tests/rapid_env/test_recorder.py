"""The recorder: counts, per-stage series, tick deltas and the record, fed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.link import TransferResult
from rapid_env.metrics import tick_jerk_sq
from rapid_env.recorder import EpisodeRecorder, tick_jerk
from rapid_env.transport import TimedRequest


class Still:
    """A task that has not moved: what the record reads of a task."""

    success = False
    tick = 3
    sim_time = 0.15
    ee_trace = [np.zeros(3)] * 13
    ee_trace_hz = 80.0
    ee_samples_per_tick = 4


class TwoGB:
    n_blocks = 4

    def edge_memory_bytes(self, k: int) -> float:
        return k * 0.5e9


TIMED = TimedRequest(
    0.3, edge_s=0.1, cloud_s=0.05, up_s=0.1, down_s=0.05, bytes_up=1000, bytes_down=200,
    transfers=(TransferResult(1000, "up", 0.1, 0.2, retransmissions=2),
               TransferResult(200, "down", 0.25, 0.3)),
)


def test_tick_deltas_hold_only_this_tick():
    rec = EpisodeRecorder()
    rec.begin_tick()
    rec.request(2, True, TIMED, exec_bytes=64)
    rec.delivered(0.3, TIMED)
    d = rec.tick_delta(jerk_sq=4.0, stalled=True)
    assert (d.delivered_latency_s, d.bytes_sent, d.jerk_sq, d.stalled) == (0.3, 1200, 4.0, True)
    rec.begin_tick()
    assert rec.tick_delta(0.0, False).bytes_sent == 0


def test_record_fields_from_events():
    rec = EpisodeRecorder()
    rec.request(2, True, TIMED, exec_bytes=64)
    rec.request(4, False, TimedRequest(0.5, edge_s=0.2), exec_bytes=0)
    rec.request(2, True, TIMED, exec_bytes=64)
    rec.delivered(0.3, TIMED)
    rec.count("stall_steps")
    rec.record_fault("first")
    rec.record_fault("second")
    rec.success(0.1)
    rec.success(0.2)
    m = rec.episode_metrics(Still(), TwoGB())  # type: ignore[arg-type]
    assert m["inferences"] == 3 and m["offloads"] == 2 and m["split"] == 2
    assert m["edge_memory_gb"] == pytest.approx(2.0)  # the largest edge part used: split 4
    assert m["bytes_up"] == 2000 and m["exec_bytes_up"] == 128 and m["retransmissions"] == 4
    assert m["latency_ms_mean"] == pytest.approx(300.0)
    assert m["network_ms_mean"] == pytest.approx(150.0)
    assert m["faults"] == 2 and m["fault"] == "first" and m["time_to_success_s"] == 0.1
    assert m["stall_steps"] == 1 and m["rms_jerk"] == 0.0


def test_empty_episode_has_null_latencies():
    m = EpisodeRecorder().episode_metrics(Still(), TwoGB())  # type: ignore[arg-type]
    assert m["latency_ms_mean"] is None and m["split"] is None and m["edge_memory_gb"] is None


def test_tick_jerk_reads_only_the_newest_samples():
    path = [np.array([0.0, 0.0, 0.0])] * 10 + [np.array([float(i) ** 3, 0, 0]) for i in range(4)]
    # the newest 1 sample plus 3 before it: x = 0, 1, 8, 27 -> third difference 6 per dt^3
    assert tick_jerk_sq(path, 1, rate_hz=1.0) == pytest.approx(36.0)
    assert tick_jerk_sq(path[:3], 1, rate_hz=1.0) == 0.0


class Cubic(Still):
    """A hand on x = t^3 sampled at 10 Hz: its jerk is 6 m/s^3 everywhere."""

    ee_trace_hz = 10.0
    ee_samples_per_tick = 2
    ee_trace = [np.array([(i / 10.0) ** 3, 0.0, 0.0]) for i in range(9)]


def test_tick_jerk_reads_the_task_trace_at_its_own_rate():
    assert tick_jerk(Cubic()) == pytest.approx(36.0)  # type: ignore[arg-type]
    m = EpisodeRecorder().episode_metrics(Cubic(), TwoGB())  # type: ignore[arg-type]
    assert m["rms_jerk"] == pytest.approx(6.0)
