"""What a partition decider sees and what it answers, once per control tick.

A decider is the thing under study: it chooses *when* to run the VLA (and where to split it), from
what a robot could know at that moment: its own proprioception, the state of its action-chunk
buffer, and an estimate of the link built from transfers already completed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from rapid_env.proprio import ProprioWindow

if TYPE_CHECKING:
    from rapid_env.transport import CostPlanner

DecisionKind = Literal["keep", "infer"]


@dataclass(frozen=True)
class Decision:
    """A decider's answer for one tick.

    Attributes:
        kind: ``keep`` (execute the next cached action) or ``infer`` (run the VLA now).
        split: block index where the model is split (blocks before it run on the edge); None lets
            the controller use its default split (the planner's choice for the link estimate).
        preempt: drop the rest of the cached chunk now (only with ``infer``).
        escalate: False makes the request an *early exit*: the edge runs its part of the model
            (blocks ``[0, split)``) and its exit head supplies the chunk; nothing is sent. This is
            how an escalating (vision-triggered) scheme answers when its signal is low; only an
            escalated request continues to the cloud. Only with ``infer``; see docs/paper.md.
    """

    kind: DecisionKind = "keep"
    split: int | None = None
    preempt: bool = False
    escalate: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("keep", "infer"):
            raise ValueError(f"decision kind {self.kind!r}; allowed: keep, infer")
        if self.kind == "keep" and self.preempt:
            raise ValueError("preempt needs kind='infer'")
        if self.kind == "keep" and not self.escalate:
            raise ValueError("escalate=False (an early exit) needs kind='infer'")


KEEP = Decision("keep")


@dataclass(frozen=True)
class DeciderObservation:
    """Everything a decider may read at a tick.

    Attributes:
        tick: control ticks since reset.
        t: simulated seconds since reset.
        tick_dt: seconds per control tick.
        proprio: per-substep joint samples over the recent window (oldest first).
        samples_per_tick: physics substeps per control tick (how many of ``proprio``'s samples
            are new since the last tick).
        chunk_remaining: cached actions not yet executed.
        chunk_size: the policy's chunk length.
        in_flight: requests sent whose chunk has not arrived yet.
        since_request_s: seconds since the last request (inf before the first).
        last_latency_s: latency of the last chunk that arrived (nan before the first).
        link_bandwidth_bps: estimated link bandwidth (from completed transfers only).
        link_rtt_s: estimated round-trip time.
        n_splits: number of valid split points (0 .. n_splits - 1).
        image: the noisy frame of this tick, only for deciders that declare ``needs_image``.
    """

    tick: int
    t: float
    tick_dt: float
    proprio: ProprioWindow
    samples_per_tick: int
    chunk_remaining: int
    chunk_size: int
    in_flight: int
    since_request_s: float
    last_latency_s: float
    link_bandwidth_bps: float
    link_rtt_s: float
    n_splits: int
    image: np.ndarray | None = None


@dataclass(frozen=True)
class DeciderContext:
    """What a decider may know before an episode starts, handed to its ``bind``.

    This is the a-priori knowledge a deployed system has: the model's cost planner (profiled
    offline, as Neurosurgeon does), the link's *nominal* mean bandwidth and RTT (what a
    static planner is configured with; the live estimate is in each observation), and the policy
    (for deciders that query its uncertainty; they must charge that model pass to
    :attr:`Decider.model_overhead_s`).

    Attributes:
        cost: the split planner (``n_blocks``, ``plan(k)``, ``best_split(bw, rtt)``).
        link_mean_bandwidth_bps: the link's nominal mean bandwidth (inf for an ideal link).
        link_mean_rtt_s: the link's nominal mean round-trip time.
        policy: the robot policy being driven.
        tick_dt: seconds per control tick.
        policy_input: builds the policy's input for the current tick (noisy frame, end-effector
            state, instruction), for deciders that query the policy's own uncertainty.
    """

    cost: CostPlanner
    link_mean_bandwidth_bps: float
    link_mean_rtt_s: float
    policy: Any
    tick_dt: float
    policy_input: Callable[[], Any] | None = None


@runtime_checkable
class Decider(Protocol):
    """Chooses, every tick, whether to keep executing or to run the VLA (and where to split).

    Every hook the episode loop calls is part of the protocol, so a decider says in one place
    what it takes part in; :class:`DeciderBase` gives the optional ones their defaults.

    Attributes:
        name: what records call it (the spec as given, e.g. ``rapid(high_threshold=6)``).
        needs_image: whether it reads ``DeciderObservation.image`` (frames are rendered for it).
        model_overhead_s: modelled edge seconds of model passes it ran this episode for its own
            signal (e.g. the policy's action uncertainty); 0 for deciders that only read
            proprioception. The runner reports it as ``decision_model_ms``.
    """

    name: str
    needs_image: bool
    model_overhead_s: float

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode; all randomness comes from ``rng``."""
        ...

    def bind(self, context: DeciderContext) -> None:
        """Take the episode's a-priori context (called after ``reset``, before the first tick)."""
        ...

    def decide(self, obs: DeciderObservation) -> Decision:
        """Return this tick's decision."""
        ...


class DeciderBase:
    """Defaults for a :class:`Decider`'s optional parts; subclass it and write ``decide``.

    A decider that needs nothing before the episode, reads no image and runs no model pass of
    its own overrides only ``name``, ``reset`` and ``decide``.
    """

    name: str = "decider"
    needs_image: bool = False
    model_overhead_s: float = 0.0

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode; nothing to draw by default."""

    def bind(self, context: DeciderContext) -> None:
        """Ignore the episode's context (deciders that plan from the link or cost override it)."""

    def decide(self, obs: DeciderObservation) -> Decision:
        """Return this tick's decision (every decider writes its own)."""
        raise NotImplementedError(f"{type(self).__name__}.decide")
