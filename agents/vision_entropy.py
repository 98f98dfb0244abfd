"""``vision-entropy``: the environment-oriented offloading trigger that RAPID argues against.

Vision- and uncertainty-triggered edge-cloud schemes (the SAFE / ISAR-like baselines of RAPID's
Table I and III) run the model on the edge and consult the big cloud model when the scene looks
uncertain. RAPID's point is that visual noise raises those signals too, so such a trigger offloads
more, and gets slower, exactly when the camera is worst. This decider is that trigger:

* **image signal** (default): Shannon entropy, in bits, of the grey-level histogram (64 levels)
  of the frame area-averaged to about ``analysis_size`` pixels. Pixel noise spreads the histogram
  (measured on Meta-World frames at 64 px, training seeds 0-2: clean 4.17 bits; gaussian_noise
  severity 1..5: 4.90, 5.11, 5.27, 5.36, 5.38; the ``visual-noise`` preset 4.67 +- 0.19; fog and
  impulse noise rise too, a blur barely moves it). The score is the excess over a reference
  entropy: by default a fixed clean-scene reference measured once on training frames (a deployed
  system calibrates on its clean camera); with ``reference_bits=None`` the mean of the episode's
  first ``baseline_frames`` frames, which cancels a corruption present from the start and only
  reacts to changes within the episode.
* **policy signal** (``signal="image+policy"``): the model's own action uncertainty where its
  family exposes one (:meth:`rapid_env.agents.vla.policy.VLAPolicy.action_uncertainty`: flow
  sample spread, ar-token bin entropy). Reading it costs a full model pass on the edge every tick;
  that modelled cost is charged to ``model_overhead_s`` (the runner reports it as
  ``decision_model_ms`` and in ``decision_overhead_pct``). It is off by default because that
  charge is as large as running edge-only inference at the control rate.

A tick whose signal exceeds its threshold offloads: it requests a chunk at ``offload_split``
(0: ship the raw observation, run everything in the cloud) when nothing is in flight. Otherwise
the shared refill rule (:mod:`rapid_env.agents.refill`) requests at ``refill_split`` (all-edge by
default: when the scene looks certain the edge model is trusted). The image-entropy CPU time is
measured by the runner like any decider's; it is a bincount over ~1k pixels.

``mode="escalate"`` is the paper's regime (docs/paper.md): the edge holds a fixed part of the
model (the env's ``edge_budget_gib`` partition) and runs it for every chunk the refill rule asks
for; only when the signal is high does that request continue to the cloud for the rest
(``Decision(escalate=True)``), otherwise the edge's exit head answers (an early exit). A trigger
therefore adds uplink + cloud + downlink on top of the edge part, and the mean latency grows with
the trigger rate.

``untriggered`` says what such a baseline does when its signal is low. ``early-exit`` (the
default) is the reading above. ``cross`` is the reading that fits a baseline whose requests cross
its partition nearly always (the paper's Table III): every refill continues to the cloud
(``Decision(escalate=True)``), the detector is a SAFE-like probe on the edge part's features
charged ``detector_ms`` of edge time on every tick it is read (to ``model_overhead_s``, so it shows
in ``decision_model_ms`` and ``decision_overhead_pct``), and a trigger additionally asks for a
fresh plan at once, beyond the refill rule, so the offload rate rises with the noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from rapid_env.agents.refill import check_max_in_flight, refill_due
from rapid_env.decision import KEEP, DeciderBase, DeciderContext, DeciderObservation, Decision
from rapid_env.policy import PolicyInput

Signal = Literal["image", "image+policy"]
SIGNALS: tuple[str, ...] = ("image", "image+policy")
Mode = Literal["offload", "escalate"]
MODES: tuple[str, ...] = ("offload", "escalate")
Untriggered = Literal["early-exit", "cross"]
UNTRIGGERED: tuple[str, ...] = ("early-exit", "cross")
GREY_LEVELS = 64
_MAX_BITS = float(np.log2(GREY_LEVELS))
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
CLEAN_REFERENCE_BITS = 4.17
"""Grey-level entropy of clean Meta-World frames (corner camera, 64 px pooled to 32 px, 64 levels),
measured on training seeds 0-2 of pick-place along random-action rollouts (4.17 +- 0.03; reach,
push and drawer-open agree within 0.1 bit)."""
POLICY_THRESHOLDS: dict[str, float] = {"flow": 0.13, "ar-token": 0.44}
"""Default policy-uncertainty thresholds per shipped family: 1.5x the mean on clean reach frames of
training seeds 0-2 (flow sample spread 0.084, ar-token normalised bin entropy 0.29); the two
signals have different scales, so one number cannot serve both."""


def grey_entropy_bits(image: np.ndarray, analysis_size: int = 32) -> float:
    """Entropy (bits) of the 64-level grey histogram of ``image`` area-pooled to ~analysis_size.

    Pooling by an integer factor keeps the cost at ~analysis_size**2 pixels whatever the render
    size, and makes the signal comparable across render sizes.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    h, w = image.shape[:2]
    f = max(1, min(h, w) // analysis_size)
    grey = image[: h // f * f, : w // f * f].astype(np.float32) @ _LUMA
    if f > 1:
        grey = grey.reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    levels = np.minimum((grey * (GREY_LEVELS / 256.0)).astype(np.intp), GREY_LEVELS - 1)
    p = np.bincount(levels.ravel(), minlength=GREY_LEVELS) / levels.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


@dataclass(frozen=True)
class VisionEntropyConfig:
    """Parameters of the vision-entropy trigger.

    Attributes:
        signal: ``image`` (grey-level entropy only) or ``image+policy`` (also the policy's action
            uncertainty, charged a full edge model pass per tick).
        threshold_bits: offload when the frame's entropy exceeds the reference by more than this.
            0.25 bit puts the trigger at the 95th percentile of clean frames (4.42 bits): a
            detector calibrated for 5 % false alarms on clean scenes, as an uncertainty trigger
            would be. Measured on training seeds 0-3 of all ten MT10 tasks, expert rollouts,
            every 6th tick (clean 4.22 +- 0.12 bits, 95th percentile 4.42; ``interference``
            4.27 +- 0.14; ``visual-noise`` 4.82 +- 0.22; gaussian_noise:1 4.93). An earlier
            default of 1 bit never fired on the presets and left this baseline edge-only.
        reference_bits: the clean-scene entropy; None: the mean of the episode's first
            ``baseline_frames`` frames.
        baseline_frames: frames averaged for the episode reference (``reference_bits=None``).
        analysis_size: the frame is area-pooled by an integer factor to about this many pixels.
        policy_threshold: offload when the policy's uncertainty (in [0, 1], see
            ``VLAPolicy.action_uncertainty``) exceeds this; only with ``image+policy``. None: the
            family's default from :data:`POLICY_THRESHOLDS`.
        policy_samples: flow samples drawn for the spread.
        offload_split: split for a triggered request (0: all cloud).
        refill_split: split for refills on a quiet scene; None: all-edge.
        cooldown_s: minimum simulated time between two triggered requests (``offload`` mode and
            ``untriggered="cross"``).
        mode: ``offload`` (a trigger sends a request at ``offload_split`` at once; calm refills
            at ``refill_split``) or ``escalate`` (every refill runs the edge's partition; the
            signal decides whether it continues to the cloud; splits come from the env's
            partition, so ``offload_split``/``refill_split`` must stay at their defaults).
        untriggered: with ``mode="escalate"``, what a refill does when the signal is low:
            ``early-exit`` (the edge's exit head answers, nothing is sent) or ``cross`` (every
            refill continues to the cloud; a trigger also asks for a fresh plan at once, at most
            once per ``cooldown_s`` and while at most ``max_in_flight`` requests are in flight,
            i.e. with one slot beyond the refills, as RAPID's critical request has; the detector
            is charged ``detector_ms`` per tick). ``cross`` needs ``mode="escalate"``.
        detector_ms: edge milliseconds charged per tick for the detector in ``cross`` mode (a
            SAFE-like probe: a small head over features the edge part already computed; 0.7 ms
            is our estimate for a two-layer MLP on the Orin, not a measurement). Not charged in
            ``early-exit`` mode, whose image entropy is measured as decider CPU time.
        max_in_flight: refills the shared refill rule keeps in flight at once (1: wait for each
            chunk; 2 or more: pipelined, :func:`rapid_env.agents.refill.refill_due`).
    """

    signal: Signal = "image"
    threshold_bits: float = 0.25
    reference_bits: float | None = CLEAN_REFERENCE_BITS
    baseline_frames: int = 5
    analysis_size: int = 32
    policy_threshold: float | None = None
    policy_samples: int = 4
    offload_split: int = 0
    refill_split: int | None = None
    cooldown_s: float = 0.0
    mode: Mode = "offload"
    untriggered: Untriggered = "early-exit"
    detector_ms: float = 0.7
    max_in_flight: int = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}; allowed: {', '.join(MODES)}")
        if self.untriggered not in UNTRIGGERED:
            raise ValueError(
                f"untriggered={self.untriggered!r}; allowed: {', '.join(UNTRIGGERED)}"
            )
        if self.untriggered == "cross" and self.mode != "escalate":
            raise ValueError(
                f"untriggered='cross' with mode={self.mode!r}; allowed: mode='escalate' "
                "(only an escalating request has a partition to cross)"
            )
        if isinstance(self.detector_ms, bool) or not 0 <= self.detector_ms <= 1000:  # nan too
            raise ValueError(
                f"detector_ms={self.detector_ms!r}; allowed: a number of ms in [0, 1000]"
            )
        check_max_in_flight(self.max_in_flight)
        if self.mode == "escalate" and (self.offload_split != 0 or self.refill_split is not None):
            raise ValueError(
                f"offload_split={self.offload_split}, refill_split={self.refill_split}: these "
                "apply to mode='offload'; mode='escalate' splits at the env's fixed partition "
                "(edge_budget_gib)"
            )
        if self.signal not in SIGNALS:
            raise ValueError(f"signal={self.signal!r}; allowed: {', '.join(SIGNALS)}")
        if not self.threshold_bits > 0:
            raise ValueError(f"threshold_bits must be > 0, got {self.threshold_bits!r}")
        if self.reference_bits is not None and not 0 <= self.reference_bits <= _MAX_BITS:
            raise ValueError(
                f"reference_bits must be None or in [0, {_MAX_BITS:g}], got {self.reference_bits!r}"
            )
        if self.baseline_frames < 1 or self.analysis_size < 1 or self.policy_samples < 2:
            raise ValueError(
                f"need baseline_frames >= 1, analysis_size >= 1, policy_samples >= 2, got "
                f"{self.baseline_frames}, {self.analysis_size}, {self.policy_samples}"
            )
        if self.policy_threshold is not None and not 0 < self.policy_threshold <= 1:
            raise ValueError(f"policy_threshold must be in (0, 1], got {self.policy_threshold!r}")
        if self.offload_split < 0 or (self.refill_split is not None and self.refill_split < 0):
            raise ValueError(
                f"splits must be >= 0, got offload_split={self.offload_split}, "
                f"refill_split={self.refill_split}"
            )
        if not self.cooldown_s >= 0:  # nan too: it would silence the trigger
            raise ValueError(f"cooldown_s must be >= 0, got {self.cooldown_s!r}")


class VisionEntropyDecider(DeciderBase):
    """Offloads to the cloud when the camera frame (or the policy) looks uncertain.

    Attributes:
        model_overhead_s: modelled edge seconds of policy passes run this episode for the signal.
        last_entropy_bits / last_score_bits / last_policy_uncertainty: the latest signals (for
            inspection and tests).
        triggers: ticks this episode on which the signal was over its threshold.
        cross_triggers: requests sent beyond the refill rule in ``untriggered="cross"`` mode.
    """

    needs_image = True

    def __init__(
        self, config: VisionEntropyConfig | None = None, name: str = "vision-entropy"
    ) -> None:
        self.config = config or VisionEntropyConfig()
        self.name = name
        self._context: DeciderContext | None = None
        self._pass_s = 0.0
        self._policy_threshold = 1.0
        self._rng = np.random.default_rng(0)
        self._baseline: list[float] = []
        self.model_overhead_s = 0.0
        self.last_entropy_bits = float("nan")
        self.last_score_bits = float("nan")
        self.last_policy_uncertainty: float | None = None
        self.triggers = 0
        self.cross_triggers = 0

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode: forget the episode reference and the overhead; keep ``rng``."""
        self._rng = rng
        self._baseline = []
        self.model_overhead_s = 0.0
        self.last_entropy_bits = float("nan")
        self.last_score_bits = float("nan")
        self.last_policy_uncertainty = None
        self.triggers = 0
        self.cross_triggers = 0

    def bind(self, context: DeciderContext) -> None:
        """Keep the policy and price one full edge pass (the charge per policy probe)."""
        self._context = context
        self._pass_s = float(context.cost.plan(int(context.cost.n_blocks)).edge_seconds)
        cfg = self.config
        if cfg.signal == "image+policy":
            if cfg.policy_threshold is not None:
                self._policy_threshold = cfg.policy_threshold
            else:
                model_cfg = getattr(getattr(context.policy, "model", None), "cfg", None)
                family = getattr(model_cfg, "family", None)
                if family not in POLICY_THRESHOLDS and family != "chunk-regress":
                    raise ValueError(
                        f"no default policy_threshold for policy family {family!r}; set one, or "
                        f"use a family among: {', '.join(POLICY_THRESHOLDS)}"
                    )
                self._policy_threshold = POLICY_THRESHOLDS.get(str(family), 1.0)

    def image_score(self, image: np.ndarray) -> float:
        """Entropy excess (bits) of ``image`` over the reference; 0 while the reference forms."""
        cfg = self.config
        h = grey_entropy_bits(image, cfg.analysis_size)
        self.last_entropy_bits = h
        if cfg.reference_bits is not None:
            ref = cfg.reference_bits
        elif len(self._baseline) < cfg.baseline_frames:
            self._baseline.append(h)
            return 0.0
        else:
            ref = float(np.mean(self._baseline))
        return h - ref

    def policy_uncertainty(self, obs: DeciderObservation) -> float | None:
        """The policy's action uncertainty on this frame, charging one full edge pass."""
        ctx = self._context
        if ctx is None:
            raise RuntimeError(
                "vision-entropy with signal='image+policy' was not bound: call bind(context)"
            )
        probe = getattr(ctx.policy, "action_uncertainty", None)
        if probe is None:
            return None
        # What the policy would see now (frame, end-effector state, instruction): the context's
        # ``policy_input`` provider, since a decider observation carries joint data only.
        provide = getattr(ctx, "policy_input", None)
        if provide is None:
            raise RuntimeError(
                "signal='image+policy' needs DeciderContext.policy_input (a callable returning "
                "this tick's PolicyInput); this context has none"
            )
        inp: PolicyInput = provide()
        value = probe(inp, self._rng, self.config.policy_samples)
        if value is not None:
            self.model_overhead_s += self._pass_s
        return None if value is None else float(value)

    def _cross(self, obs: DeciderObservation, uncertain: bool) -> Decision:
        """``untriggered="cross"``: refills cross the partition; a trigger asks for a fresh plan.

        The detector read this tick's frame, so its edge time is charged whatever it answers.
        """
        cfg = self.config
        self.model_overhead_s += cfg.detector_ms * 1e-3
        if refill_due(obs, cfg.max_in_flight):
            return Decision("infer", escalate=True)
        if (
            uncertain
            and obs.in_flight <= cfg.max_in_flight  # one slot beyond the refills, as RAPID's
            and obs.since_request_s >= cfg.cooldown_s - 1e-9
        ):
            self.cross_triggers += 1
            return Decision("infer", escalate=True)
        return KEEP

    def decide(self, obs: DeciderObservation) -> Decision:
        """Compute the signal (every tick), then offload, refill or keep."""
        cfg = self.config
        if obs.image is None:
            raise ValueError("vision-entropy needs the camera frame (needs_image); got image=None")
        score = self.image_score(obs.image)
        self.last_score_bits = score
        uncertain = score > cfg.threshold_bits
        if cfg.signal == "image+policy":
            u = self.policy_uncertainty(obs)
            self.last_policy_uncertainty = u
            uncertain = uncertain or (u is not None and u > self._policy_threshold)
        if uncertain:
            self.triggers += 1
        if cfg.mode == "escalate" and cfg.untriggered == "cross":
            return self._cross(obs, uncertain)
        if cfg.mode == "escalate":
            due = refill_due(obs, cfg.max_in_flight)
            return Decision("infer", escalate=uncertain) if due else KEEP
        if uncertain:
            if obs.in_flight == 0 and obs.since_request_s >= cfg.cooldown_s:
                return Decision("infer", split=cfg.offload_split)
        if refill_due(obs, cfg.max_in_flight):
            edge = obs.n_splits - 1 if cfg.refill_split is None else cfg.refill_split
            return Decision("infer", split=edge)
        return KEEP
