"""The partitioned control loop: one control tick at a time, in virtual time.

Each tick (:meth:`PartitionedController.step`, the page to read first):

1. the decider's decision is applied: ``infer`` runs the policy *now* on the current (noisy)
   observation (:func:`~rapid_env.policy.run_policy`) and the transport times the request
   (:mod:`rapid_env.transport`) ::

       latency = edge part(k) + uplink(bytes_k) + cloud part(k) + downlink(chunk) [+ queueing]

   (``preempt`` first drops the rest of the cached chunk and every chunk still in flight);
2. chunks whose arrival time has come are installed, aligned to now (:mod:`rapid_env.delivery`);
3. the robot executes the next cached action, or holds when the chunk has run out (a stall);
4. physics advances one tick, proprioception is sampled at every substep;
5. chunks that arrived during the tick are installed, and the next decider observation is built.

A chunk with latency L takes effect at the first tick at or after L. Nothing waits on the wall
clock: a simulated transport's records depend only on the seed and the configuration; a remote one
(:class:`~rapid_env.transport.RemotePolicyTransport`) maps measured seconds to virtual ones. The
recorder counts, the camera renders (:mod:`rapid_env.recorder`, :mod:`rapid_env.camera`). The
task is anything that implements the :class:`~rapid_env.task.Task` protocol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from rapid_env.camera import NoisyCamera
from rapid_env.chunks import ChunkBuffer
from rapid_env.config import ACTION_CONTRACTS, ActionContract, Align, ControlConfig, HoldPolicy
from rapid_env.decision import DeciderContext, DeciderObservation, Decision
from rapid_env.delivery import InFlight, Outcome, Request
from rapid_env.link import Link, LinkEstimator
from rapid_env.noise import ImageNoise
from rapid_env.policy import Policy, PolicyInput, PolicyResult, run_policy
from rapid_env.record import NONFINITE_FIRST, infrastructure_fault, is_nonfinite
from rapid_env.recorder import EpisodeRecorder, TickDelta, tick_jerk
from rapid_env.task import Task
from rapid_env.transport import (
    PENDING,
    CostPlanner,
    DeferredTransport,
    RemotePolicyTransport,
    SimulatedTransport,
    TimedRequest,
    Transport,
    early_exit,
)

__all__ = [
    "Align", "ControlConfig", "CostPlanner", "HoldPolicy", "PartitionedController",
    "PlacementOption", "TickOutcome",
]


@dataclass(frozen=True)
class PlacementOption:
    """A second way to place the model that a request naming no split may take instead.

    With ``EnvConfig.placement="best"`` the controller's own planner is the ``edge-prefix`` one
    and this holds the ``edge-suffix`` one: per request, the cheaper of the two in closed form
    on the link estimate runs (:meth:`PartitionedController.route`).

    Attributes:
        cost: the planner of this placement (its plans carry their placement).
        partition: its fixed split (the budget's deepest), or None for its best split per
            request.
    """

    cost: CostPlanner
    partition: int | None = None


@dataclass(frozen=True)
class TickOutcome:
    """What one tick produced: the next observation, the episode's state and the tick's deltas."""

    obs: DeciderObservation
    success: bool
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    delta: TickDelta = TickDelta()


class PartitionedController:
    """Runs a policy through a transport (cost model and link) inside a task, tick by tick."""

    def __init__(
        self,
        task: Task,
        policy: Policy,
        cost: CostPlanner,
        link: Link,
        noise: ImageNoise,
        config: ControlConfig | None = None,
        decider_needs_image: bool = False,
        transport: Transport | RemotePolicyTransport | None = None,
        partition: int | None = None,
        alternative: PlacementOption | None = None,
        action_contract: ActionContract = "chunk",
    ) -> None:
        for part in (partition, None if alternative is None else alternative.partition):
            if part is not None and not 0 <= part <= cost.n_blocks:
                raise ValueError(f"partition {part} out of range; allowed: 0 .. {cost.n_blocks}")
        if action_contract not in ACTION_CONTRACTS:
            raise ValueError(
                f"action_contract={action_contract!r}; allowed: {', '.join(ACTION_CONTRACTS)}"
            )
        if alternative is not None and (
            alternative.cost.n_blocks != cost.n_blocks or transport is not None
        ):
            raise ValueError(
                "an alternative placement needs the same blocks and the simulated transport; "
                "allowed: placement 'edge-prefix' or 'edge-suffix' with a remote transport"
            )
        self.partition = partition
        self.alternative = alternative
        self.action_contract = action_contract
        self.task = task
        self.policy = policy
        self.cost = cost
        self.link = link
        self.config = config or ControlConfig()
        self.decider_needs_image = decider_needs_image
        self.transport: Transport | RemotePolicyTransport | DeferredTransport = (
            transport or SimulatedTransport(cost, link)
        )
        self._alt_transport = (
            None if alternative is None else SimulatedTransport(alternative.cost, link)
        )
        self.camera = NoisyCamera(task, noise)
        self.estimator = LinkEstimator()
        self.samples_per_tick = task.samples_per_tick
        self._window = max(
            self.samples_per_tick, int(round(self.config.proprio_window_s / task.physics_dt))
        )
        self._events: list[str] = []
        self._clear_episode_state()

    @property
    def n_splits(self) -> int:
        """Valid split points: 0 (all cloud) .. n_blocks (all edge)."""
        return int(self.cost.n_blocks) + 1

    @property
    def chunk_size(self) -> int:
        """Actions one request delivers: the policy's chunk, or 1 under ``single``."""
        return 1 if self.action_contract == "single" else int(self.policy.chunk_size)

    @property
    def noise(self) -> ImageNoise:
        """The visual-noise scenario applied to the policy's camera."""
        return self.camera.noise

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
        self.camera.reset(noise_rng)
        self.estimator.reset()
        self._clear_episode_state()
        return self.observation()

    def _clear_episode_state(self) -> None:
        """Empty buffer, no requests, zero counters: the state every episode starts from."""
        self.buffer = ChunkBuffer()
        self.in_flight = InFlight(self.buffer, self.estimator, self.config.align)
        self.recorder = EpisodeRecorder()
        self._executed = 0
        self._last_action = np.zeros(self.task.action_space.shape, dtype=np.float32)
        self._last_request_t = -math.inf
        self._last_latency = math.nan
        self.invalid: str | None = None
        self._finite_chunk = False
        self.camera.next_tick()

    def step(self, decision: Decision) -> TickOutcome:
        """Apply ``decision`` and run one control tick (the module docstring's five steps)."""
        self.send(decision)
        return self.run_tick()

    def send(self, decision: Decision) -> None:
        """Step 1 alone: apply ``decision`` (send its request, if any) at the tick's start.

        A fleet (:mod:`rapid_env.fleet`) sends every robot's request before any robot's tick
        runs, so that its shared cloud sees all of them; :meth:`step` is this then
        :meth:`run_tick`.
        """
        self._events = []
        self.recorder.begin_tick()
        if decision.kind == "infer":
            self._request(decision, self.task.sim_time)

    def run_tick(self) -> TickOutcome:
        """Steps 2-5 of the tick whose decision :meth:`send` applied."""
        task, rec = self.task, self.recorder
        t = task.sim_time
        self._deliver(t)
        action = self.buffer.pop()
        stalled = action is None
        if action is None:
            action = self._hold_action()
            rec.count("stall_steps")
        else:
            self._executed += 1
            if np.any(np.abs(action) > 1.0):  # the task clips to [-1, 1]; say that it had to
                rec.count("clipped_actions")
        self._last_action = np.asarray(action, dtype=np.float32)
        self.camera.next_tick()
        try:
            info = task.advance(action)
        except FloatingPointError as exc:
            self._fault(f"sim_diverged: {exc}")
            delta = rec.tick_delta(0.0, stalled)
            return TickOutcome(self.observation(), False, False, True, self._info(stalled), delta)
        if task.success:
            rec.success(task.sim_time)
        self._deliver(task.sim_time)
        terminated = bool(info["success"])
        truncated = task.tick >= task.max_ticks and not terminated
        delta = rec.tick_delta(tick_jerk(task), stalled)
        return TickOutcome(
            self.observation(), task.success, terminated, truncated, self._info(stalled), delta
        )

    def _info(self, stalled: bool) -> dict[str, Any]:
        return {
            "t": self.task.sim_time,
            "stalled": stalled,
            "chunk_remaining": self.buffer.remaining,
            "in_flight": len(self.in_flight),
            "events": list(self._events),
        }

    # ------------------------------------------------------------------ requests
    def default_split(self) -> int:
        """The fixed partition if one is set, else the planner's split for the link estimate."""
        if self.partition is not None:
            return self.partition
        return int(self.cost.best_split(self.estimator.bandwidth_bps, self.estimator.rtt_s))

    def route(self, decision: Decision) -> tuple[CostPlanner, int]:
        """The planner (placement) and split a request runs with.

        A named split runs on the controller's own placement. A request that names no split
        takes :meth:`default_split`; with an alternative placement (``placement="best"``) and
        an escalated request, it takes whichever of the two candidates -- each at its fixed
        partition, or its best split for the link estimate -- has the lower closed-form latency
        on the estimator's bandwidth and RTT (ties: the controller's own). An early exit stays
        on the controller's own placement: only an edge holding the model's front can answer.
        """
        if decision.split is not None:
            return self.cost, decision.split
        own = self.default_split()
        alt = self.alternative
        if alt is None or not decision.escalate:
            return self.cost, own
        bw, rtt = self.estimator.bandwidth_bps, self.estimator.rtt_s
        other = alt.partition if alt.partition is not None else int(alt.cost.best_split(bw, rtt))
        if alt.cost.plan(other).latency_s(bw, rtt) < self.cost.plan(own).latency_s(bw, rtt):
            return alt.cost, other
        return self.cost, own

    def _request(self, decision: Decision, t: float) -> None:
        """Run the policy now and send its request, unless the in-flight limit refuses it."""
        cost, split = self.route(decision)
        if not 0 <= split < self.n_splits:
            raise ValueError(f"split {split} out of range; allowed: 0 .. {self.n_splits - 1}")
        if len(self.in_flight) >= self.config.max_in_flight:
            self.recorder.count("refused_requests")
            self._events.append("refused_in_flight")
            return
        if decision.preempt:
            self.buffer.clear()
            self.in_flight.supersede_all()
            self.recorder.count("preemptions")
            self._events.append("preempt")
        inp = self._policy_input()
        n = self.cost.n_blocks
        suffix = 0 < split < n and cost.plan(split).placement == "edge-suffix"
        if not decision.escalate:  # early exit: the edge's part and its exit head, nothing sent
            timed = early_exit(cost, split, t)  # raises under edge-suffix: no front on the edge
            result = run_policy(self.policy, inp, n, n, self.action_dim)
            self.recorder.count("early_exits")
        elif isinstance(self.transport, RemotePolicyTransport):  # it runs the cloud half itself
            result, timed = self.transport.request(self.policy, inp, split, t)
        elif isinstance(self.transport, DeferredTransport):  # a shared cloud times it later
            result = run_policy(
                self.policy, inp, n - split if suffix else split, n, self.action_dim
            )
            timed = PENDING
        else:
            # an executable model is cut at the same boundary: n - split blocks before it when
            # the edge holds the tail (same chunk, same boundary bytes)
            result = run_policy(
                self.policy, inp, n - split if suffix else split, n, self.action_dim
            )
            transport = self.transport if cost is self.cost else self._alt_transport
            assert transport is not None and not isinstance(transport, RemotePolicyTransport)
            timed = transport.send(split, t)
        if result.measured_rtt_s is not None and not timed.pending:  # a policy served elsewhere
            timed = replace(timed, measured_rtt_s=result.measured_rtt_s, server_s=result.server_s)
        chunk = result.chunk
        if chunk is not None and self.action_contract == "single":
            chunk = chunk[:1]  # one action per call: the robot executes the first only
        seq = self.in_flight.next_seq
        self.in_flight.add(Request(
            seq=seq, tick=self.task.tick, t=t,
            executed_at_request=self._executed, chunk=chunk, fault=result.fault,
            timed=timed, deadline=t + self.config.request_timeout_s,
        ))
        if timed.pending:
            assert isinstance(self.transport, DeferredTransport)
            self.transport.submit(cost, split, t, partial(self._timed, self.in_flight, seq))
        offload = decision.escalate and split < n
        self.recorder.request(split, offload, timed, result.exec_bytes, suffix=suffix)
        self._classify(result, timed)
        self._last_request_t = t
        self._events.append(f"request:split={split}")
        if timed.fault is not None:  # lost on the way: one fault now, a loss at its deadline
            self._fault(timed.fault)

    def _timed(self, in_flight: InFlight, seq: int, timed: TimedRequest) -> None:
        """A deferred request's timing is known: it can be delivered, and its bytes count.

        ``in_flight`` is the episode's that sent it: a timing that comes back after a reset
        belongs to no request of the new episode.
        """
        if in_flight is self.in_flight and in_flight.resolve(seq, timed):
            self.recorder.sent(timed)

    def use_transport(self, transport: DeferredTransport) -> None:
        """Time every escalated request with ``transport`` (a fleet's, for both placements)."""
        if isinstance(self.transport, RemotePolicyTransport):
            raise ValueError("a controller on a remote transport cannot join a fleet")
        self.transport = transport

    def _deliver(self, t: float) -> None:
        """Hand arrivals and losses up to ``t`` to the buffer, the recorder and the events."""
        for out in self.in_flight.deliver(t, self._executed, self.task.tick):
            self._record_outcome(out)

    def _record_outcome(self, out: Outcome) -> None:
        rec = self.recorder
        if out.result == "lost":
            rec.count("lost_requests")
            self._events.append("lost")
            if out.timed_out:
                self._events.append("timeout")
            return
        assert out.latency is not None
        self._last_latency = out.latency
        rec.delivered(out.latency, out.request.timed)
        if out.result == "superseded":
            rec.count("superseded_chunks")
            self._events.append("superseded")
        elif out.result == "fault":
            self._fault(out.request.fault or "policy_error")
        else:
            if out.result == "stale":
                rec.count("stale_chunks")
            self._events.append("arrive")

    def _classify(self, result: PolicyResult, timed: TimedRequest) -> None:
        """Mark the episode invalid at its first infrastructure fault (:mod:`rapid_env.record`).

        Decided when the request is made, where the policy's output is known: a non-finite chunk
        before any finite one is a broken checkpoint, not the policy's behaviour, and a remote
        error of the infrastructure (the server gone, the harness's deadline) says nothing about
        the decider. Every other fault stays data (``faults``), and the episode valid.
        """
        if result.chunk is not None:
            self._finite_chunk = True
        if self.invalid is not None:
            return
        fault = result.fault or timed.fault
        if fault is None:
            return
        if is_nonfinite(fault) and not self._finite_chunk:
            self.invalid = f"{NONFINITE_FIRST}: {fault}"
        elif infrastructure_fault(fault):
            self.invalid = fault

    def _fault(self, what: str) -> None:
        self.recorder.record_fault(what)
        self._events.append(f"fault:{what}")

    def _hold_action(self) -> np.ndarray:
        """The action while the chunk has run out: no motion, the gripper (last) as it was."""
        if self.config.hold_policy == "repeat_last":
            return self._last_action
        hold = np.zeros_like(self._last_action)
        hold[-1] = self._last_action[-1]
        return hold

    # ------------------------------------------------------------------ observations
    def frame(self) -> np.ndarray:
        """This tick's noisy camera frame, rendered at most once per tick."""
        return self.camera.frame()

    @property
    def action_dim(self) -> int:
        """The task's action width: a chunk of another width is a policy fault."""
        return int(self.task.action_space.shape[0])

    def _policy_input(self) -> PolicyInput:
        """The policy's input for this tick (what ``infer`` would feed it)."""
        return self.camera.policy_input(self.policy)

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

    def observation(self) -> DeciderObservation:
        """What the decider may see now."""
        return DeciderObservation(
            tick=self.task.tick,
            t=self.task.sim_time,
            tick_dt=self.task.tick_dt,
            proprio=self.task.proprio.last(self._window),
            samples_per_tick=self.samples_per_tick,
            chunk_remaining=self.buffer.remaining,
            chunk_size=self.chunk_size,
            in_flight=len(self.in_flight),
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
        return self.recorder.series.latency

    @property
    def link_timeline(self) -> list[dict[str, Any]]:
        """Every transfer of this episode, in request order, as plain dicts.

        Keys: direction, nbytes, start, arrival (None when lost), retransmissions, lost_packets,
        lost, timed_out, wait_s. For plots and records, not for deciders: it holds arrivals that
        are still in the future.
        """
        return [tr.record() for tr in self.recorder.timeline]

    def episode_metrics(self) -> dict[str, Any]:
        """Per-episode metrics (no wall-clock fields): success, latency, bytes, smoothness.

        The recorder's, with ``invalid`` after ``fault`` (the controller classifies the faults)
        and ``latency_timing`` after ``server_ms_mean`` (the controller knows its transport).
        """
        out: dict[str, Any] = {}
        suffix_cost = self.cost if self.alternative is None else self.alternative.cost
        metrics = self.recorder.episode_metrics(self.task, self.cost, suffix_cost)
        for key, value in metrics.items():
            out[key] = value
            if key == "fault":
                out["invalid"] = self.invalid
            elif key == "server_ms_mean":  # a remote transport's requests took measured time
                remote = isinstance(self.transport, RemotePolicyTransport)
                out["latency_timing"] = "measured" if remote else "profile"
        return out
