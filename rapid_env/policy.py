"""The Policy seam: what turns an observation into an action chunk, and how the loop runs one.

A VLA (small executable model, or a user's real checkpoint) and the scripted expert all implement
this protocol, so the controller never knows which it is running. The protocol lives in the
core, beside the loop that calls it; the agents layer implements it (``rapid_env.agents.policy``
re-exports these names for code written before the move).

:func:`run_policy` is the loop's one call into a policy: it runs the model (through its split
runtime when it has one), and turns every way a user's model can fail into a recorded fault
instead of an exception, because a broken model must not end a sweep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from rapid_env.record import REMOTE_ERROR

if TYPE_CHECKING:
    from rapid_env.task import Task


@dataclass(frozen=True)
class PolicyInput:
    """What a policy sees when it is asked for a chunk.

    Attributes:
        image: the (possibly noisy) camera frame, uint8 HxWx3, or None when the policy said it
            does not read images (``needs_image`` False) and nothing else rendered one.
        proprio: end-effector xyz and gripper opening.
        instruction: the task sentence.
        sim: privileged handle on the task (:class:`~rapid_env.task.Task`). Only a scripted
            expert (a stand-in for a model) may read it, narrowing it to its own suite's task
            class for the simulator's handles; a learned policy must not.
        images: every camera the policy asked for (its ``cameras`` attribute), by camera name,
            each through the same visual noise as ``image``; empty for a one-camera policy. A
            LIBERO policy reads ``agentview`` and ``eye_in_hand`` here, the way OpenVLA-OFT and
            pi0 read a third-person and a wrist view.
    """

    image: np.ndarray | None
    proprio: np.ndarray
    instruction: str
    sim: Task | None = None
    images: Mapping[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class Policy(Protocol):
    """Emits action chunks: arrays of shape (chunk_size, action_dim) in the task's action space.

    Meta-World's actions are 4-D (xyz delta, gripper), LIBERO's 7-D (xyz, axis-angle, gripper).
    A policy that reads more than the task's main camera names them in an optional ``cameras``
    attribute (see :class:`PolicyInput`).
    """

    name: str
    chunk_size: int
    needs_image: bool

    def reset(self, rng: np.random.Generator) -> None:
        """Start a new episode; all randomness comes from ``rng``."""
        ...

    def act(self, inp: PolicyInput) -> np.ndarray:
        """Return an action chunk of shape (chunk_size, action_dim), one action per control tick."""
        ...


@dataclass(frozen=True)
class PolicyResult:
    """What one policy call produced.

    Attributes:
        chunk: the validated action chunk, float32 (chunk_size, action_dim), or None after a
            fault.
        fault: why there is no chunk (``policy_error: ...``, ``policy_bad_shape: ...``,
            ``policy_nonfinite_action``), None when there is one.
        exec_bytes: bytes the executable model really serialised at the split (0 when the policy
            has no split runtime or ran whole on the edge).
        measured_rtt_s: wall-clock seconds of the call to a policy served elsewhere, as this host
            saw it (its ``last_round_trip``); None for an in-process policy or a failed call.
        server_s: that server's own compute for the call, as it reported it; None when it did
            not say.
    """

    chunk: np.ndarray | None
    fault: str | None
    exec_bytes: int = 0
    measured_rtt_s: float | None = None
    server_s: float | None = None


class RemotePolicyError(Exception):
    """A policy served elsewhere could not answer; its ``fault`` is a ``remote_error``.

    Raised by a policy whose whole model runs on a server (``openpi:ws://...``) when the call
    fails on the way. :func:`run_policy` records :attr:`fault` as it is, so the record's schema
    tells the infrastructure's failures (``ServerUnavailable``, ``DeadlineExceeded``: the episode
    is invalid) from the served model's (``RequestRejected: INTERNAL``: data about the policy),
    as for ``rapid-serve`` (:data:`rapid_env.record.INFRA_REMOTE_ERRORS`).

    Args:
        error: the error's class as the record names it (``ServerUnavailable`` ...).
        code: a gRPC-style status (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, ``INTERNAL``).
        message: what happened, one line.
    """

    def __init__(self, error: str, code: str, message: str) -> None:
        super().__init__(f"{error}: {code}: {message}")
        self.fault = f"{REMOTE_ERROR}: {error}: {code}: {' '.join(message.split())}"


class PolicyActionFault(Exception):
    """A policy's actions that cannot be used, found before its chunk reaches the loop's check.

    A policy that maps native actions to the task's (an openpi server's reply through an action
    map) sees a wrong width or a non-finite value before mapping, where the mapped chunk might
    hide it; raising this records the fault :func:`run_policy` would have recorded for the native
    chunk, so such faults stay data about the policy.

    Args:
        fault: ``policy_bad_shape: <native shape>`` or ``policy_nonfinite_action``.
    """

    def __init__(self, fault: str) -> None:
        if not (fault.startswith("policy_bad_shape: ") or fault == "policy_nonfinite_action"):
            raise ValueError(f"fault={fault!r}; allowed: 'policy_bad_shape: <shape>', "
                             f"'policy_nonfinite_action'")
        super().__init__(fault)
        self.fault = fault


def run_policy(
    policy: Policy, inp: PolicyInput, split: int, n_blocks: int, action_dim: int = 4
) -> PolicyResult:
    """Run ``policy`` on ``inp`` for a request split at block ``split`` of ``n_blocks``.

    ``action_dim`` is the task's action width (its ``action_space``): a chunk of another width
    is a ``policy_bad_shape`` fault, as a model trained on another suite would produce.

    An executable model with a split runtime (``act_split``) runs through it at the matching depth
    and the bytes it serialised are counted; fp32 split equals unsplit, so the chunk is the one
    ``act`` would give. Any exception (``SystemExit`` too; only ``KeyboardInterrupt`` passes), a
    wrong shape or a non-finite action becomes a fault; a :class:`RemotePolicyError` its own
    ``remote_error``, a :class:`PolicyActionFault` its ``fault``. A policy served elsewhere
    reports its call's wall-clock round trip in a ``last_round_trip`` attribute, ``(rtt_s,
    server_s or None)`` or None, which the result carries (the record's ``measured_rtt_ms_mean``
    and ``server_ms_mean``).
    """
    exec_bytes = 0
    try:
        run_split = getattr(policy, "act_split", None)
        if run_split is not None and split < n_blocks:
            chunk, nbytes = run_split(inp, split / n_blocks)
            exec_bytes = int(nbytes)
            chunk = np.asarray(chunk, dtype=np.float32)
        else:
            chunk = np.asarray(policy.act(inp), dtype=np.float32)
    except KeyboardInterrupt:
        raise  # the user asked to stop: not the model's fault
    except RemotePolicyError as exc:  # the call failed on the way, or the served model did
        return PolicyResult(None, exc.fault, exec_bytes)
    except PolicyActionFault as exc:  # the call worked: its round trip is measured
        rtt, server = getattr(policy, "last_round_trip", None) or (None, None)
        return PolicyResult(None, exc.fault, exec_bytes, rtt, server)
    except BaseException as exc:  # a user's model failing (even sys.exit) must not end the sweep
        return PolicyResult(None, f"policy_error: {type(exc).__name__}: {exc}", exec_bytes)
    rtt_s, server_s = getattr(policy, "last_round_trip", None) or (None, None)
    if chunk.ndim != 2 or chunk.shape[1] != action_dim or chunk.shape[0] < 1:
        return PolicyResult(None, f"policy_bad_shape: {chunk.shape}", exec_bytes, rtt_s, server_s)
    if not np.all(np.isfinite(chunk)):
        return PolicyResult(None, "policy_nonfinite_action", exec_bytes, rtt_s, server_s)
    return PolicyResult(chunk, None, exec_bytes, rtt_s, server_s)
