"""The per-tick trace of one episode: what the robot decided and what happened, keyed by time.

Opt-in: :func:`rapid_env.episode.run_episode` takes ``trace=EpisodeTrace()`` and then calls
:meth:`EpisodeTrace.begin` once after the reset and :meth:`EpisodeTrace.record` once after every
tick. Without a trace the loop does no per-tick work for it at all (one ``is None`` test), and the
record is the same with or without one: the trace only reads the controller, the decider and the
task, it never draws from a random stream or changes a cache (the frame it may grab is taken with
:meth:`rapid_env.camera.NoisyCamera.peek`, which leaves the camera's noise stream as it
found it).

One row per tick (:attr:`EpisodeTrace.rows`, or column-major :meth:`EpisodeTrace.columns`):

========================  =========================================================================
``tick``, ``t``           tick index and simulated time (s) at the start of the tick, when the
                          decision was taken and a request, if any, was sent
``decision``              what the tick did: ``keep``, ``request``, ``preempt`` (a request that
                          first dropped the cached chunk and everything in flight) or ``refused``
                          (the decider asked, the in-flight limit said no)
``split``                 the request's split point (None without a request)
``events``                the controller's events of the tick, as given (``request:split=3``,
                          ``preempt``, ``arrive``, ``superseded``, ``lost``, ``timeout``,
                          ``fault:...``, ``refused_in_flight``)
``arrived``, ``lost``,    how many chunks arrived and were installed, were lost, arrived after a
``superseded``            newer one; ``stalled``: the robot held (its buffer was empty);
                          ``fault``: the first fault event's text, else None
``chunk_remaining``,      buffer fill and requests in flight at the end of the tick
``in_flight``
``delivered``,            chunks whose latency ended during the tick (any fate but lost) and their
``latency_ms``,           mean latency by stage (None when none arrived): the recorder's
``edge_ms``, ``up_ms``,   per-delivery series
``cloud_ms``, ``down_ms``
``bytes_sent``            bytes handed to the link during the tick
``est_bandwidth_mbps``,   the robot's link estimate at the end of the tick (what deciders read)
``est_rtt_ms``
``link_bandwidth_mbps``   the link's true uplink rate at ``t`` when the link can tell it (a trace
                          link's ``bandwidth_at``, a constant link's rate), else None
``ee_speed``, ``jerk``    end-effector speed (m/s, mean over the tick's 80 Hz samples) and RMS jerk
                          (m/s^3) over the tick
``success``               the task is solved at the end of the tick
``score``, ``acc_z``,     only for deciders that expose ``last_parts`` (RAPID and its variants):
``dtau_z``,               the importance score of the tick's decision and its parts; the joint
``acc_weight``,           speed (rad/s) that set the weighting; ``score_ready`` is False while the
``joint_speed``,          history is too short to score. The thresholds are in :attr:`meta`
``score_ready``
========================  =========================================================================
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from rapid_env.observer import ObserverBase

if TYPE_CHECKING:
    from rapid_env.controller import PartitionedController, TickOutcome
    from rapid_env.decision import Decider, DeciderObservation, Decision

__all__ = ["IMPORTANCE_FIELDS", "EpisodeTrace", "link_bandwidth_bps"]

IMPORTANCE_FIELDS = ("score", "acc_z", "dtau_z", "acc_weight", "joint_speed", "score_ready")
"""Row fields of a decider with ``last_parts`` (absent for the others)."""

_PARTS = (("score", "score"), ("acc_z", "acc_z"), ("dtau_z", "dtau_z"),
          ("acc_weight", "acc_weight"), ("joint_speed", "speed"), ("score_ready", "ready"))

_STAGES = (("latency_ms", "latency"), ("edge_ms", "edge"), ("up_ms", "up"),
           ("cloud_ms", "cloud"), ("down_ms", "down"))


class EpisodeTrace(ObserverBase):
    """Collects one row per tick of an episode (see the module docstring for the fields).

    An :class:`~rapid_env.observer.EpisodeObserver` (``run_episode(..., observers=[trace])``);
    it adds no record fields.

    Args:
        frames: also keep the policy camera's frame at the start of every tick and after the
            last one (``len(frames) == len(rows) + 1``), grabbed with
            ``controller.camera.peek()``; for videos. Rendering costs, so it is off unless asked
            for.

    Attributes:
        rows: one dict per tick, in tick order.
        meta: the episode's constants: ``tick_dt``, ``control_hz``, ``link``, ``noise``,
            ``chunk_size``, ``n_splits``, the estimator's priors, and for deciders with
            ``last_parts`` the ``high_threshold`` / ``low_threshold`` of their ``config``.
        frames: uint8 HxWx3 frames when built with ``frames=True``, else empty.
    """

    def __init__(self, frames: bool = False) -> None:
        self.want_frames = frames
        self.rows: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = {}
        self.frames: list[np.ndarray] = []
        self._controller: PartitionedController | None = None
        self._decider: object = None
        self._delivered = 0

    # ------------------------------------------------------------------ the observer's calls
    def on_reset(self, controller: PartitionedController, decider: Decider) -> None:
        """Observer hook: :meth:`begin`."""
        self.begin(controller, decider)

    def on_tick(self, obs: DeciderObservation, decision: Decision, outcome: TickOutcome) -> None:
        """Observer hook: :meth:`record`."""
        self.record(obs, decision, outcome)

    # ------------------------------------------------------------------ the loop's two calls
    def begin(self, controller: PartitionedController, decider: object) -> None:
        """Start a new episode's trace (after the controller's reset and the decider's bind)."""
        self._controller = controller
        self._decider = decider
        self.rows = []
        self.frames = []
        self._delivered = len(controller.recorder.series.latency)
        task = controller.task
        est = controller.estimator
        self.meta = {
            "tick_dt": float(task.tick_dt),
            "control_hz": float(task.control_hz),
            "max_ticks": int(task.max_ticks),
            "link": str(getattr(controller.link, "name", "")),
            "noise": str(getattr(controller.noise, "spec", "")),
            "chunk_size": int(controller.chunk_size),
            "n_splits": int(controller.n_splits),
            "est_bandwidth_mbps_prior": _mbps(est.bandwidth_bps),
            "est_rtt_ms_prior": float(est.rtt_s) * 1e3,
        }
        cfg = getattr(decider, "config", None)
        if getattr(decider, "last_parts", None) is not None:
            for name in ("high_threshold", "low_threshold"):
                value = getattr(cfg, name, None)
                if isinstance(value, int | float):
                    self.meta[name] = float(value)
        if self.want_frames:
            self.frames.append(controller.camera.peek())

    def record(self, obs: DeciderObservation, decision: Decision, out: TickOutcome) -> None:
        """Add the row of the tick that ``decision`` (taken on ``obs``) just ran into ``out``."""
        c = self._controller
        if c is None:
            raise RuntimeError("EpisodeTrace.record() before begin()")
        info = out.info
        events: list[str] = list(info.get("events", ()))
        split = next((_split_of(e) for e in events if e.startswith("request:")), None)
        if "preempt" in events:
            kind = "preempt"
        elif split is not None:
            kind = "request"
        elif "refused_in_flight" in events:
            kind = "refused"
        else:
            kind = "keep"
        row: dict[str, Any] = {
            "tick": int(obs.tick),
            "t": float(obs.t),
            "decision": kind,
            "split": split,
            "events": events,
            "arrived": events.count("arrive"),
            "lost": events.count("lost"),
            "superseded": events.count("superseded"),
            "stalled": bool(info.get("stalled", False)),
            "fault": next((e[len("fault:"):] for e in events if e.startswith("fault:")), None),
            "chunk_remaining": int(info.get("chunk_remaining", 0)),
            "in_flight": int(info.get("in_flight", 0)),
        }
        row.update(self._deliveries(c))
        row["bytes_sent"] = int(out.delta.bytes_sent)
        row["est_bandwidth_mbps"] = _mbps(c.estimator.bandwidth_bps)
        row["est_rtt_ms"] = float(c.estimator.rtt_s) * 1e3
        row["link_bandwidth_mbps"] = _mbps(link_bandwidth_bps(c.link, float(obs.t)))
        row["ee_speed"] = _ee_speed(c)
        row["jerk"] = math.sqrt(max(float(out.delta.jerk_sq), 0.0))
        row["success"] = bool(out.success)
        parts = getattr(self._decider, "last_parts", None)
        if parts is not None:
            for name, attr in _PARTS:
                value = getattr(parts, attr, None)
                row[name] = bool(value) if name == "score_ready" else _num(value)
        self.rows.append(row)
        if self.want_frames:
            self.frames.append(c.camera.peek())

    # ------------------------------------------------------------------ reading it
    @property
    def has_importance(self) -> bool:
        """Whether the rows carry a decider's importance score."""
        return bool(self.rows) and "score" in self.rows[0]

    def columns(self) -> dict[str, list[Any]]:
        """The rows column-major: ``{field: [value per tick]}`` (JSON-ready)."""
        names: list[str] = []
        for row in self.rows:
            names.extend(k for k in row if k not in names)
        return {k: [row.get(k) for row in self.rows] for k in names}

    def counts(self) -> dict[str, int]:
        """Decision and event totals (``request`` counts preempting requests too)."""
        rows = self.rows
        return {
            "request": sum(r["decision"] in ("request", "preempt") for r in rows),
            "preempt": sum(r["decision"] == "preempt" for r in rows),
            "refused": sum(r["decision"] == "refused" for r in rows),
            "arrived": sum(r["arrived"] for r in rows),
            "lost": sum(r["lost"] for r in rows),
            "superseded": sum(r["superseded"] for r in rows),
            "stalled": sum(bool(r["stalled"]) for r in rows),
        }

    def to_dict(self) -> dict[str, Any]:
        """``{"meta": ..., "series": columns()}``: what a series file holds."""
        return {"meta": dict(self.meta), "series": self.columns()}

    # ------------------------------------------------------------------ helpers
    def _deliveries(self, c: PartitionedController) -> dict[str, Any]:
        s = c.recorder.series
        n = len(s.latency)
        new = slice(self._delivered, n)
        self._delivered = n
        out: dict[str, Any] = {"delivered": n - new.start}
        for name, attr in _STAGES:
            xs = getattr(s, attr)[new]
            out[name] = _num(1e3 * float(np.mean(xs))) if xs else None
        return out


def link_bandwidth_bps(link: object, t: float) -> float | None:
    """The link's true uplink rate at simulated time ``t``, if it can tell; for plots only.

    A trace link answers with ``bandwidth_at(t)``, a constant link with its rate; an ideal link
    (infinite) and unknown links give None. Deciders must not read this: it is the link's
    present, which a robot only estimates.
    """
    at = getattr(link, "bandwidth_at", None)
    if callable(at):
        value = at(t)
    else:
        value = getattr(link, "bandwidth_bps", None)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _split_of(event: str) -> int | None:
    _, _, value = event.partition("split=")
    try:
        return int(value)
    except ValueError:
        return None


def _ee_speed(c: PartitionedController) -> float:
    """Mean end-effector speed over the last tick's trace samples (80 Hz in Meta-World), m/s."""
    task = c.task
    path = task.ee_trace
    n = int(task.ee_samples_per_tick)
    if len(path) < 2:
        return 0.0
    p = np.asarray(path[-(n + 1):])
    rate = task.control_hz * n  # samples per second
    return float(np.mean(np.linalg.norm(np.diff(p, axis=0), axis=1)) * rate)


def _mbps(bps: float | None) -> float | None:
    if bps is None or not math.isfinite(bps):
        return None
    return float(bps) / 1e6


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return None
    x = float(value)
    return x if math.isfinite(x) else None
