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
* the distance is the max-abs difference over all four components of Meta-World's action
  (``norm="max"``, ``components=(0, 1, 2, 3)``). Each component lives in [-1, 1] in the same
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
"""

from __future__ import annotations

import copy
import math
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rapid_env.observer import ObserverBase
from rapid_env.policy import PolicyInput, run_policy
from rapid_env.record_metrics import redundant_share, trigger_precision, trigger_recall

if TYPE_CHECKING:
    from rapid_env.controller import PartitionedController
    from rapid_env.decision import Decider, DeciderObservation, Decision
    from rapid_env.task import Task

__all__ = [
    "DEFAULT_TOLERANCES", "OracleTick", "RedundancyOracle", "action_distance", "physics_kept",
    "policy_rng_kept", "precision_recall", "tol_name",
]

DEFAULT_TOLERANCES = (0.05, 0.1, 0.2)
"""Tolerances in action units (each action component lives in [-1, 1])."""

Norm = Literal["max", "l2"]
EmptyRule = Literal["non_redundant", "compare_hold"]


def tol_name(tol: float) -> str:
    """The tolerance as it appears in field names: ``0.05``, ``0.1``, ``0.2``."""
    return format(float(tol), "g")


def action_distance(
    a: np.ndarray, b: np.ndarray, norm: Norm = "max", components: Sequence[int] = (0, 1, 2, 3)
) -> float:
    """Distance between two 4-D actions over ``components``: max-abs or L2 of the difference."""
    d = np.asarray(a, dtype=np.float64)[list(components)] - np.asarray(b, np.float64)[
        list(components)
    ]
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
    """

    tick: int
    distance: float | None
    empty: bool
    requested: bool
    refill_due: bool | None = None
    fault: str | None = None

    def redundant(self, tol: float) -> bool:
        """Whether the tick is redundant at ``tol`` (distance strictly below it)."""
        return self.distance is not None and self.distance < tol


class RedundancyOracle(ObserverBase):
    """Runs the policy in a shadow pass at every tick and scores the decider's requests.

    An :class:`~rapid_env.observer.EpisodeObserver`: its hooks are :meth:`begin`,
    :meth:`observe` and :meth:`fields`.

    Args:
        tolerances: in action units, each > 0.
        norm: ``max`` (max-abs difference, default) or ``l2``.
        components: which of the action's four components count (default all four).
        empty: a tick with an empty buffer is ``non_redundant`` (default) or compared with the
            hold action (``compare_hold``).
        refill_due: optional predicate over the decider observation: the refill rule every
            decider shares (:func:`rapid_env.agents.refill.refill_due`); with it the record also
            has the ``..._beyond_refill_...`` fields.

    Attributes:
        ticks: one :class:`OracleTick` per tick of the current episode.
    """

    def __init__(
        self,
        tolerances: Sequence[float] = DEFAULT_TOLERANCES,
        norm: Norm = "max",
        components: Sequence[int] = (0, 1, 2, 3),
        empty: EmptyRule = "non_redundant",
        refill_due: Callable[[DeciderObservation], bool] | None = None,
    ) -> None:
        tols = tuple(float(t) for t in tolerances)
        if not tols or any(not (t > 0 and math.isfinite(t)) for t in tols):
            raise ValueError(f"tolerances {tolerances!r}: give at least one, each > 0")
        if len({tol_name(t) for t in tols}) != len(tols):
            raise ValueError(f"tolerances {tolerances!r} repeat a value")
        if norm not in ("max", "l2"):
            raise ValueError(f"norm {norm!r}; allowed: max, l2")
        comps = tuple(int(c) for c in components)
        if not comps or any(not 0 <= c < 4 for c in comps) or len(set(comps)) != len(comps):
            raise ValueError(f"components {components!r}: distinct indices in 0..3")
        if empty not in ("non_redundant", "compare_hold"):
            raise ValueError(f"empty {empty!r}; allowed: non_redundant, compare_hold")
        self.tolerances = tols
        self.norm: Norm = norm
        self.components = comps
        self.empty: EmptyRule = empty
        self.refill_due = refill_due
        self.ticks: list[OracleTick] = []
        self._controller: PartitionedController | None = None

    # ------------------------------------------------------------------ the observer's calls
    def on_reset(self, controller: PartitionedController, decider: Decider) -> None:
        """Observer hook: :meth:`begin`."""
        self.begin(controller)

    def on_decision(self, obs: DeciderObservation, decision: Decision) -> None:
        """Observer hook: :meth:`observe`."""
        self.observe(obs, decision)

    def on_end(self, controller: PartitionedController) -> dict[str, Any]:
        """Observer hook: :meth:`fields`."""
        return self.fields()

    # ------------------------------------------------------------------ the loop's three calls
    def begin(self, controller: PartitionedController) -> None:
        """Start a new episode (after the controller's reset)."""
        self._controller = controller
        self.ticks = []

    def observe(self, obs: DeciderObservation, decision: Decision) -> OracleTick:
        """Score the tick about to run: ``decision`` was taken on ``obs`` and not applied yet."""
        c = self._controller
        if c is None:
            raise RuntimeError("RedundancyOracle.observe() before begin()")
        nxt = copy.copy(c.buffer).pop()  # the buffer's next action; the copy's cursor moves
        empty = nxt is None
        if empty and self.empty == "compare_hold":
            nxt = c._hold_action()
        distance: float | None = None
        fault: str | None = None
        if nxt is not None:
            chunk, fault = self.shadow_chunk(c)
            if chunk is not None:
                distance = action_distance(chunk[0], nxt, self.norm, self.components)
        due = None if self.refill_due is None else bool(self.refill_due(obs))
        row = OracleTick(int(obs.tick), distance, empty, decision.kind == "infer", due, fault)
        self.ticks.append(row)
        return row

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
        return out

    # ------------------------------------------------------------------ the shadow pass
    def shadow_chunk(self, c: PartitionedController) -> tuple[np.ndarray | None, str | None]:
        """The chunk the policy would emit now, and its fault; changes nothing in the episode."""
        policy = c.policy
        task = c.task
        image = c.camera.peek() if policy.needs_image else None
        inp = PolicyInput(image, task.proprio_vector(), task.instruction, task)
        with policy_rng_kept(policy), physics_kept(task):
            result = run_policy(policy, inp, 0, 0)  # split == n_blocks: plain act, no bytes
        return result.chunk, result.fault


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
