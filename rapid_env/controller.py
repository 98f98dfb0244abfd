"""The partitioned control loop: one control tick at a time, in virtual time.

Each tick (see ../shared/DESIGN.md, "One control tick"):

1. the decider's decision is applied: ``infer`` runs the policy *now* on the current (noisy)
   observation and schedules the chunk's arrival after the modelled latency ::

       latency = edge part(k) + uplink(bytes_k) + cloud part(k) + downlink(chunk) [+ queueing]

   (``preempt`` first drops the rest of the cached chunk);
2. chunks whose arrival time has come are installed, aligned to now;
3. the robot executes the next cached action, or holds when the chunk has run out (a stall);
4. physics advances one tick, proprioception is sampled at every substep;
5. chunks that arrived during the tick are installed, and the next decider observation is built.

A chunk with latency L therefore takes effect at the first tick at or after L. Nothing waits on the
wall clock: an episode's records depend only on the seed and the configuration.

**Alignment.** A chunk is planned from the observation at its request tick; ``chunk[i]`` is meant
for the i-th action the robot executes after that observation. On arrival we skip as many actions
as the robot has executed since the request (``align="executed"``, default): ticks spent holding
still do not count, because a robot that stood still is still where the chunk was planned from.
``align="time"`` skips one action per elapsed tick instead; with a latency longer than the chunk it
empties every chunk, which is why it is not the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from rapid_env.agents.policy import Policy, PolicyInput
from rapid_env.chunks import ChunkBuffer
from rapid_env.cost.model import InferencePlan
from rapid_env.decision import DeciderContext, DeciderObservation, Decision
from rapid_env.link import Link, LinkEstimator, TransferResult
from rapid_env.metrics import ldlj, rms_jerk, sparc
from rapid_env.noise import ImageNoise
from rapid_env.tasks.metaworld_task import MW_STEP_HZ, MetaWorldTask

HoldPolicy = Literal["hold", "repeat_last"]
Align = Literal["executed", "time"]
_EPS_T = 1e-9


class CostPlanner(Protocol):
    """What the loop needs of a cost model (:class:`rapid_env.cost.CostModel` and fakes)."""

    @property
    def n_blocks(self) -> int:
        """Number of blocks; split points are 0 .. n_blocks."""
        ...

    def plan(self, k: int) -> InferencePlan:
        """The ordered compute and transfer stages of one inference split at ``k``."""
        ...

    def best_split(self, bandwidth_bps: float, rtt_s: float) -> int:
        """The latency-optimal split for a link with this bandwidth and RTT."""
        ...

    def edge_memory_bytes(self, k: int) -> float:
        """Edge memory that split ``k`` needs."""
        ...


@dataclass(frozen=True)
class ControlConfig:
    """Control-loop settings.

    Attributes:
        hold_policy: what the robot does when the chunk has run out: ``hold`` (stay where it is,
            gripper effort unchanged) or ``repeat_last`` (keep applying the last action).
        max_in_flight: requests allowed in flight at once; a further ``infer`` is refused and
            counted (``refused_requests``). Two by default, so a critical moment can trigger a
            fresh request while a refill is still on its way (newest request wins, see
            :meth:`PartitionedController._deliver`).
        align: how an arriving chunk is aligned to now (module docstring).
        request_timeout_s: a request whose transfer is lost is given up after this long.
        proprio_window_s: how much proprioception history a decider sees.
    """

    hold_policy: HoldPolicy = "hold"
    max_in_flight: int = 2
    align: Align = "executed"
    request_timeout_s: float = 2.0
    proprio_window_s: float = 0.5

    def __post_init__(self) -> None:
        if self.hold_policy not in ("hold", "repeat_last"):
            raise ValueError(f"hold_policy={self.hold_policy!r}; allowed: hold, repeat_last")
        if self.align not in ("executed", "time"):
            raise ValueError(f"align={self.align!r}; allowed: executed, time")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {self.max_in_flight}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")


@dataclass
class _Request:
    seq: int
    tick: int
    t: float
    split: int
    executed_at_request: int
    chunk: np.ndarray | None
    fault: str | None
    arrival: float | None
    deadline: float
    edge_s: float
    cloud_s: float
    up_s: float
    down_s: float
    transfers: list[TransferResult]


@dataclass
class _Counters:
    inferences: int = 0
    offloads: int = 0
    preemptions: int = 0
    refused_requests: int = 0
    lost_requests: int = 0
    stale_chunks: int = 0
    superseded_chunks: int = 0
    stall_steps: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    faults: int = 0
    fault: str | None = None
    latencies: list[float] = field(default_factory=list)
    edge_s: list[float] = field(default_factory=list)
    cloud_s: list[float] = field(default_factory=list)
    up_s: list[float] = field(default_factory=list)
    down_s: list[float] = field(default_factory=list)
    splits: list[int] = field(default_factory=list)
    exec_bytes_up: int = 0
    success_time: float | None = None
    link_timeline: list[TransferResult] = field(default_factory=list)


@dataclass(frozen=True)
class TickOutcome:
    """What one tick produced."""

    obs: DeciderObservation
    success: bool
    terminated: bool
    truncated: bool
    info: dict[str, Any]


class PartitionedController:
    """Runs a policy through a cost model and a link inside a task, tick by tick."""

    def __init__(
        self,
        task: MetaWorldTask,
        policy: Policy,
        cost: CostPlanner,
        link: Link,
        noise: ImageNoise,
        config: ControlConfig | None = None,
        decider_needs_image: bool = False,
    ) -> None:
        self.task = task
        self.policy = policy
        self.cost = cost
        self.link = link
        self.noise = noise
        self.config = config or ControlConfig()
        self.decider_needs_image = decider_needs_image
        self.estimator = LinkEstimator()
        self.samples_per_tick = task.n_mw * task.frame_skip
        self._window = max(
            self.samples_per_tick, int(round(self.config.proprio_window_s / task.physics_dt))
        )
        self._noise_rng = np.random.default_rng(0)
        self._events: list[str] = []
        self._clear_episode_state()

    @property
    def n_splits(self) -> int:
        """Valid split points: 0 (all cloud) .. n_blocks (all edge)."""
        return int(self.cost.n_blocks) + 1

    # ------------------------------------------------------------------ episode
    def reset(
        self,
        task_seed: int,
        noise_rng: np.random.Generator,
        link_rng: np.random.Generator,
        policy_rng: np.random.Generator,
    ) -> DeciderObservation:
        """Start an episode with the given task seed and per-purpose random streams."""
        self.task.reset(seed=task_seed)
        self.link.reset(link_rng)
        self.policy.reset(policy_rng)
        self.noise.reset(self.task, noise_rng)
        self._noise_rng = noise_rng
        self.estimator.reset()
        self._clear_episode_state()
        return self.observation()

    def _clear_episode_state(self) -> None:
        """Empty buffer, no requests, zero counters: the state every episode starts from."""
        self.buffer = ChunkBuffer()
        self._pending: list[_Request] = []
        self._seq = 0
        self._installed_seq = -1
        self._m = _Counters()
        self._executed = 0
        self._last_action = np.zeros(4, dtype=np.float32)
        self._last_request_t = -math.inf
        self._last_latency = math.nan
        self._frame: np.ndarray | None = None

    def context(self) -> DeciderContext:
        """The a-priori knowledge a decider may bind to (see :class:`DeciderContext`)."""
        return DeciderContext(
            cost=self.cost,
            link_mean_bandwidth_bps=float(self.link.mean_bandwidth_bps),
            link_mean_rtt_s=float(self.link.mean_rtt_s),
            policy=self.policy,
            tick_dt=self.task.tick_dt,
            policy_input=self._policy_input,
        )

    def _policy_input(self) -> PolicyInput:
        """The policy's input for this tick (what ``infer`` would feed it)."""
        image = self.frame() if self.policy.needs_image else None
        return PolicyInput(image, self.task.proprio_vector(), self.task.instruction, self.task)

    def default_split(self) -> int:
        """The planner's latency-optimal split for the current link estimate."""
        return int(self.cost.best_split(self.estimator.bandwidth_bps, self.estimator.rtt_s))

    def step(self, decision: Decision) -> TickOutcome:
        """Apply ``decision`` and run one control tick."""
        task = self.task
        t = task.sim_time
        self._events = []
        if decision.kind == "infer":
            self._request(decision, t)
        self._deliver(t)
        action = self.buffer.pop()
        stalled = action is None
        if action is None:
            action = self._hold_action()
            self._m.stall_steps += 1
        else:
            self._executed += 1
        self._last_action = np.asarray(action, dtype=np.float32)
        self._frame = None
        try:
            info = task.advance(action)
        except FloatingPointError as exc:
            self._fault(f"sim_diverged: {exc}")
            return TickOutcome(self.observation(), False, False, True, self._tick_info(stalled))
        if task.success and self._m.success_time is None:
            self._m.success_time = task.sim_time
        self._deliver(task.sim_time)
        terminated = bool(info["success"])
        truncated = task.tick >= task.max_ticks and not terminated
        return TickOutcome(
            self.observation(), task.success, terminated, truncated, self._tick_info(stalled)
        )

    def _tick_info(self, stalled: bool) -> dict[str, Any]:
        return {
            "t": self.task.sim_time,
            "stalled": stalled,
            "chunk_remaining": self.buffer.remaining,
            "in_flight": len(self._pending),
            "events": list(self._events),
        }

    # ------------------------------------------------------------------ requests
    def _request(self, decision: Decision, t: float) -> None:
        split = self.default_split() if decision.split is None else decision.split
        if not 0 <= split < self.n_splits:
            raise ValueError(f"split {split} out of range; allowed: 0 .. {self.n_splits - 1}")
        if len(self._pending) >= self.config.max_in_flight:
            self._m.refused_requests += 1
            self._events.append("refused_in_flight")
            return
        if decision.preempt:
            self.buffer.clear()
            self._m.preemptions += 1
            self._events.append("preempt")
            # chunks still on their way were planned before the critical moment: drop them too
            self._installed_seq = max(self._installed_seq, self._seq)
        chunk, fault = self._run_policy(split)
        edge_s = cloud_s = up_s = down_s = 0.0
        transfers: list[TransferResult] = []
        now: float | None = t
        for stage in self.cost.plan(split).stages:
            assert now is not None
            if stage.kind == "edge":
                edge_s += stage.seconds
                now += stage.seconds
            elif stage.kind == "cloud":
                cloud_s += stage.seconds
                now += stage.seconds
            else:
                res = self.link.transfer(int(stage.nbytes), now, stage.kind)
                transfers.append(res)
                self._m.link_timeline.append(res)
                if stage.kind == "up":
                    self._m.bytes_up += int(stage.nbytes)
                else:
                    self._m.bytes_down += int(stage.nbytes)
                if res.arrival is None:
                    now = None
                    break
                if stage.kind == "up":
                    up_s += res.arrival - now
                else:
                    down_s += res.arrival - now
                now = res.arrival
        self._pending.append(
            _Request(
                seq=self._seq,
                tick=self.task.tick,
                t=t,
                split=split,
                executed_at_request=self._executed,
                chunk=chunk,
                fault=fault,
                arrival=now,
                deadline=t + self.config.request_timeout_s,
                edge_s=edge_s,
                cloud_s=cloud_s,
                up_s=up_s,
                down_s=down_s,
                transfers=transfers,
            )
        )
        self._seq += 1
        self._m.inferences += 1
        self._m.splits.append(split)
        if split < self.cost.n_blocks:
            self._m.offloads += 1
        self._last_request_t = t
        self._events.append(f"request:split={split}")

    def _run_policy(self, split: int) -> tuple[np.ndarray | None, str | None]:
        inp = self._policy_input()
        try:
            run_split = getattr(self.policy, "act_split", None)
            if run_split is not None and split < self.cost.n_blocks:
                # An executable model runs through the real split runtime at the matching depth,
                # and the bytes it serialised are counted (fp32 split == unsplit, so the chunk is
                # the same as ``act`` would give).
                chunk, nbytes = run_split(inp, split / self.cost.n_blocks)
                self._m.exec_bytes_up += int(nbytes)
                chunk = np.asarray(chunk, dtype=np.float32)
            else:
                chunk = np.asarray(self.policy.act(inp), dtype=np.float32)
        except Exception as exc:  # a user's model failing must not end the sweep
            return None, f"policy_error: {type(exc).__name__}: {exc}"
        if chunk.ndim != 2 or chunk.shape[1] != 4 or chunk.shape[0] < 1:
            return None, f"policy_bad_shape: {chunk.shape}"
        if not np.all(np.isfinite(chunk)):
            return None, "policy_nonfinite_action"
        return chunk, None

    def _deliver(self, t: float) -> None:
        """Install the chunks that have arrived by ``t``; give up on lost requests.

        Newest request wins: a chunk whose request is older than the chunk already installed, or
        than a preempting request, is dropped on arrival (``superseded_chunks``); it was planned
        from an older observation.
        """
        for req in sorted(self._pending, key=lambda r: (r.arrival is None, r.arrival or 0.0)):
            if req.arrival is not None and req.arrival <= t + _EPS_T:
                self._pending.remove(req)
                for tr in req.transfers:
                    self.estimator.observe(tr)
                latency = req.arrival - req.t
                self._last_latency = latency
                m = self._m
                m.latencies.append(latency)
                m.edge_s.append(req.edge_s)
                m.cloud_s.append(req.cloud_s)
                m.up_s.append(req.up_s)
                m.down_s.append(req.down_s)
                if req.seq < self._installed_seq:
                    m.superseded_chunks += 1
                    self._events.append("superseded")
                    continue
                self._installed_seq = req.seq
                if req.chunk is None:
                    # the fault is recorded; the robot holds position rather than act on garbage
                    self._fault(req.fault or "policy_error")
                    self.buffer.clear()
                    continue
                if self.config.align == "executed":
                    skip = self._executed - req.executed_at_request
                else:
                    skip = self.task.tick - req.tick
                if self.buffer.install(req.chunk, skip) == 0:
                    m.stale_chunks += 1
                self._events.append("arrive")
            elif req.arrival is None and t >= req.deadline - _EPS_T:
                self._pending.remove(req)
                self._m.lost_requests += 1
                self._events.append("lost")
                if any(tr.timed_out for tr in req.transfers):
                    self._events.append("timeout")
                for tr in req.transfers:  # what the sender knows by now (never a later arrival)
                    self.estimator.observe(tr, now=t)

    def _fault(self, what: str) -> None:
        self._m.faults += 1
        if self._m.fault is None:
            self._m.fault = what
        self._events.append(f"fault:{what}")

    def _hold_action(self) -> np.ndarray:
        if self.config.hold_policy == "repeat_last":
            return self._last_action
        return np.array([0.0, 0.0, 0.0, self._last_action[3]], dtype=np.float32)

    # ------------------------------------------------------------------ observations
    def frame(self) -> np.ndarray:
        """This tick's noisy camera frame, rendered at most once per tick."""
        if self._frame is None:
            self._frame = self.noise(self.task.render_image(), self._noise_rng)
        return self._frame

    def observation(self) -> DeciderObservation:
        """What the decider may see now."""
        return DeciderObservation(
            tick=self.task.tick,
            t=self.task.sim_time,
            tick_dt=self.task.tick_dt,
            proprio=self.task.proprio.last(self._window),
            samples_per_tick=self.samples_per_tick,
            chunk_remaining=self.buffer.remaining,
            chunk_size=self.policy.chunk_size,
            in_flight=len(self._pending),
            since_request_s=self.task.sim_time - self._last_request_t,
            last_latency_s=self._last_latency,
            link_bandwidth_bps=self.estimator.bandwidth_bps,
            link_rtt_s=self.estimator.rtt_s,
            n_splits=self.n_splits,
            image=self.frame() if self.decider_needs_image else None,
        )

    # ------------------------------------------------------------------ metrics
    @property
    def latencies_s(self) -> list[float]:
        """Latencies of the chunks delivered so far this episode, in delivery order."""
        return self._m.latencies

    @property
    def bytes_total(self) -> int:
        """Bytes sent up and down so far this episode."""
        return self._m.bytes_up + self._m.bytes_down

    @property
    def link_timeline(self) -> list[dict[str, Any]]:
        """Every transfer of this episode, in request order, as plain dicts.

        Keys: direction, nbytes, start, arrival (None when lost), retransmissions, lost_packets,
        lost, timed_out, wait_s. For plots and records, not for deciders: it holds arrivals that
        are still in the future.
        """
        return [tr.record() for tr in self._m.link_timeline]

    def episode_metrics(self) -> dict[str, Any]:
        """Per-episode metrics (no wall-clock fields): success, latency, bytes, smoothness."""
        m, task = self._m, self.task
        lat_ms = np.asarray(m.latencies) * 1e3
        path = np.asarray(task.ee_trace)
        dt = 1.0 / MW_STEP_HZ

        def mean_ms(xs: list[float]) -> float | None:
            return _finite(float(np.mean(xs)) * 1e3) if xs else None

        return {
            "success": bool(task.success),
            "steps": int(task.tick),
            "sim_time_s": float(task.sim_time),
            "time_to_success_s": m.success_time,
            "inferences": m.inferences,
            "offloads": m.offloads,
            "preemptions": m.preemptions,
            "refused_requests": m.refused_requests,
            "lost_requests": m.lost_requests,
            "stale_chunks": m.stale_chunks,
            "superseded_chunks": m.superseded_chunks,
            "latency_ms_mean": _finite(float(lat_ms.mean())) if lat_ms.size else None,
            "latency_ms_p95": _finite(float(np.percentile(lat_ms, 95))) if lat_ms.size else None,
            "edge_ms_mean": mean_ms(m.edge_s),
            "cloud_ms_mean": mean_ms(m.cloud_s),
            "network_ms_mean": mean_ms([u + d for u, d in zip(m.up_s, m.down_s, strict=True)]),
            "uplink_ms_mean": mean_ms(m.up_s),
            "downlink_ms_mean": mean_ms(m.down_s),
            "split": _mode(m.splits),
            "edge_memory_gb": (
                max(self.cost.edge_memory_bytes(k) for k in set(m.splits)) / 1e9
                if m.splits
                else None
            ),
            "exec_bytes_up": m.exec_bytes_up,
            "bytes_up": m.bytes_up,
            "bytes_down": m.bytes_down,
            "retransmissions": sum(tr.retransmissions for tr in m.link_timeline),
            "lost_transfers": sum(tr.arrival is None for tr in m.link_timeline),
            "stall_steps": m.stall_steps,
            "rms_jerk": _finite(rms_jerk(path, dt)),
            "ldlj": _finite(ldlj(path, dt)),
            "sparc": _finite(sparc(path, dt)),
            "faults": m.faults,
            "fault": m.fault,
        }


def _mode(xs: list[int]) -> int | None:
    """The most frequent value (the smallest among ties), None for an empty list."""
    if not xs:
        return None
    values, counts = np.unique(np.asarray(xs), return_counts=True)
    return int(values[int(np.argmax(counts))])


def _finite(x: float) -> float | None:
    """JSON has no NaN: undefined metrics are recorded as null."""
    return x if math.isfinite(x) else None
