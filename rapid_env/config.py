"""The frozen configuration of an environment instance: names and numbers, nothing built.

Every field is a name or a number that the CLI, the RAPID env and W&B config share. Building the
parts a configuration names is :mod:`rapid_env.build`'s job (the core parts) and
:mod:`rapid_env.compose`'s (the policy and decider, by name).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rapid_env.tasks.limits import DEFAULT_CAMERA, image_shape, mw_steps_per_tick

MAX_CHUNK_SIZE = 256
MAX_EPISODE_S = 3600.0
"""One simulated hour: an upper bound that catches a typo (seconds given as milliseconds)."""
MAX_IN_FLIGHT = 64
"""Requests in flight at once: far above any decider's use (2), low enough to bound the queue."""
MAX_REQUEST_TIMEOUT_S = 60.0
"""A lost request is given up within a simulated minute (an episode is seconds long)."""
MAX_PROPRIO_WINDOW_S = 60.0
"""The longest proprioception history a decider may ask for (the task keeps a few seconds)."""

HoldPolicy = Literal["hold", "repeat_last"]
Align = Literal["executed", "time"]

PlacementChoice = Literal["edge-prefix", "edge-suffix", "best"]
PLACEMENT_CHOICES: tuple[str, ...] = ("edge-prefix", "edge-suffix", "best")
"""``EnvConfig.placement``: the cost model's two placements, or the cheaper per request."""
LoopCostChoice = Literal["per-pass", "once"]
LOOP_COST_CHOICES: tuple[str, ...] = ("per-pass", "once")
"""``EnvConfig.loop_cost``: the cost model's loop costs (``rapid_env.cost.LOOP_COSTS``)."""
ActionContract = Literal["chunk", "single"]
ACTION_CONTRACTS: tuple[str, ...] = ("chunk", "single")
"""``EnvConfig.action_contract``: what one policy call delivers to the robot."""
DEVICE_FORMS: tuple[str, ...] = ("cpu", "cuda", "cuda:N", "mps")
"""``EnvConfig.device``'s forms (``N``: a GPU index); presence is checked as the policy builds."""
DTYPE_CHOICES: tuple[str, ...] = ("float32", "bfloat16", "float16")
"""``EnvConfig.dtype``: the precision of the policy's weights and activations."""
PolicyTiming = Literal["profile", "measured"]
POLICY_TIMINGS: tuple[str, ...] = ("profile", "measured")
"""``EnvConfig.policy_timing``: how a request to a policy served elsewhere is timed."""


@dataclass(frozen=True)
class ControlConfig:
    """Control-loop settings.

    Attributes:
        hold_policy: what the robot does when the chunk has run out: ``hold`` (stay where it is,
            gripper effort unchanged) or ``repeat_last`` (keep applying the last action).
        max_in_flight: requests allowed in flight at once; a further ``infer`` is refused and
            counted (``refused_requests``). Two by default, so a critical moment can trigger a
            fresh request while a refill is still on its way (newest request wins, see
            :mod:`rapid_env.delivery`).
        align: how an arriving chunk is aligned to now (:mod:`rapid_env.delivery`).
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
        if not _int_in(self.max_in_flight, 1, MAX_IN_FLIGHT):
            raise ValueError(
                f"max_in_flight={self.max_in_flight!r}; allowed: an int in 1..{MAX_IN_FLIGHT}"
            )
        for name, hi in (("request_timeout_s", MAX_REQUEST_TIMEOUT_S),
                         ("proprio_window_s", MAX_PROPRIO_WINDOW_S)):
            value = getattr(self, name)
            if not _number_in(value, 0.0, hi) or value == 0:
                raise ValueError(
                    f"{name}={value!r}; allowed: a finite number of seconds in (0, {hi:g}]"
                )


@dataclass(frozen=True)
class EnvConfig:
    """Everything that defines an episode besides the seed and the decider.

    Numbers are checked here, so a bad one fails when the configuration is made, before any
    episode (names are checked against their registries when the parts are built). This is the
    one check for every path in: ``rapid-eval``'s flags, ``gym.make("rapid_env/Rapid-v0", ...)``
    keywords and :func:`dataclasses.replace` all build an ``EnvConfig``. Every number must be
    finite and within its range; ``max_episode_s`` must hold at least one control tick, so an
    episode never runs past the time it was given.

    Attributes:
        trust_checkpoint_code: allow a checkpoint folder to name code to import (the
            ``predict`` hook of an ``hf:`` checkpoint's ``rapid_env_adapter.json``); off by
            default, so no file inside a checkpoint can switch code loading on by itself.
        edge_budget_gib: a fixed, memory-bounded partition: the edge holds the deepest prefix of
            the model's blocks whose edge memory fits in this many GiB, and every request that
            names no split uses it (instead of the planner's choice for the link). None (the
            default): no fixed partition. The paper's regime uses 2.4 (RAPID) and 4.7 (the
            vision-triggered baseline); see docs/paper.md.
        placement: which end of the model the edge holds (docs/cost_model.md): ``edge-prefix``
            (its first blocks; the default), ``edge-suffix`` (its last blocks, the LM or action
            head included: the cloud runs the front on the uploaded input and ships the cut
            activation down), or ``best`` (per request that names no split, whichever of the
            two is cheaper in closed form on the link estimate, each at its fixed partition or
            its best split). A split ``k`` is the number of blocks on the edge under all three.
        loop_cost: what a split inside the model's loop costs on the link: ``per-pass`` (a
            round trip per pass; the default) or ``once`` (the cut state crosses once, the rest
            of the loop runs on one side; compute unchanged).
        action_contract: ``chunk`` (the robot executes the policy's whole chunk; the default) or
            ``single`` (one action per call: the first action of each chunk, and deciders see
            ``chunk_size == 1``, so the refill rule asks again every tick), as OpenVLA-7B
            answers with one action per 7-token call.
        device: the torch device the policy's model runs on: ``cpu`` (the default), ``cuda``,
            ``cuda:N`` or ``mps``. Only the form is checked here (this module imports no torch);
            a device absent from the machine is refused when the policy is built.
        dtype: the precision of the policy's weights and activations: ``float32`` (the
            default), ``bfloat16`` or ``float16`` (a 7B checkpoint fits a GPU in half
            precision). Actions always come back as float32 numpy arrays on the CPU.
        policy_timing: how a request to a policy served elsewhere (``openpi:ws://...``) is timed
            in virtual time: ``profile`` (the default: by the cost profile, so records stay
            deterministic; the measured round trip is only reported) or ``measured`` (by the
            round trip measured on the wall clock, what a robot on that server would see). Which
            policies allow ``measured`` is checked when the parts are built.
    """

    task: str = "reach"
    policy: str = "chunk-regress"  # a trained family drives the robot unless told otherwise
    noise: str = "clean"
    link: str = "constant:20:40"
    profile: str = "openvla-7b"
    edge: str = "jetson-agx-orin"
    cloud: str = "a100"
    image_size: int = 64
    camera: str = DEFAULT_CAMERA
    quality: str = "fast"
    control_hz: float = 20.0
    chunk_size: int = 8
    max_episode_s: float = 10.0
    control: ControlConfig = field(default_factory=ControlConfig)
    trust_checkpoint_code: bool = False
    edge_budget_gib: float | None = None
    placement: PlacementChoice = "edge-prefix"
    loop_cost: LoopCostChoice = "per-pass"
    action_contract: ActionContract = "chunk"
    device: str = "cpu"
    dtype: str = "float32"
    policy_timing: PolicyTiming = "profile"

    def __post_init__(self) -> None:
        image_shape(self.image_size)
        if not _is_device(self.device):
            raise ValueError(f"device={self.device!r}; allowed: {', '.join(DEVICE_FORMS)}")
        if not isinstance(self.dtype, str) or self.dtype not in DTYPE_CHOICES:
            raise ValueError(f"dtype={self.dtype!r}; allowed: {', '.join(DTYPE_CHOICES)}")
        for name, allowed in (("placement", PLACEMENT_CHOICES), ("loop_cost", LOOP_COST_CHOICES),
                              ("action_contract", ACTION_CONTRACTS),
                              ("policy_timing", POLICY_TIMINGS)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                raise ValueError(f"{name}={value!r}; allowed: {', '.join(allowed)}")
        if self.edge_budget_gib is not None and (
            not _number_in(self.edge_budget_gib, 0.0, 1e6) or self.edge_budget_gib == 0
        ):
            raise ValueError(
                f"edge_budget_gib={self.edge_budget_gib!r}; allowed: None or a finite number of "
                "GiB > 0"
            )
        mw_steps_per_tick(self.control_hz)
        if not _int_in(self.chunk_size, 1, MAX_CHUNK_SIZE):
            raise ValueError(
                f"chunk_size={self.chunk_size!r}; allowed: an int in 1..{MAX_CHUNK_SIZE}"
            )
        if not _number_in(self.max_episode_s, 0.0, MAX_EPISODE_S) or self.max_episode_s == 0:
            raise ValueError(
                f"max_episode_s={self.max_episode_s!r}; allowed: a finite number of seconds in "
                f"(0, {MAX_EPISODE_S:g}]"
            )
        if self.max_episode_s * self.control_hz < 1 - 1e-9:
            raise ValueError(
                f"max_episode_s={self.max_episode_s!r} is shorter than one control tick at "
                f"control_hz={self.control_hz!r}; allowed: >= {1 / self.control_hz:g} s"
            )
        if not isinstance(self.trust_checkpoint_code, bool):
            raise ValueError(
                f"trust_checkpoint_code={self.trust_checkpoint_code!r}; allowed: True, False"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for W&B config and records.

        Fields added after a store format was fixed (:data:`LATE_FIELDS`) are left out while they
        hold their default, so the episode keys of existing results stores do not change.
        """
        d = asdict(self)
        for name, default in LATE_FIELDS.items():
            if d.get(name) == default:
                del d[name]
        return d


LATE_FIELDS: dict[str, Any] = {
    "edge_budget_gib": None,
    "placement": "edge-prefix",
    "loop_cost": "per-pass",
    "action_contract": "chunk",
    "device": "cpu",
    "dtype": "float32",
    "policy_timing": "profile",
}
"""Fields added after the results store's keys were fixed, with the default that omits them."""


def _is_device(value: object) -> bool:
    """Whether ``value`` has one of :data:`DEVICE_FORMS` (``cuda:N``: N a decimal index)."""
    if not isinstance(value, str):
        return False
    kind, sep, index = value.partition(":")
    if not sep:
        return kind in ("cpu", "cuda", "mps")
    return kind == "cuda" and index.isascii() and index.isdigit() and len(index) <= 4


def _int_in(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _number_in(value: object, lo: float, hi: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and lo <= value <= hi
    )
