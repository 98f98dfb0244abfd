"""The redundancy oracle: would a fresh plan at this tick have changed what the robot does?

RAPID's claim (Table II of the paper) is that most control steps are *redundant*, and that its
kinematic trigger fires on the ones that are not. This module measures both in our harness.

Opt-in, wired like :mod:`rapid_env.trace`: :func:`rapid_env.episode.run_episode` takes
``oracle=RedundancyOracle()`` and then calls :meth:`RedundancyOracle.begin` once after the reset,
:meth:`RedundancyOracle.observe` once per tick *after the decider decided and before the
controller applies the decision*, and :meth:`RedundancyOracle.fields` once at the end, whose
fields are added to the episode record. Without an oracle the loop pays one ``is None`` test per
tick.

**The shadow pass.** At every tick the policy is run on the tick's input (the frame the policy
would see, proprioception, the instruction) as if a request were sent, but its chunk is never
executed, nothing is counted in the recorder, nothing goes over the transport and no latency is
charged. It leaves the episode as it found it:

* the frame is taken with :meth:`~rapid_env.camera.NoisyCamera.peek`, which consumes no noise
  draw (a frame already rendered this tick is shared, otherwise the draws are put back);
* the policy's random state is saved before and restored after the call: every attribute of
  the policy that is a random generator (numpy ``Generator`` / ``RandomState``, Python
  ``random.Random``, anything with ``get_state``/``set_state`` such as the ``torch.Generator``
  the VLA families draw the flow family's noise from), and torch's global generator when torch
  is loaded (the HF adapter seeds that one). A policy that keeps *other* state between calls (an
  action history) cannot be shadowed this way; the protocol's "all randomness comes from
  ``rng``" and a stateless ``act`` are what the oracle assumes;
* the physics are untouched: only the scripted expert reads the simulator, and its look-ahead
  restores the integration state (``mj_setState``) and Meta-World's previous observation; its
  closing ``mj_forward`` still moves the solver's warm start by ~1e-12, so the oracle saves and
  puts back the task's state (``Task.get_state``/``set_state``; MuJoCo's integration state for
  Meta-World) around the shadow pass itself (:func:`physics_kept`).

The test ``tests/rapid_env/test_oracle.py`` checks that records are identical with and without
the oracle, apart from the new fields, for the expert and for ``chunk-regress`` under noise.

**Redundant.** A tick is redundant at tolerance ``tol`` when the shadow chunk's first action
differs from the action the robot is about to execute by less than ``tol``:

* the action about to be executed is the chunk buffer's next action. (Every chunk that had
  arrived by now was installed at the end of the previous tick, so this is what the robot
  executes if the decider keeps.)
* the distance is the max-abs difference over all the action's components (Meta-World's four,
  LIBERO's seven; ``norm="max"``, ``components=None``). Each component lives in [-1, 1] in the same
  units (a fraction of the largest command), so ``tol`` is a per-component bound: "no command
  changes by ``tol`` or more". The gripper is included because the moment to close or open it is
  exactly where a fresh plan matters (pick-place). ``norm="l2"`` and a subset of components (e.g.
  ``(0, 1, 2)``, translation only) are parameters.
* a tick whose buffer is empty (the robot holds, a *stall*, and every episode's first tick) is
  **non-redundant by definition** (``empty="non_redundant"``): there is no plan to agree with,
  and a fresh one is what the robot needs. ``empty="compare_hold"`` compares with the hold
  action instead.
* a shadow pass that faults (:func:`~rapid_env.policy.run_policy`) makes the tick non-redundant
  and is counted in ``oracle_shadow_faults``.

The default tolerances 0.05, 0.1 and 0.2 are 5, 10 and 20 % of a component's full range; in
translation 0.1 is 1 mm of hand motion per Meta-World step, 4 mm per 20 Hz tick.

**A request** is a tick on which the decider returned ``infer`` (including the refill rule's
requests and requests the in-flight limit then refused: this is the decider's choice, not the
link's). Since every decider carries the same refill rule (keep the robot fed), the oracle can
also score only the ticks on which that rule was *not* due (``refill_due``, a predicate over the
decider observation, given by the caller: the core does not import the agents' rule): that asks
whether the decider's own trigger fires where a fresh plan matters.

**Record fields** (``<tol>`` is ``format(tol, "g")``, e.g. ``0.05``); ratios are None when their
denominator is 0:

========================================  =====================================================
``redundant_share_<tol>``                 redundant ticks / ticks
``trigger_precision_<tol>``               requests on non-redundant ticks / requests
``trigger_recall_<tol>``                  non-redundant ticks with a request / non-redundant
                                          ticks
``trigger_precision_beyond_refill_<tol>``  the same two, over the ticks on which the refill rule
``trigger_recall_beyond_refill_<tol>``     was not due (only with ``refill_due``)
``oracle_ticks``, ``oracle_requests``     ticks and requests of the episode
``oracle_empty_ticks``                    ticks with an empty buffer (non-redundant by the rule)
``oracle_nonredundant_<tol>``,            counts behind the ratios, so a summary can pool them
``oracle_hits_<tol>``                     over episodes (hits: requests on non-redundant ticks)
``oracle_diff_median``                    median distance over the ticks with a cached action
``oracle_shadow_faults``                  shadow passes that faulted
``oracle_refill_due_ticks``,              with ``refill_due``: ticks where the rule was due, and
``oracle_beyond_refill_requests``         requests on the other ticks
``oracle_beyond_refill_nonredundant_<tol>``, the counts behind the beyond-refill ratios (pooled
``oracle_beyond_refill_hits_<tol>``       by ``rapid-paper``)
========================================  =====================================================

**Fair scores.** The table above scores every tick, and that is unfair to a trigger in three
ways. A stall (an empty buffer) is non-redundant by definition, so the redundant share of all
ticks is capped by the stall share, which is a property of the link and the refill rule, not of
the policy; the paper asks how often a fresh plan would change a *cached* action. Precision
against chance over all ticks compares a trigger with requests that could also land on stalls
and on ticks with a request already in flight, where a trigger cannot usefully fire. And
tick-level recall asks a trigger that fires once per cooldown to fire on every non-redundant
tick. So the oracle also records:

* **cached** ticks (a cached action; the others are ``oracle_empty_ticks``, stalls) and the
  redundant share over them;
* **eligible** ticks: a cached action and no request in flight (``in_flight == 0`` in the
  decider's observation), where a request is the only way to change the plan. Precision on them
  is set beside *chance on them*: the share of non-redundant eligible ticks, which is what
  requests on random eligible ticks would score;
* **divergence events**: maximal runs of consecutive non-redundant eligible ticks. An event is
  *caught* when the decider asked within its first ``event_window`` ticks (default 3), and the
  lead time is the ticks from its start to that request (0: on the first tick). Why 3: a
  kinematic trigger sees a change only once the arm's motion shows it, a tick or two after the
  plan would have changed; three ticks (150 ms at 20 Hz) is well inside a chunk of 8, so a
  request that late still replaces most of the stale chunk, and a longer window would credit
  the refill rule's requests at the chunk's end. Events caught by the decider's *own* requests
  only (not the refill rule's) are counted apart;
* **the noise floor**: at every cached tick a second shadow pass draws from the oracle's own
  generator (:func:`floor_rng`: seeded from a digest of the policy's random state just after
  the episode's reset, so a function of the episode's seed, independent of the policy's draws;
  it reseeds the policy through its ``reset`` inside :func:`policy_rng_kept`, so the policy's
  state is put back and records stay identical). The distance between the two fresh first
  actions is the sampling spread; its median is ``oracle_noise_floor``, 0 for a deterministic
  policy (the expert, ``chunk-regress``). A deterministic policy still moves between ticks:
  ``oracle_drift_median`` is the median distance of a fresh plan from the previous tick's fresh
  plan for this tick (its second action), a plan against itself one tick later. The per-tick
  values are listed so that summaries pool the medians exactly;
* **own requests** (with ``refill_due``): requests on ticks where the refill rule was not due;
  how many fired 1 to ``stall_window`` ticks after the last stalled tick, and how many
  preempted a cached chunk that arrived 1 to ``fresh_window`` ticks before (from the
  controller's ``arrive`` events, read in the observer's ``on_tick``).

========================================  =====================================================
``oracle_cached_ticks``                   ticks with a cached action
``oracle_eligible_ticks``,                eligible ticks, and requests on them
``oracle_eligible_requests``
``oracle_redundant_cached_<tol>``,        redundant cached ticks; / cached ticks
``redundant_share_of_cached_<tol>``
``oracle_eligible_nonredundant_<tol>``,   non-redundant eligible ticks; requests on them
``oracle_eligible_hits_<tol>``
``trigger_precision_eligible_<tol>``      eligible hits / eligible requests
``trigger_chance_eligible_<tol>``         non-redundant eligible ticks / eligible ticks
``oracle_events_<tol>``,                  divergence events, those caught, and the summed lead
``oracle_events_caught_<tol>``,           ticks of the caught ones
``oracle_event_lead_ticks_<tol>``
``trigger_event_recall_<tol>``,           caught / events; mean lead ticks over caught events
``trigger_event_lead_ticks_<tol>``
``oracle_events_caught_own_<tol>``        events caught by an own request (with ``refill_due``)
``oracle_event_window``                   the window the events were scored with
``oracle_noise_floor``,                   median sampling spread, and the per-tick values
``oracle_noise_spreads``
``oracle_drift_median``, ``oracle_drifts``  median one-tick drift, and the per-tick values
``oracle_own_requests``,                  own requests (the same count as
``oracle_own_after_stall``,               ``oracle_beyond_refill_requests``), those after a
``oracle_own_preempt_fresh``              stall, those preempting a fresh chunk
========================================  =====================================================
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rapid_env.observer import ObserverBase
from rapid_env.policy import run_policy
from rapid_env.record_metrics import (
    ratio,
    redundant_share,
    trigger_precision,
    trigger_recall,
)

if TYPE_CHECKING:
    from rapid_env.controller import PartitionedController, TickOutcome
    from rapid_env.decision import Decider, DeciderObservation, Decision
    from rapid_env.task import Task

__all__ = [
    "DEFAULT_EVENT_WINDOW", "DEFAULT_FRESH_WINDOW", "DEFAULT_STALL_WINDOW", "DEFAULT_TOLERANCES",
    "OracleTick", "RedundancyOracle", "action_distance", "divergence_events", "first_request",
    "floor_rng", "physics_kept", "policy_rng_kept", "precision_recall", "tol_name",
]

DEFAULT_TOLERANCES = (0.05, 0.1, 0.2)
"""Tolerances in action units (each action component lives in [-1, 1])."""
DEFAULT_EVENT_WINDOW = 3
"""Ticks from a divergence event's start within which a request catches it (module docstring)."""
DEFAULT_STALL_WINDOW = 2
"""Ticks after the last stalled tick within which an own request "follows a stall"."""
DEFAULT_FRESH_WINDOW = 2
"""Ticks after an arrival within which a preempting own request "preempts a fresh chunk"."""

Norm = Literal["max", "l2"]
EmptyRule = Literal["non_redundant", "compare_hold"]


def tol_name(tol: float) -> str:
    """The tolerance as it appears in field names: ``0.05``, ``0.1``, ``0.2``."""
    return format(float(tol), "g")


def action_distance(
    a: np.ndarray, b: np.ndarray, norm: Norm = "max", components: Sequence[int] | None = None
) -> float:
    """Distance between two actions over ``components`` (all when None): max-abs or L2."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, np.float64)
    if components is not None:
        d = d[list(components)]
    if norm == "max":
        return float(np.max(np.abs(d)))
    if norm == "l2":
        return float(np.linalg.norm(d))
    raise ValueError(f"norm {norm!r}; allowed: max, l2")


def precision_recall(
    nonredundant: Sequence[bool], requested: Sequence[bool]
) -> tuple[float | None, float | None]:
    """(precision, recall) of ``requested`` against ``nonredundant``, tick by tick.

    precision = requests on non-redundant ticks / requests; recall = non-redundant ticks with a
    request / non-redundant ticks. None where the denominator is 0.
    """
    if len(nonredundant) != len(requested):
        raise ValueError(f"{len(nonredundant)} ticks vs {len(requested)} decisions")
    hits = sum(bool(n) and bool(r) for n, r in zip(nonredundant, requested, strict=True))
    n_req = sum(bool(r) for r in requested)
    n_nr = sum(bool(n) for n in nonredundant)
    return trigger_precision(hits, n_req), trigger_recall(hits, n_nr)


@dataclass(frozen=True)
class OracleTick:
    """One tick as the oracle saw it.

    Attributes:
        tick: the tick index.
        distance: distance of the shadow chunk's first action from the action about to be
            executed; None when the buffer was empty (under ``empty="non_redundant"``) or the
            shadow pass faulted.
        empty: the buffer was empty (the robot was about to hold).
        requested: the decider returned ``infer``.
        refill_due: the refill rule was due (None without a ``refill_due`` predicate).
        fault: the shadow pass's fault, else None.
        in_flight: requests in flight when the decider decided (it waits for a chunk).
        spread: distance between the shadow chunk's first action and a second shadow chunk's,
            drawn at the same tick from the oracle's own seeded stream (the sampling noise
            floor); None where either pass did not run or faulted.
        drift: distance between the shadow chunk's first action and the previous tick's shadow
            chunk's second action (a plan against itself one tick later); None where the
            previous tick had no shadow chunk.
        preempt: the decision asked to preempt the cached chunk.
        after_stall: ticks since the last stall run ended (None before the first stall, or on
            a stalled tick's successor chain that has not ended yet).
        since_arrival: ticks since the last tick on which a chunk arrived (None before the
            first arrival).
    """

    tick: int
    distance: float | None
    empty: bool
    requested: bool
    refill_due: bool | None = None
    fault: str | None = None
    in_flight: int = 0
    spread: float | None = None
    drift: float | None = None
    preempt: bool = False
    after_stall: int | None = None
    since_arrival: int | None = None

    @property
    def eligible(self) -> bool:
        """A tick on which asking could change the plan: a cached action, nothing in flight."""
        return not self.empty and self.in_flight == 0

    def redundant(self, tol: float) -> bool:
        """Whether the tick is redundant at ``tol`` (distance strictly below it)."""
        return self.distance is not None and self.distance < tol


class RedundancyOracle(ObserverBase):
    """Runs the policy in a shadow pass at every tick and scores the decider's requests.

    An :class:`~rapid_env.observer.EpisodeObserver`: its hooks are :meth:`begin`,
    :meth:`observe`, :meth:`after_tick` and :meth:`fields`.

    Args:
        tolerances: in action units, each > 0.
        norm: ``max`` (max-abs difference, default) or ``l2``.
        components: which of the action's components count (default all: Meta-World's four,
            LIBERO's seven).
        empty: a tick with an empty buffer is ``non_redundant`` (default) or compared with the
            hold action (``compare_hold``).
        refill_due: optional predicate over the decider observation: the refill rule every
            decider shares (:func:`rapid_env.agents.refill.refill_due`); with it the record also
            has the ``..._beyond_refill_...`` and ``oracle_own_...`` fields.
        event_window: a divergence event counts as caught when the decider asked within its
            first ``event_window`` ticks (module docstring).
        stall_window: an own request "follows a stall" when it fires 1 .. ``stall_window``
            ticks after the last stalled tick.
        fresh_window: an own preempting request "preempts a fresh chunk" when a chunk arrived
            1 .. ``fresh_window`` ticks before it.
        seed_spread: run the second, independently seeded shadow pass that measures the
            sampling noise floor (``oracle_noise_floor``); it doubles the oracle's policy calls.

    Attributes:
        ticks: one :class:`OracleTick` per tick of the current episode.
    """

    def __init__(
        self,
        tolerances: Sequence[float] = DEFAULT_TOLERANCES,
        norm: Norm = "max",
        components: Sequence[int] | None = None,
        empty: EmptyRule = "non_redundant",
        refill_due: Callable[[DeciderObservation], bool] | None = None,
        event_window: int = DEFAULT_EVENT_WINDOW,
        stall_window: int = DEFAULT_STALL_WINDOW,
        fresh_window: int = DEFAULT_FRESH_WINDOW,
        seed_spread: bool = True,
    ) -> None:
        tols = tuple(float(t) for t in tolerances)
        if not tols or any(not (t > 0 and math.isfinite(t)) for t in tols):
            raise ValueError(f"tolerances {tolerances!r}: give at least one, each > 0")
        if len({tol_name(t) for t in tols}) != len(tols):
            raise ValueError(f"tolerances {tolerances!r} repeat a value")
        if norm not in ("max", "l2"):
            raise ValueError(f"norm {norm!r}; allowed: max, l2")
        comps = None if components is None else tuple(int(c) for c in components)
        if comps is not None and (
            not comps or any(not 0 <= c < 7 for c in comps) or len(set(comps)) != len(comps)
        ):
            raise ValueError(f"components {components!r}: None (all) or distinct indices in 0..6")
        if empty not in ("non_redundant", "compare_hold"):
            raise ValueError(f"empty {empty!r}; allowed: non_redundant, compare_hold")
        for label, value in (("event_window", event_window), ("stall_window", stall_window),
                             ("fresh_window", fresh_window)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} {value!r}: an integer number of ticks >= 1")
        self.tolerances = tols
        self.norm: Norm = norm
        self.components = comps
        self.empty: EmptyRule = empty
        self.refill_due = refill_due
        self.event_window = event_window
        self.stall_window = stall_window
        self.fresh_window = fresh_window
        self.seed_spread = seed_spread
        self.ticks: list[OracleTick] = []
        self._controller: PartitionedController | None = None
        self._floor_rng = np.random.default_rng(0)
        self._last_chunk: tuple[int, np.ndarray] | None = None
        self._last_stall: int | None = None
        self._last_arrival: int | None = None

    # ------------------------------------------------------------------ the observer's calls
    def on_reset(self, controller: PartitionedController, decider: Decider) -> None:
        """Observer hook: :meth:`begin`."""
        self.begin(controller)

    def on_decision(self, obs: DeciderObservation, decision: Decision) -> None:
        """Observer hook: :meth:`observe`."""
        self.observe(obs, decision)

    def on_tick(self, obs: DeciderObservation, decision: Decision, outcome: TickOutcome) -> None:
        """Observer hook: :meth:`after_tick`."""
        self.after_tick(int(obs.tick), outcome.info)

    def on_end(self, controller: PartitionedController) -> dict[str, Any]:
        """Observer hook: :meth:`fields`."""
        return self.fields()

    # ------------------------------------------------------------------ the loop's calls
    def begin(self, controller: PartitionedController) -> None:
        """Start a new episode (after the controller's reset)."""
        self._controller = controller
        self.ticks = []
        self._floor_rng = floor_rng(controller.policy)
        self._last_chunk = None
        self._last_stall = None
        self._last_arrival = None

    def observe(self, obs: DeciderObservation, decision: Decision) -> OracleTick:
        """Score the tick about to run: ``decision`` was taken on ``obs`` and not applied yet."""
        c = self._controller
        if c is None:
            raise RuntimeError("RedundancyOracle.observe() before begin()")
        tick = int(obs.tick)
        nxt = copy.copy(c.buffer).pop()  # the buffer's next action; the copy's cursor moves
        empty = nxt is None
        if empty and self.empty == "compare_hold":
            nxt = c._hold_action()
        distance = spread = drift = None
        fault: str | None = None
        chunk: np.ndarray | None = None
        if nxt is not None:
            chunk, fault = self.shadow_chunk(c)
            if chunk is not None:
                distance = action_distance(chunk[0], nxt, self.norm, self.components)
                spread = self._spread(c, chunk) if self.seed_spread else None
                last = self._last_chunk
                if last is not None and last[0] == tick - 1 and len(last[1]) > 1:
                    drift = action_distance(chunk[0], last[1][1], self.norm, self.components)
        self._last_chunk = None if chunk is None else (tick, chunk)
        due = None if self.refill_due is None else bool(self.refill_due(obs))
        row = OracleTick(
            tick, distance, empty, decision.kind == "infer", due, fault,
            in_flight=int(obs.in_flight), spread=spread, drift=drift,
            preempt=decision.kind == "infer" and bool(decision.preempt),
            after_stall=None if self._last_stall is None else tick - self._last_stall,
            since_arrival=None if self._last_arrival is None else tick - self._last_arrival,
        )
        self.ticks.append(row)
        return row

    def after_tick(self, tick: int, info: Mapping[str, Any]) -> None:
        """Note what tick ``tick`` did: whether the robot held, whether a chunk arrived."""
        if info.get("stalled"):
            self._last_stall = tick
        if "arrive" in info.get("events", ()):
            self._last_arrival = tick

    def fields(self) -> dict[str, Any]:
        """The episode's record fields (the module docstring's table)."""
        rows = self.ticks
        req = [r.requested for r in rows]
        out: dict[str, Any] = {
            "oracle_ticks": len(rows),
            "oracle_requests": sum(req),
            "oracle_empty_ticks": sum(r.empty for r in rows),
            "oracle_shadow_faults": sum(r.fault is not None for r in rows),
        }
        dists = [r.distance for r in rows if r.distance is not None]
        out["oracle_diff_median"] = float(np.median(dists)) if dists else None
        beyond = [r for r in rows if r.refill_due is False]
        if self.refill_due is not None:
            out["oracle_refill_due_ticks"] = sum(bool(r.refill_due) for r in rows)
            out["oracle_beyond_refill_requests"] = sum(r.requested for r in beyond)
        for tol in self.tolerances:
            name = tol_name(tol)
            nonred = [not r.redundant(tol) for r in rows]
            precision, recall = precision_recall(nonred, req)
            out[f"redundant_share_{name}"] = redundant_share(len(rows), sum(nonred))
            out[f"trigger_precision_{name}"] = precision
            out[f"trigger_recall_{name}"] = recall
            out[f"oracle_nonredundant_{name}"] = sum(nonred)
            out[f"oracle_hits_{name}"] = sum(n and r for n, r in zip(nonred, req, strict=True))
            if self.refill_due is not None:
                b_nonred = [not x.redundant(tol) for x in beyond]
                b_req = [x.requested for x in beyond]
                p, r = precision_recall(b_nonred, b_req)
                out[f"trigger_precision_beyond_refill_{name}"] = p
                out[f"trigger_recall_beyond_refill_{name}"] = r
                out[f"oracle_beyond_refill_nonredundant_{name}"] = sum(b_nonred)
                out[f"oracle_beyond_refill_hits_{name}"] = sum(
                    n and q for n, q in zip(b_nonred, b_req, strict=True)
                )
        out.update(self.fair_fields())
        return out

    def fair_fields(self) -> dict[str, Any]:
        """The fields that condition on what a trigger can act on (the second table above).

        Cached and eligible ticks, the noise floor, divergence events and own requests: the
        tick-level scores above count stalls as non-redundant and ask a trigger that fires once
        per cooldown to fire on every non-redundant tick; these ask fairer questions.
        """
        rows = self.ticks
        cached = [r for r in rows if not r.empty]
        eligible = [r for r in rows if r.eligible]
        spreads = [r.spread for r in rows if r.spread is not None]
        drifts = [r.drift for r in rows if r.drift is not None]
        out: dict[str, Any] = {
            "oracle_cached_ticks": len(cached),
            "oracle_eligible_ticks": len(eligible),
            "oracle_eligible_requests": sum(r.requested for r in eligible),
            "oracle_noise_floor": float(np.median(spreads)) if spreads else None,
            "oracle_noise_spreads": [float(x) for x in spreads],
            "oracle_drift_median": float(np.median(drifts)) if drifts else None,
            "oracle_drifts": [float(x) for x in drifts],
            "oracle_event_window": self.event_window,
        }
        for tol in self.tolerances:
            name = tol_name(tol)
            red_cached = sum(r.redundant(tol) for r in cached)
            e_nonred = sum(not r.redundant(tol) for r in eligible)
            e_hits = sum(r.requested and not r.redundant(tol) for r in eligible)
            events = divergence_events(rows, tol)
            leads = [lead for s in events
                     if (lead := first_request(rows, s, self.event_window)) is not None]
            out[f"oracle_redundant_cached_{name}"] = red_cached
            out[f"redundant_share_of_cached_{name}"] = ratio(red_cached, len(cached))
            out[f"oracle_eligible_nonredundant_{name}"] = e_nonred
            out[f"oracle_eligible_hits_{name}"] = e_hits
            out[f"trigger_precision_eligible_{name}"] = ratio(
                e_hits, out["oracle_eligible_requests"])
            out[f"trigger_chance_eligible_{name}"] = ratio(e_nonred, len(eligible))
            out[f"oracle_events_{name}"] = len(events)
            out[f"oracle_events_caught_{name}"] = len(leads)
            out[f"oracle_event_lead_ticks_{name}"] = sum(leads)
            out[f"trigger_event_recall_{name}"] = ratio(len(leads), len(events))
            out[f"trigger_event_lead_ticks_{name}"] = ratio(sum(leads), len(leads))
            if self.refill_due is not None:
                out[f"oracle_events_caught_own_{name}"] = sum(
                    first_request(rows, s, self.event_window, own=True) is not None
                    for s in events)
        if self.refill_due is not None:
            own = [r for r in rows if r.requested and r.refill_due is False]
            out["oracle_own_requests"] = len(own)
            out["oracle_own_after_stall"] = sum(
                r.after_stall is not None and 1 <= r.after_stall <= self.stall_window for r in own)
            out["oracle_own_preempt_fresh"] = sum(
                r.preempt and not r.empty and r.since_arrival is not None
                and 1 <= r.since_arrival <= self.fresh_window for r in own)
        return out

    # ------------------------------------------------------------------ the shadow pass
    def shadow_chunk(self, c: PartitionedController) -> tuple[np.ndarray | None, str | None]:
        """The chunk the policy would emit now, and its fault; changes nothing in the episode."""
        policy = c.policy
        task = c.task
        inp = c.camera.policy_input(policy, peek=True)
        with policy_rng_kept(policy), physics_kept(task):
            # split == n_blocks: the plain act, no bytes
            result = run_policy(policy, inp, 0, 0, c.action_dim)
        return result.chunk, result.fault

    def _spread(self, c: PartitionedController, chunk: np.ndarray) -> float | None:
        """Distance of ``chunk``'s first action from a second shadow plan under another seed.

        The second pass reseeds the policy through its own ``reset`` from the oracle's stream
        (:func:`floor_rng`) inside :func:`policy_rng_kept`, so the policy's generators are put
        back afterwards; a deterministic policy gives 0.
        """
        policy = c.policy
        task = c.task
        inp = c.camera.policy_input(policy, peek=True)
        with policy_rng_kept(policy), physics_kept(task):
            policy.reset(self._floor_rng)
            result = run_policy(policy, inp, 0, 0, c.action_dim)
        if result.chunk is None:
            return None
        return action_distance(chunk[0], result.chunk[0], self.norm, self.components)


def floor_rng(policy: object) -> np.random.Generator:
    """The oracle's own generator for the noise-floor pass, derived from the episode's seed.

    Called right after the controller's reset, when the policy's generators have just been
    seeded from the episode's policy stream: their states are a function of the episode's seed,
    so a digest of them (with a fixed salt) seeds a generator that is deterministic per episode
    and independent of the policy's own draws. A policy without generators (the deterministic
    expert) gets the salt alone; its spread is 0 whatever the seed.
    """
    digest = hashlib.sha256(b"rapid-env oracle noise floor")
    for key, value in sorted(vars(policy).items()) if hasattr(policy, "__dict__") else []:
        state = _rng_state(value)
        if state is not None:
            digest.update(key.encode())
            digest.update(state)
    words = np.frombuffer(digest.digest(), dtype=np.uint32)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words.tolist())))


def _rng_state(value: object) -> bytes | None:
    """A generator's state as bytes (numpy, ``random.Random``, torch); None for anything else."""
    if isinstance(value, np.random.Generator):
        return repr(value.bit_generator.state).encode()
    if isinstance(value, random.Random):
        return repr(value.getstate()).encode()
    get = getattr(value, "get_state", None)
    if callable(get) and not isinstance(value, type):
        try:
            state = get()
        except TypeError:
            return None
        numpy_view = getattr(state, "numpy", None)  # a torch ByteTensor
        return bytes(numpy_view()) if callable(numpy_view) else repr(state).encode()
    return None


def divergence_events(rows: Sequence[OracleTick], tol: float) -> list[int]:
    """Indices into ``rows`` where a divergence event starts at ``tol``.

    An event is a maximal run of consecutive ticks that are eligible (a cached action, nothing in
    flight) and non-redundant: a moment where a fresh plan would change what the robot does and
    nothing is already on its way.
    """
    starts: list[int] = []
    inside = False
    for i, r in enumerate(rows):
        diverging = r.eligible and not r.redundant(tol)
        contiguous = i > 0 and rows[i - 1].tick == r.tick - 1
        if diverging and not (inside and contiguous):
            starts.append(i)
        inside = diverging
    return starts


def first_request(
    rows: Sequence[OracleTick], start: int, window: int, own: bool = False
) -> int | None:
    """Ticks from ``rows[start]`` to the first request within ``window`` ticks, else None.

    With ``own``, only the decider's own requests count (on ticks where the refill rule was not
    due): a refill request catches an event by the rule every decider shares, not by a trigger.
    """
    t0 = rows[start].tick
    for r in rows[start:]:
        if r.tick - t0 >= window:
            return None
        if r.requested and (not own or r.refill_due is False):
            return r.tick - t0
    return None


@contextmanager
def physics_kept(task: Task) -> Iterator[None]:
    """Put the simulator's state back exactly, through the task's own save and restore.

    The scripted expert restores the state after its look-ahead and then runs ``mj_forward``,
    which also rewrites the constraint solver's warm start (``qacc_warmstart``) from a fresh
    solve: a change of about 1e-12 that a later step integrates. Harmless for a real request (it
    happens in every run alike) but a shadow pass must change nothing, so the oracle saves the
    task's state (:meth:`~rapid_env.task.Task.get_state`; for Meta-World, MuJoCo's
    ``mjSTATE_INTEGRATION``: positions, velocities, controls, mocap, warm start, time) around the
    call and puts it back as it was (:meth:`~rapid_env.task.Task.set_state`). Kinematic
    quantities the forward pass left are functions of that state, so they are the same; the next
    step recomputes the rest.
    """
    saved = task.get_state()
    try:
        yield
    finally:
        task.set_state(saved)


@contextmanager
def policy_rng_kept(policy: object) -> Iterator[None]:
    """Put every random state ``policy`` may draw from back as it was (see the module docstring).

    Covers the policy's own attributes that are generators (numpy, ``random.Random``, anything
    with ``get_state``/``set_state`` such as ``torch.Generator``) and torch's global CPU (and,
    when initialised, CUDA) generator when torch is already imported.
    """
    restore: list[Callable[[], None]] = []
    for value in list(vars(policy).values()) if hasattr(policy, "__dict__") else []:
        restore.extend(_keeper(value))
    torch = sys.modules.get("torch")
    if torch is not None:
        cpu = torch.get_rng_state()
        restore.append(lambda: torch.set_rng_state(cpu))
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and cuda.is_initialized():
            states = cuda.get_rng_state_all()
            restore.append(lambda: cuda.set_rng_state_all(states))
    try:
        yield
    finally:
        for put_back in restore:
            put_back()


def _keeper(value: object) -> list[Callable[[], None]]:
    """A closure that puts ``value``'s random state back, if it is a generator."""
    if isinstance(value, np.random.Generator):
        bg = value.bit_generator
        state = bg.state
        return [lambda: setattr(bg, "state", state)]
    if isinstance(value, random.Random):
        pstate = value.getstate()
        return [lambda: value.setstate(pstate)]
    get, put = getattr(value, "get_state", None), getattr(value, "set_state", None)
    if callable(get) and callable(put) and not isinstance(value, type):
        # np.random.RandomState, torch.Generator
        try:
            saved = get()
        except TypeError:  # a get_state that wants arguments is not a generator's
            return []
        return [lambda: put(saved)]
    return []
