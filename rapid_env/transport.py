"""The transport seam: how a request's stages are timed, from the split to the chunk's arrival.

Given the split point and the request time, a transport answers *when* the chunk arrives and what
each stage took::

    latency = edge part(k) + uplink(bytes_k) + cloud part(k) + downlink(chunk) [+ queueing]

:class:`SimulatedTransport` walks the cost model's plan over a simulated
:class:`~rapid_env.link.Link` in virtual time, so its answer depends only on the seed and the
configuration.

A transport that runs the policy's cloud half on a real server (``rapid_env.serve.transport``'s
gRPC one) cannot time a chunk the loop computed itself: the server computes it. Such a transport
implements :class:`RemotePolicyTransport` as well: its ``request`` runs the policy's edge part
here, really sends the boundary bytes and returns the reply's chunk *and* the request's timing, in
one call; the controller asks a transport that has ``request`` for both, and any other for the
timing only (:func:`~rapid_env.policy.run_policy` computes the chunk). Its ``TimedRequest`` carries
what was measured (``measured_edge_s``, ``measured_rtt_s``, ``server_s``) and the fault of a
request that failed on the way (``fault``), all None on a simulated link.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rapid_env.cost.model import InferencePlan
from rapid_env.link import Link, TransferResult
from rapid_env.policy import Policy, PolicyInput, PolicyResult


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
class TimedRequest:
    """One request's timing as the transport saw it.

    Attributes:
        arrival: simulated time at which the chunk is back on the robot; None when a transfer was
            lost (the controller gives the request up at its deadline).
        edge_s: seconds of edge compute.
        cloud_s: seconds of cloud compute.
        up_s: seconds the uplink transfers took (queueing included).
        down_s: seconds the downlink transfers took.
        bytes_up: bytes handed to the uplink (also when the transfer was then lost).
        bytes_down: bytes handed to the downlink.
        transfers: every link transfer of the request, in order (for the estimator and plots).
        measured_edge_s: wall-clock seconds the edge part really took (a remote transport; None
            on a simulated link, whose ``edge_s`` is the cost model's).
        measured_rtt_s: wall-clock seconds of the remote call as the client saw it (upload,
            server compute, download); None on a simulated link or when the call failed.
        server_s: the server's own wall-clock compute for the request, as it reported it; None on
            a simulated link or when the call failed.
        fault: why a remote request was lost (``remote_error: ...``); the controller records it
            once, when the request is sent. None when nothing failed.
        pending: the timing is not known yet: a shared resource (a fleet's cloud queue,
            :class:`DeferredTransport`) decides it later; the request is neither delivered nor
            lost until then, and every other field is a placeholder.
    """

    arrival: float | None
    edge_s: float = 0.0
    cloud_s: float = 0.0
    up_s: float = 0.0
    down_s: float = 0.0
    bytes_up: int = 0
    bytes_down: int = 0
    transfers: tuple[TransferResult, ...] = ()
    measured_edge_s: float | None = None
    measured_rtt_s: float | None = None
    server_s: float | None = None
    fault: str | None = None
    pending: bool = False


PENDING = TimedRequest(None, pending=True)
"""The placeholder timing of a request a :class:`DeferredTransport` has not timed yet."""


class Transport(Protocol):
    """Times one inference request split at ``split``, sent at simulated time ``t``."""

    def send(self, split: int, t: float) -> TimedRequest:
        """Return when the request's chunk arrives and what each stage took."""
        ...


@runtime_checkable
class RemotePolicyTransport(Protocol):
    """A transport that produces the chunk itself: the policy's cloud half runs remotely.

    The controller calls :meth:`request` instead of :func:`~rapid_env.policy.run_policy` followed
    by :meth:`Transport.send`. Faults are data, never exceptions: a policy that fails on the edge
    returns a :class:`PolicyResult` with its ``fault`` (delivered at ``arrival`` like any policy
    fault); a call that fails on the way returns ``arrival=None`` and the
    :attr:`TimedRequest.fault`, and the controller gives the request up at its deadline.
    """

    def request(
        self, policy: Policy, inp: PolicyInput, split: int, t: float
    ) -> tuple[PolicyResult, TimedRequest]:
        """Run ``policy`` on ``inp`` split at ``split`` (a cost-model block), sent at ``t``."""
        ...


@runtime_checkable
class DeferredTransport(Protocol):
    """A transport whose requests' timing is decided later, by a resource others share.

    Robots that share a cloud queue for it: when a request's cloud stage starts depends on
    requests other robots send later in virtual time but that reach the cloud first
    (:mod:`rapid_env.fleet`). The controller then sends the request with :data:`PENDING`
    timing, and the transport calls ``done`` with the real :class:`TimedRequest` once its
    shared resources have decided, always before the simulated time of its arrival.
    """

    def submit(
        self,
        cost: CostPlanner,
        split: int,
        t: float,
        done: Callable[[TimedRequest], None],
    ) -> None:
        """Send a request split at ``split`` of ``cost``'s plan at ``t``; ``done`` gets it timed."""
        ...


def early_exit(cost: CostPlanner, split: int, t: float) -> TimedRequest:
    """Time an early exit at ``split``: the edge's part of the plan only, nothing on the link.

    The edge part is the sum of the plan's edge stages: a split inside the model's loop runs
    the edge's blocks on every pass (fed by its own exit head instead of the cloud's tokens), so
    an early exit costs the edge exactly what an escalated request at the same split does.

    An early exit needs the edge to hold the model's *front*: under the ``edge-suffix``
    placement the edge holds its tail, which cannot answer without the cloud's prefix, so an
    early exit at a split strictly between cloud-only and edge-only raises ValueError there.

    Example:
        >>> from rapid_env.cost import build_cost_model
        >>> round(early_exit(build_cost_model(), 11, 0.0).edge_s, 4)
        0.1878

    Raises:
        ValueError: the plan of ``split`` puts the model's tail on the edge (``edge-suffix``).
    """
    plan = cost.plan(split)
    if plan.placement != "edge-prefix" and 0 < split < cost.n_blocks:
        raise ValueError(
            f"an early exit at split {split} under placement={plan.placement!r}: the edge holds "
            "the model's tail and cannot answer without the cloud's prefix; allowed: placement "
            f"'edge-prefix', or split 0 / {cost.n_blocks}"
        )
    edge_s = plan.edge_seconds
    return TimedRequest(t + edge_s, edge_s=edge_s)


class SimulatedTransport:
    """The cost model's stages, run one after another over a simulated link, in virtual time.

    Compute stages add their modelled seconds; transfer stages go through the link, which queues
    them behind earlier transfers in the same direction. A lost transfer ends the request: nothing
    after it is sent, and ``arrival`` is None.

    Example:
        >>> from rapid_env.link import IdealLink
        >>> from rapid_env.cost.model import InferencePlan, Stage
        >>> class OneStage:
        ...     n_blocks = 1
        ...     def plan(self, k): return InferencePlan(k, (Stage("edge", 0.1, 0),))
        >>> SimulatedTransport(OneStage(), IdealLink()).send(1, 2.0).arrival
        2.1
    """

    def __init__(self, cost: CostPlanner, link: Link) -> None:
        self.cost = cost
        self.link = link

    def send(self, split: int, t: float) -> TimedRequest:
        """Walk the plan of ``split`` from time ``t`` (see the class docstring)."""
        edge_s = cloud_s = up_s = down_s = 0.0
        bytes_up = bytes_down = 0
        transfers: list[TransferResult] = []
        now: float | None = t
        for stage in self.cost.plan(split).stages:
            assert now is not None
            if stage.kind == "edge":
                edge_s += stage.seconds
                now += stage.seconds
                continue
            if stage.kind == "cloud":
                cloud_s += stage.seconds
                now += stage.seconds
                continue
            res = self.link.transfer(int(stage.nbytes), now, stage.kind)
            transfers.append(res)
            if stage.kind == "up":
                bytes_up += int(stage.nbytes)
            else:
                bytes_down += int(stage.nbytes)
            if res.arrival is None:
                now = None
                break
            if stage.kind == "up":
                up_s += res.arrival - now
            else:
                down_s += res.arrival - now
            now = res.arrival
        return TimedRequest(
            now, edge_s, cloud_s, up_s, down_s, bytes_up, bytes_down, tuple(transfers)
        )
