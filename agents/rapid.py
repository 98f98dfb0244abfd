"""RAPID's kinematic trigger: our reconstruction of arXiv 2603.07949 (no code was released).

The decision to consult the model comes from the robot's own proprioception, never the camera, so
visual noise cannot make it offload more (``needs_image = False``: the image is not even rendered
for it). Per control tick:

* **acceleration anomaly** -- the mean joint-acceleration norm over the newest tick, z-scored
  against the mean and spread of the preceding sliding window (abrupt changes of motion: phase
  switches, sudden stops, avoidance);
* **torque-change anomaly** -- the sliding mean of |delta tau| over the newest tick, z-scored the
  same way (contact: grasp, insertion, pushing; high torque change = low redundancy);
* **speed-dependent weights** -- a logistic in joint speed gives acceleration the larger weight in
  fast free-space motion and torque the larger weight in slow, contact-rich motion; the blend of
  the two (negative z-scores count as 0) is the **action-importance score**;
* **dual-threshold dispatcher** -- score >= ``high_threshold``: critical, preempt the cached chunk
  and request a fresh one now (allowed while one request is already in flight: the controller's
  newest-request-wins rule drops the older chunk if it lands late); ``low_threshold`` <= score <
  ``high_threshold``: intermediate, request without preempting, only when nothing is in flight;
  below ``low_threshold``: redundant, keep executing the cached chunk. A cooldown stops
  back-to-back trigger requests;
* a chunk about to run out is refilled whatever the score (:mod:`rapid_env.agents.refill`), at
  ``refill_split`` (default: the planner's latency-optimal split for the current link estimate).

Every constant is a field of :class:`RapidConfig`; the ablation switches are fields too and
:data:`ABLATIONS` holds the registered one-switch variants. ``docs/rapid.md`` says which parts are
the paper's and which are ours, and where each default comes from (training seeds 0-999 only;
evaluation uses seeds >= 1000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from rapid_env.agents.refill import check_max_in_flight, refill_due
from rapid_env.decision import KEEP, DeciderBase, DeciderContext, DeciderObservation, Decision
from rapid_env.features import dtau_norms, floored_zscore, joint_speed, row_norms

SplitChoice = int | Literal["edge", "cloud"] | None
Signals = Literal["both", "acceleration", "torque"]
CooldownScope = Literal["trigger", "any"]
_SIGNALS = ("both", "acceleration", "torque")
_SCOPES = ("trigger", "any")


def _check_split(name: str, value: object) -> None:
    if value is None or value in ("edge", "cloud"):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r}; allowed: None, 'edge', 'cloud' or an int >= 0")


def resolve_split(choice: SplitChoice, n_splits: int) -> int | None:
    """Turn a split choice into the split index a :class:`Decision` carries.

    ``None`` stays None (the controller then uses the planner's latency-optimal split for its
    current link estimate), ``"edge"`` is the last split (every block on the robot), ``"cloud"``
    is split 0 (the raw observation goes up), an int is checked against ``n_splits``.
    """
    if choice is None:
        return None
    if choice == "edge":
        return n_splits - 1
    if choice == "cloud":
        return 0
    assert isinstance(choice, int)
    if not 0 <= choice < n_splits:
        raise ValueError(f"split {choice} out of range; allowed: 0 .. {n_splits - 1}")
    return choice


@dataclass(frozen=True)
class RapidConfig:
    """RAPID's trigger parameters and ablation switches (defaults: see ``docs/rapid.md``).

    Attributes:
        high_threshold: importance score at or above which a step is critical (preempt + request
            now). Tuned on training seeds.
        low_threshold: score at or above which a step is intermediate (request, no preempt).
            Tuned on training seeds.
        cooldown_s: minimum simulated time after a request before the trigger may fire again.
        cooldown_scope: which earlier requests start the cooldown: ``trigger`` (only RAPID's own
            critical / intermediate requests; a refill does not block a critical moment right after
            it) or ``any`` (refills too).
        history_s: length of the sliding reference window before the newest tick (seconds); the
            controller supplies ``ControlConfig.proprio_window_s`` of samples, a longer setting
            uses all of them.
        min_history_s: the score is 0 until this much reference history exists (the first ticks
            after reset have too few samples for a meaningful mean and spread).
        acc_floor: spread floor of the acceleration anomaly, rad/s^2 (jitter of a still robot is
            not an anomaly).
        dtau_floor: spread floor of the torque-change anomaly, N m per sample.
        rel_floor: spread floor as a fraction of the reference mean, for both signals.
        speed_ref: joint speed (rad/s, norm over the 7 arm joints) at which both signals weigh the
            same; faster is "free-space transport", slower is "contact-rich".
        speed_scale: width of the logistic speed weighting (rad/s).
        min_weight: floor of either weight, so neither signal is ever ignored.
        fixed_acc_weight: acceleration weight used when ``speed_weighting`` is off.
        critical_max_in_flight: a critical request is sent only while fewer requests than this are
            in flight (2: one refill may be on its way; the controller's ``max_in_flight`` still
            caps it, and newest request wins on arrival). Counted on top of the refill pipeline:
            the bound applied is ``critical_max_in_flight + max_in_flight - 1``.
        intermediate_max_in_flight: the same bound for intermediate requests (1: only when
            nothing is in flight, as an intermediate step does not justify a second request);
            also applied as ``intermediate_max_in_flight + max_in_flight - 1``.
        max_in_flight: refills the shared refill rule keeps in flight at once (1: wait for each
            chunk; 2 or more: pipelined, :func:`rapid_env.agents.refill.refill_due`). The trigger
            bounds above shift with it, so a critical request keeps its slot beyond the refills;
            the controller must allow ``max_in_flight + 1`` in flight for it (``rapid-eval
            --max-in-flight N`` sets the controller's cap to ``N + 1``).
        settle_ticks: ablation, ours (0, the default, is the paper's behaviour): after a chunk
            switch (a new chunk installed) or the end of a stall, the trigger (critical and
            intermediate, not the refill rule) stays silent for this many ticks, as the motion's
            own restart makes the acceleration jump.
        refill_split: where a refill runs: None (planner's choice for the link estimate),
            ``"edge"``, ``"cloud"`` or a split index.
        trigger_split: where a critical / intermediate request runs (same choices).
        signals: ablation -- ``both`` (RAPID), ``acceleration`` only or ``torque`` only.
        speed_weighting: ablation -- False uses ``fixed_acc_weight`` whatever the speed.
        dual_threshold: ablation -- False drops the intermediate tier: only scores at or above
            ``high_threshold`` trigger (and they preempt).
        preemption: ablation -- False sends critical requests without dropping the cached chunk.
        cooldown: ablation -- False ignores ``cooldown_s``.
        preempt_max_latency_s: our extension, not the paper's (None, the default, is the paper's
            behaviour). A preemption makes the robot hold until the fresh chunk lands, so with a
            number here a critical step preempts only when the last observed chunk latency is at
            most this long; otherwise it requests without dropping the cached actions.
    """

    high_threshold: float = 4.0
    low_threshold: float = 2.0
    cooldown_s: float = 0.2
    cooldown_scope: CooldownScope = "trigger"
    history_s: float = 0.45
    min_history_s: float = 0.1
    acc_floor: float = 0.5
    dtau_floor: float = 0.05
    rel_floor: float = 0.05
    speed_ref: float = 1.0
    speed_scale: float = 0.25
    min_weight: float = 0.2
    fixed_acc_weight: float = 0.5
    critical_max_in_flight: int = 2
    intermediate_max_in_flight: int = 1
    max_in_flight: int = 1
    settle_ticks: int = 0
    refill_split: SplitChoice = None
    trigger_split: SplitChoice = None
    signals: Signals = "both"
    speed_weighting: bool = True
    dual_threshold: bool = True
    preemption: bool = True
    cooldown: bool = True
    preempt_max_latency_s: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low_threshold) and math.isfinite(self.high_threshold)):
            raise ValueError(
                f"thresholds must be finite, got low={self.low_threshold}, "
                f"high={self.high_threshold}"
            )
        if not 0 < self.low_threshold <= self.high_threshold:
            raise ValueError(
                f"need 0 < low_threshold <= high_threshold, got low={self.low_threshold}, "
                f"high={self.high_threshold}"
            )
        for name in ("cooldown_s", "acc_floor", "dtau_floor", "rel_floor", "min_history_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("history_s", "speed_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        # a window of inf seconds has no sample count, and a nan speed_ref makes every weight nan
        for name in ("history_s", "speed_ref"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        if self.min_history_s > self.history_s:
            raise ValueError(
                f"min_history_s={self.min_history_s} exceeds history_s={self.history_s}"
            )
        if not 0 <= self.min_weight <= 0.5:
            raise ValueError(f"min_weight must be in [0, 0.5], got {self.min_weight}")
        if not 0 <= self.fixed_acc_weight <= 1:
            raise ValueError(f"fixed_acc_weight must be in [0, 1], got {self.fixed_acc_weight}")
        for name in ("critical_max_in_flight", "intermediate_max_in_flight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_max_in_flight(self.max_in_flight)
        if isinstance(self.settle_ticks, bool) or not isinstance(self.settle_ticks, int) or not (
            0 <= self.settle_ticks <= 1000
        ):
            raise ValueError(f"settle_ticks={self.settle_ticks!r}; allowed: an int in 0..1000")
        if self.signals not in _SIGNALS:
            raise ValueError(f"signals={self.signals!r}; allowed: {', '.join(_SIGNALS)}")
        if self.cooldown_scope not in _SCOPES:
            raise ValueError(
                f"cooldown_scope={self.cooldown_scope!r}; allowed: {', '.join(_SCOPES)}"
            )
        _check_split("refill_split", self.refill_split)
        _check_split("trigger_split", self.trigger_split)
        if self.preempt_max_latency_s is not None and not self.preempt_max_latency_s >= 0:
            raise ValueError(
                f"preempt_max_latency_s must be None or >= 0 s, got {self.preempt_max_latency_s}"
            )


DEFAULT_CONFIG = RapidConfig()
"""The full RAPID, as registered under ``rapid``."""

ABLATIONS: dict[str, RapidConfig] = {
    "rapid": DEFAULT_CONFIG,
    "rapid-acc-only": replace(DEFAULT_CONFIG, signals="acceleration"),
    "rapid-torque-only": replace(DEFAULT_CONFIG, signals="torque"),
    "rapid-fixed-weights": replace(DEFAULT_CONFIG, speed_weighting=False),
    "rapid-single-threshold": replace(DEFAULT_CONFIG, dual_threshold=False),
    "rapid-no-preempt": replace(DEFAULT_CONFIG, preemption=False),
    "rapid-no-cooldown": replace(DEFAULT_CONFIG, cooldown=False),
    # ours, not the paper's: the trigger is silent for 2 ticks (100 ms) after a chunk switch or a
    # stall's end, when the restart of the motion itself makes the acceleration jump
    "rapid-settle": replace(DEFAULT_CONFIG, settle_ticks=2),
}
"""The full RAPID and its one-switch ablations (each flips one switch), by agent name."""

VARIANTS: dict[str, RapidConfig] = {
    **ABLATIONS,
    # our extension: preempt only when a fresh chunk is expected within half a chunk (4 ticks of
    # 50 ms); set from the chunk length, not tuned on any seeds
    "rapid-link-aware": replace(DEFAULT_CONFIG, preempt_max_latency_s=0.2),
}
"""Every registered RAPID agent: the ablations plus our link-aware extension."""


@dataclass(frozen=True)
class ImportanceParts:
    """The action-importance score and what it was made of (for tests, plots and tuning).

    Attributes:
        score: the blended importance score (>= 0).
        acc_z: acceleration anomaly z-score (may be negative; 0 when not used).
        dtau_z: torque-change anomaly z-score (may be negative; 0 when not used).
        acc_weight: weight of the acceleration term (the torque term gets ``1 - acc_weight``).
        speed: mean joint-speed norm over the newest tick (rad/s).
        ready: False while too little history exists (``min_history_s``); the score is then 0.
    """

    score: float
    acc_z: float
    dtau_z: float
    acc_weight: float
    speed: float
    ready: bool = True


_ZERO = ImportanceParts(0.0, 0.0, 0.0, 0.5, 0.0, ready=False)


def acc_weight(speed: float, cfg: RapidConfig) -> float:
    """Weight of the acceleration anomaly at this joint speed (torque gets the rest)."""
    if cfg.signals == "acceleration":
        return 1.0
    if cfg.signals == "torque":
        return 0.0
    if not cfg.speed_weighting:
        return cfg.fixed_acc_weight
    x = (speed - cfg.speed_ref) / cfg.speed_scale
    logistic = 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))
    return cfg.min_weight + (1.0 - 2.0 * cfg.min_weight) * logistic


def importance_parts(obs: DeciderObservation, cfg: RapidConfig) -> ImportanceParts:
    """RAPID's action-importance score for the newest tick, with its components.

    Only the samples of the reference window plus the newest tick are read, so the cost is fixed
    by the configuration (a few microseconds of numpy on ~200 x 7 samples), not by the episode.
    """
    w = obs.proprio
    spt = obs.samples_per_tick
    dt = obs.tick_dt / spt
    hist = int(round(cfg.history_s / dt))
    min_hist = max(int(round(cfg.min_history_s / dt)), 2)
    n = min(len(w), hist + spt + 1)  # +1: a torque difference needs the sample before
    if n - 1 - spt < min_hist:
        return _ZERO
    speed = joint_speed(w, spt)
    wa = acc_weight(speed, cfg)
    acc_z = dtau_z = 0.0
    if wa > 0.0:
        acc = row_norms(w.qdd[-(n - 1) :])
        acc_z = floored_zscore(acc, spt, cfg.acc_floor, cfg.rel_floor, min_hist)
    if wa < 1.0:
        dtau = dtau_norms(w.tau[-n:])
        dtau_z = floored_zscore(dtau, spt, cfg.dtau_floor, cfg.rel_floor, min_hist)
    score = wa * max(acc_z, 0.0) + (1.0 - wa) * max(dtau_z, 0.0)
    return ImportanceParts(score, acc_z, dtau_z, wa, speed)


def importance(obs: DeciderObservation, cfg: RapidConfig) -> float:
    """RAPID's action-importance score for the newest tick (see :func:`importance_parts`)."""
    return importance_parts(obs, cfg).score


class RapidDecider(DeciderBase):
    """The kinematic, dual-threshold trigger with preemption and cooldown.

    Example:
        >>> d = RapidDecider(RapidConfig(high_threshold=8.0))
        >>> d.needs_image
        False

    Attributes:
        last_score: the importance score of the latest ``decide`` call.
        last_parts: its components (:class:`ImportanceParts`).
        scores: every tick's score this episode, when built with ``record_scores=True``.
        counts: decisions this episode by reason: ``refill``, ``critical``, ``intermediate``.
        settled: ticks this episode on which ``settle_ticks`` silenced a score at or above
            ``low_threshold`` (0 without the option).
    """

    needs_image = False

    def __init__(
        self, config: RapidConfig | None = None, name: str = "rapid", record_scores: bool = False
    ) -> None:
        self.config = config or RapidConfig()
        self.name = name
        self.record_scores = record_scores
        self.last_score = 0.0
        self.last_parts = _ZERO
        self.scores: list[float] = []
        self.counts = {"refill": 0, "critical": 0, "intermediate": 0}
        self._last_trigger_t = -math.inf
        self.settled = 0
        self._prev_remaining: int | None = None
        self._settle_left = 0

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode; the trigger is deterministic, so ``rng`` is not drawn from."""
        self.last_score = 0.0
        self.last_parts = _ZERO
        self.scores = []
        self.counts = {"refill": 0, "critical": 0, "intermediate": 0}
        self._last_trigger_t = -math.inf
        self.settled = 0
        self._prev_remaining = None
        self._settle_left = 0

    def bind(self, context: DeciderContext) -> None:
        """Check the configured split points against the model before the episode starts."""
        n_splits = int(context.cost.n_blocks) + 1
        resolve_split(self.config.refill_split, n_splits)
        resolve_split(self.config.trigger_split, n_splits)

    def decide(self, obs: DeciderObservation) -> Decision:
        """Refill when due; otherwise dispatch on the importance score."""
        cfg = self.config
        parts = importance_parts(obs, cfg)
        score = parts.score
        self.last_parts = parts
        self.last_score = score
        if self.record_scores:
            self.scores.append(score)
        settling = self._settling(obs)
        if refill_due(obs, cfg.max_in_flight):
            self.counts["refill"] += 1
            return Decision("infer", split=resolve_split(cfg.refill_split, obs.n_splits))
        if settling:
            if score >= cfg.low_threshold:
                self.settled += 1
            return KEEP
        if cfg.cooldown:
            since = (
                obs.since_request_s
                if cfg.cooldown_scope == "any"
                else obs.t - self._last_trigger_t
            )
            if since < cfg.cooldown_s - 1e-9:
                return KEEP
        extra = cfg.max_in_flight - 1  # the trigger's bounds count on top of the refill pipeline
        if score >= cfg.high_threshold:
            if obs.in_flight >= cfg.critical_max_in_flight + extra:
                return KEEP
            return self._trigger(obs, "critical", preempt=cfg.preemption and self._may_preempt(obs))
        if (
            cfg.dual_threshold
            and score >= cfg.low_threshold
            and obs.in_flight < cfg.intermediate_max_in_flight + extra
        ):
            return self._trigger(obs, "intermediate", preempt=False)
        return KEEP

    def _settling(self, obs: DeciderObservation) -> bool:
        """Whether ``settle_ticks`` silences the trigger on this tick.

        A chunk switch or a stall's end shows in the observations as the buffer holding more than
        one tick's execution leaves of it (``chunk_remaining`` above ``max(previous - 1, 0)``),
        derived here from successive observations so the controller need not report it. A new
        chunk that lands with exactly one action fewer than the old one is not seen (the robot's
        motion then does not restart either).
        """
        prev, self._prev_remaining = self._prev_remaining, obs.chunk_remaining
        if self.config.settle_ticks == 0:
            return False
        if prev is not None and obs.chunk_remaining > max(prev - 1, 0):
            self._settle_left = self.config.settle_ticks
        if self._settle_left > 0:
            self._settle_left -= 1
            return True
        return False

    def _may_preempt(self, obs: DeciderObservation) -> bool:
        """Whether the link is fast enough for a preemption (always, without the extension)."""
        limit = self.config.preempt_max_latency_s
        if limit is None or math.isnan(obs.last_latency_s):
            return True
        return obs.last_latency_s <= limit

    def _trigger(self, obs: DeciderObservation, reason: str, preempt: bool) -> Decision:
        self.counts[reason] += 1
        self._last_trigger_t = obs.t
        return Decision(
            "infer", split=resolve_split(self.config.trigger_split, obs.n_splits), preempt=preempt
        )


def make_rapid(variant: str = "rapid") -> RapidDecider:
    """Build the full RAPID, one of its :data:`ABLATIONS` or an extension, by agent name."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown RAPID variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    return RapidDecider(VARIANTS[variant], name=variant)


__all__ = [
    "ABLATIONS",
    "DEFAULT_CONFIG",
    "VARIANTS",
    "ImportanceParts",
    "RapidConfig",
    "RapidDecider",
    "acc_weight",
    "importance",
    "importance_parts",
    "make_rapid",
    "resolve_split",
]
