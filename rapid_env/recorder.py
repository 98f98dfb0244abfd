"""The metrics recorder: what happened in an episode, counted as it happens, and its record.

The control loop reports events (a request sent, a chunk delivered or dropped, a stall, a fault)
and the recorder keeps the counts and series that :meth:`EpisodeRecorder.episode_metrics` turns
into the episode record. It also keeps the current tick's deltas (:class:`TickDelta`): what the
tick delivered, sent and stalled, which is all a per-tick reward needs to read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rapid_env.link import TransferResult
from rapid_env.metrics import ldlj, rms_jerk, sparc, tick_jerk_sq
from rapid_env.transport import CostPlanner, TimedRequest

if TYPE_CHECKING:
    from rapid_env.task import Task


@dataclass(frozen=True)
class TickDelta:
    """What one control tick added to the episode (the RAPID env's reward reads only this).

    Attributes:
        delivered_latency_s: summed latency of the chunks that arrived during the tick.
        bytes_sent: bytes handed to the link during the tick, both directions.
        jerk_sq: mean squared end-effector jerk over the tick's samples, (m/s^3)^2.
        stalled: the robot held because the chunk had run out.
    """

    delivered_latency_s: float = 0.0
    bytes_sent: int = 0
    jerk_sq: float = 0.0
    stalled: bool = False


@dataclass
class _Series:
    """Per delivered chunk: its latency and the seconds of each stage."""

    latency: list[float] = field(default_factory=list)
    edge: list[float] = field(default_factory=list)
    cloud: list[float] = field(default_factory=list)
    up: list[float] = field(default_factory=list)
    down: list[float] = field(default_factory=list)


class EpisodeRecorder:
    """Counts one episode's requests, deliveries, stalls and faults, and writes its record."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(
            ("inferences", "offloads", "preemptions", "refused_requests", "lost_requests",
             "stale_chunks", "superseded_chunks", "stall_steps", "faults", "clipped_actions",
             "early_exits", "suffix_requests"), 0
        )
        self.fault: str | None = None
        self.bytes_up = 0
        self.bytes_down = 0
        self.exec_bytes_up = 0
        self.splits: list[int] = []
        self._placed: set[tuple[int, bool]] = set()  # (split, the edge ran the model's tail)
        self.series = _Series()
        self.timeline: list[TransferResult] = []
        self.success_time: float | None = None
        self.measured: dict[str, list[float]] = {"edge": [], "rtt": [], "server": []}
        self._tick_latency = 0.0
        self._tick_bytes = 0

    # ------------------------------------------------------------------ events
    def begin_tick(self) -> None:
        """Start counting a new tick's deltas."""
        self._tick_latency = 0.0
        self._tick_bytes = 0

    def tick_delta(self, jerk_sq: float, stalled: bool) -> TickDelta:
        """The deltas of the tick since :meth:`begin_tick`."""
        return TickDelta(self._tick_latency, self._tick_bytes, jerk_sq, stalled)

    def count(self, what: str) -> None:
        """Add one to a counter (``preemptions``, ``refused_requests``, ``stall_steps`` ...)."""
        self.counts[what] += 1

    def request(
        self, split: int, offload: bool, timed: TimedRequest, exec_bytes: int, suffix: bool = False
    ) -> None:
        """A request was sent at ``split``; ``offload`` when any block runs in the cloud.

        ``suffix``: the edge ran the model's last ``split`` blocks (placement ``edge-suffix``,
        cloud and edge both busy), counted in ``suffix_requests``.
        """
        self.counts["inferences"] += 1
        self.counts["offloads"] += int(offload)
        self.counts["suffix_requests"] += int(suffix)
        self.splits.append(split)
        self._placed.add((split, suffix))
        self.exec_bytes_up += exec_bytes
        if not timed.pending:
            self.sent(timed)

    def sent(self, timed: TimedRequest) -> None:
        """A request's transfers as timed.

        Counted when the request is sent, or, for a request a shared resource times later
        (``pending``), when its timing is known.
        """
        self.bytes_up += timed.bytes_up
        self.bytes_down += timed.bytes_down
        self._tick_bytes += timed.bytes_up + timed.bytes_down
        self.timeline.extend(timed.transfers)
        for key, value in (("edge", timed.measured_edge_s), ("rtt", timed.measured_rtt_s),
                           ("server", timed.server_s)):
            if value is not None:  # measured by a remote transport; never on a simulated link
                self.measured[key].append(value)

    def delivered(self, latency: float, timed: TimedRequest) -> None:
        """A request's chunk arrived after ``latency`` seconds (whatever happens to it then)."""
        s = self.series
        s.latency.append(latency)
        s.edge.append(timed.edge_s)
        s.cloud.append(timed.cloud_s)
        s.up.append(timed.up_s)
        s.down.append(timed.down_s)
        self._tick_latency += latency

    def record_fault(self, what: str) -> None:
        """A fault; the first one of the episode is kept in the record's ``fault``.

        Policy faults (``policy_error: ...``) are recorded when their chunk arrives, a remote
        transport's (``remote_error: ...``) once per request, when it is sent.
        """
        self.counts["faults"] += 1
        if self.fault is None:
            self.fault = what

    def success(self, t: float) -> None:
        """The task is solved at ``t`` (only the first time counts)."""
        if self.success_time is None:
            self.success_time = t

    # ------------------------------------------------------------------ record
    def episode_metrics(
        self, task: Task, cost: CostPlanner, suffix_cost: CostPlanner | None = None
    ) -> dict[str, Any]:
        """Per-episode metrics (no wall-clock fields): success, latency, bytes, smoothness.

        ``edge_memory_gb`` is the largest edge share of the splits used: from ``cost``, or from
        ``suffix_cost`` (default ``cost``) for the requests made with ``suffix=True``.
        """
        c, s = self.counts, self.series
        tail = cost if suffix_cost is None else suffix_cost
        memory = [(tail if suffix else cost).edge_memory_bytes(k) for k, suffix in self._placed]
        lat_ms = np.asarray(s.latency) * 1e3
        path = np.asarray(task.ee_trace)
        dt = 1.0 / task.ee_trace_hz
        return {
            "success": bool(task.success),
            "steps": int(task.tick),
            "sim_time_s": float(task.sim_time),
            "time_to_success_s": self.success_time,
            **{k: c[k] for k in ("inferences", "offloads", "preemptions", "refused_requests",
                                 "lost_requests", "stale_chunks", "superseded_chunks",
                                 "suffix_requests")},
            "latency_ms_mean": _finite(float(lat_ms.mean())) if lat_ms.size else None,
            "latency_ms_p95": _finite(float(np.percentile(lat_ms, 95))) if lat_ms.size else None,
            # population std over this episode's chunks: with ``inferences``-like counts and the
            # mean it pools exactly over episodes (rapid-paper's mean +- std)
            "latency_ms_std": _finite(float(lat_ms.std())) if lat_ms.size else None,
            "latency_n": int(lat_ms.size),
            "edge_ms_mean": _mean_ms(s.edge),
            "cloud_ms_mean": _mean_ms(s.cloud),
            "network_ms_mean": _mean_ms([u + d for u, d in zip(s.up, s.down, strict=True)]),
            "uplink_ms_mean": _mean_ms(s.up),
            "downlink_ms_mean": _mean_ms(s.down),
            "split": _mode(self.splits),
            "edge_memory_gb": max(memory) / 1e9 if memory else None,
            "exec_bytes_up": self.exec_bytes_up,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "retransmissions": sum(tr.retransmissions for tr in self.timeline),
            "lost_transfers": sum(tr.arrival is None for tr in self.timeline),
            "stall_steps": c["stall_steps"],
            "rms_jerk": _finite(rms_jerk(path, dt)),
            "ldlj": _finite(ldlj(path, dt)),
            "sparc": _finite(sparc(path, dt)),
            "faults": c["faults"],
            "early_exits": c["early_exits"],
            "fault": self.fault,
            "clipped_actions": c["clipped_actions"],
            # wall-clock measurements of a remote transport, over the requests that made them
            # (None on a simulated link): edge part, the call as the client saw it, the server's
            "measured_edge_ms_mean": _mean_ms(self.measured["edge"]),
            "measured_rtt_ms_mean": _mean_ms(self.measured["rtt"]),
            "server_ms_mean": _mean_ms(self.measured["server"]),
        }


def tick_jerk(task: Task) -> float:
    """Mean squared end-effector jerk over the task's last control tick."""
    return tick_jerk_sq(task.ee_trace, task.ee_samples_per_tick, task.ee_trace_hz)


def _mean_ms(xs: list[float]) -> float | None:
    return _finite(float(np.mean(xs)) * 1e3) if xs else None


def _mode(xs: list[int]) -> int | None:
    """The most frequent value (the smallest among ties), None for an empty list."""
    if not xs:
        return None
    values, counts = np.unique(np.asarray(xs), return_counts=True)
    return int(values[int(np.argmax(counts))])


def _finite(x: float) -> float | None:
    """JSON has no NaN: undefined metrics are recorded as null."""
    return x if math.isfinite(x) else None
