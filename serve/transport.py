"""A real network in the loop: the policy's cloud half on a ``rapid-serve``, on the wall clock.

:class:`GrpcTransport` implements the core's :class:`~rapid_env.transport.RemotePolicyTransport`:
for each request the controller makes, it runs the edge part of the policy here (the executable
VLA's blocks ``0..k-1`` and the boundary's serialisation, :meth:`SplitRunner.edge`), really sends
the boundary bytes to the server (:meth:`PolicyClient.infer`) and returns the reply's chunk with
the request's timing. Virtual time is measured time: ::

    arrival = t + edge (measured here) + rtt (the call as the client saw it: upload, the
                                              server's compute, download)

and the record's stages are ``edge_s`` = the measured edge part, ``cloud_s`` = the server's own
compute (``server_ms`` of the reply), ``up_s`` = ``down_s`` = half of ``rtt - server`` each (the
network's share, split evenly: one clock cannot tell the directions apart).

**Faults are data, never hangs.** Every call runs under a deadline: what is left of
``request_timeout_s`` once the edge part is done. Any error of the call (the server gone,
``DEADLINE_EXCEEDED``, a refused token, a corrupted reply) loses the request: ``arrival`` is None,
its ``fault`` says ``remote_error: <Error>: <message>``, the controller records that fault once
and gives the request up at its deadline ``t + request_timeout_s`` in virtual time (the time a
robot would have waited), so ``lost_requests`` counts it and the decider's refill runs again.
The fault names the error's class and, for a server error, its gRPC status
(``remote_error: ServerUnavailable: UNAVAILABLE: ...``): from these the record's schema tells an
infrastructure fault (the server unreachable or gone, a refused token, the harness's deadline:
the episode is ``invalid`` and runs again on a rerun) from a fault of the served model
(:data:`rapid_env.record.INFRA_REMOTE_ERRORS`).

``remote:<host:port>`` link specs are this layer's (the core's ``parse_link`` does not know them):
:func:`check_remote` connects once before a sweep (``rapid-eval`` exits 2 when the server is not
reachable, refuses the token or runs another model), :func:`remote_controller` builds an episode
runner's controller. See ``docs/serve.md``, *A real network*.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rapid_env.config import EnvConfig
from rapid_env.link import TransferResult
from rapid_env.policy import Policy, PolicyInput, PolicyResult, run_policy
from rapid_env.transport import CostPlanner, TimedRequest

REMOTE_PREFIX = "remote:"
"""A link spec ``remote:<host:port>`` runs the policy's cloud half on a ``rapid-serve`` there."""

REMOTE_FORM = "remote:<host:port>"

TOKEN_FILE_ENV = "RAPID_SERVE_TOKEN_FILE"
"""Where a worker that was given no token file path looks for one (then ``RAPID_SERVE_TOKEN``)."""

CONNECT_TIMEOUT_S = 5.0
"""How long the one check before a sweep waits for the server's ``Info``."""

REMOTE_FAULT = "remote_error"
"""Prefix of the ``fault`` of a request lost on the way to or from the server."""

PROBES = 3
"""Calls that measure the nominal link (health round trips and probe requests) when a controller
is built."""


class Client(Protocol):
    """What :class:`GrpcTransport` needs of a :class:`~rapid_env.serve.client.PolicyClient`."""

    def infer(
        self,
        request_id: str,
        split: int,
        instruction: str,
        boundary: bytes,
        compression: str = "none",
        deadline_s: float | None = None,
    ) -> tuple[np.ndarray, float, float]:
        """Finish the forward remotely: (actions, server_ms, rtt_ms)."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


def is_remote(link: str) -> bool:
    """Whether ``link`` is a ``remote:`` spec (served by this module, not by the core)."""
    return link.startswith(REMOTE_PREFIX)


def remote_address(link: str) -> str:
    """The ``host:port`` of a ``remote:<host:port>`` spec; ValueError naming the form."""
    address = link[len(REMOTE_PREFIX):] if is_remote(link) else ""
    host, sep, port = address.rpartition(":")
    if not (host and sep and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"malformed link {link!r}; expected {REMOTE_FORM}, e.g. "
                         "remote:127.0.0.1:50051")
    return address


def executable_split(split: int, cost_blocks: int, model_blocks: int) -> int:
    """The executable model's block for the cost profile's split ``split`` (``act_split``'s map)."""
    depth = split / cost_blocks
    return min(model_blocks - 1, max(0, round(depth * model_blocks)))


def split_runtime(policy: Policy) -> Any:
    """The policy as a :class:`~rapid_env.agents.vla.policy.VLAPolicy`; ValueError otherwise."""
    from rapid_env.agents.vla.policy import VLAPolicy

    if not isinstance(policy, VLAPolicy):
        raise ValueError(
            f"policy {policy.name!r} has no split runtime, so it cannot run over a "
            f"{REMOTE_FORM} link; use an executable VLA (chunk-regress, ar-token, flow, ckpt:<dir>)"
        )
    return policy


class GrpcTransport:
    """Runs each request's edge part here and its cloud part on a ``rapid-serve`` (module doc).

    Args:
        client: a connected :class:`~rapid_env.serve.client.PolicyClient` (or a fake).
        policy: the local policy; an executable VLA (ValueError otherwise, at build time).
        cost: the cost model whose split points the deciders choose (``cost.n_blocks`` maps a
            split to the executable model's block, as ``VLAPolicy.act_split`` does).
        request_timeout_s: the controller's deadline; each call gets what is left of it after
            the edge part.
    """

    def __init__(
        self, client: Client, policy: Policy, cost: CostPlanner, request_timeout_s: float
    ) -> None:
        if not request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be > 0, got {request_timeout_s}")
        self.client = client
        self.vla = split_runtime(policy)
        self.cost = cost
        self.request_timeout_s = request_timeout_s
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]

    def request(
        self, policy: Policy, inp: PolicyInput, split: int, t: float
    ) -> tuple[PolicyResult, TimedRequest]:
        """The chunk and the timing of one request split at ``split``, sent at virtual ``t``."""
        if split >= self.cost.n_blocks:  # all edge: no network call, only the edge's time
            t0 = time.perf_counter()
            result = run_policy(policy, inp, split, self.cost.n_blocks)
            edge = time.perf_counter() - t0
            return result, TimedRequest(t + edge, edge_s=edge, measured_edge_s=edge)
        from rapid_env.agents.vla.split import SplitRunner

        vla = self.vla
        k = executable_split(split, self.cost.n_blocks, vla.model.n_blocks)
        t0 = time.perf_counter()
        try:
            blob = SplitRunner(vla.model, k, vla.compression).edge(vla.prepare(inp))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the edge part failing is the policy's fault, as locally
            edge = time.perf_counter() - t0
            fault = f"policy_error: {type(exc).__name__}: {exc}"
            return PolicyResult(None, fault), TimedRequest(t + edge, edge_s=edge,
                                                          measured_edge_s=edge)
        edge = time.perf_counter() - t0
        return self._call(k, inp.instruction, blob, t, edge)

    def _call(
        self, k: int, instruction: str, blob: bytes, t: float, edge: float
    ) -> tuple[PolicyResult, TimedRequest]:
        """Send the boundary; the reply's chunk and timing, or a lost request and its fault."""
        sent = t + edge
        budget = self.request_timeout_s - edge
        rid = f"{self._prefix}-{next(self._ids)}"
        try:
            if budget <= 0:
                raise TimeoutError(f"the edge part took {edge * 1e3:.1f} ms, the whole "
                                   f"request_timeout_s of {self.request_timeout_s * 1e3:.0f} ms")
            actions, server_ms, rtt_ms = self.client.infer(
                rid, k, instruction, blob, self.vla.compression, deadline_s=budget
            )
            chunk = self._chunk(actions)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # every way the call can fail is a lost request, never a raise
            fault = f"{REMOTE_FAULT}: {type(exc).__name__}: {exc}"
            timed_out = "deadline" in type(exc).__name__.lower() or isinstance(exc, TimeoutError)
            lost = TransferResult(len(blob), "up", sent, None, timed_out=timed_out)
            return PolicyResult(None, None, len(blob)), TimedRequest(
                None, edge_s=edge, bytes_up=len(blob), transfers=(lost,),
                measured_edge_s=edge, fault=fault,
            )
        rtt, server = rtt_ms / 1e3, server_ms / 1e3
        cloud = min(server, rtt)
        net = rtt - cloud
        bytes_down = reply_bytes(rid, actions, server_ms)
        up_at, arrival = sent + net / 2, sent + rtt
        transfers = (
            TransferResult(len(blob), "up", sent, up_at),
            TransferResult(bytes_down, "down", up_at + cloud, arrival),
        )
        return PolicyResult(chunk, None, len(blob)), TimedRequest(
            arrival, edge_s=edge, cloud_s=cloud, up_s=net / 2, down_s=net / 2,
            bytes_up=len(blob), bytes_down=bytes_down, transfers=transfers,
            measured_edge_s=edge, measured_rtt_s=rtt, server_s=server,
        )

    def _chunk(self, actions: np.ndarray) -> np.ndarray:
        """The reply's chunk as the policy would emit it; ValueError for one that is not."""
        from rapid_env.serve.client import CorruptReply

        chunk = np.asarray(actions, dtype=np.float32)
        rows = self.vla.chunk_size
        if chunk.ndim != 2 or chunk.shape[1] != 4 or chunk.shape[0] < rows:
            raise CorruptReply(f"reply is {chunk.shape}, expected ({rows}, 4)")
        if not np.all(np.isfinite(chunk)):
            raise CorruptReply("reply holds non-finite actions")
        return np.clip(chunk[:rows], -1.0, 1.0)

    def close(self) -> None:
        """Close the client's connection."""
        self.client.close()


def reply_bytes(request_id: str, actions: np.ndarray, server_ms: float) -> int:
    """Size of the ``InferReply`` message that carried ``actions`` (what came down)."""
    from rapid_env.serve import rapid_serve_pb2 as pb

    rows, cols = actions.shape
    return int(pb.InferReply(
        request_id=request_id, actions=np.asarray(actions).reshape(-1).tolist(), rows=rows,
        cols=cols, server_ms=server_ms,
    ).ByteSize())


# ----------------------------------------------------------------------------- building


def token_for(token_file: str | Path | None) -> str:
    """The token: ``token_file``, else ``$RAPID_SERVE_TOKEN_FILE``, else ``$RAPID_SERVE_TOKEN``.

    Raises:
        ValueError: no token anywhere, or the file cannot be read (its path named, never the
            token).
    """
    from rapid_env.serve.client import read_token

    path = token_file or os.environ.get(TOKEN_FILE_ENV) or None
    try:
        return read_token(path)
    except OSError as exc:
        raise ValueError(f"--token-file {str(path)!r} cannot be read ({exc.strerror})") from None


def connect(address: str, token_file: str | Path | None, timeout_s: float,
            chunk_size: int | None = None) -> Any:
    """A :class:`~rapid_env.serve.client.PolicyClient` for ``address`` (no call made yet)."""
    from rapid_env.serve.client import PolicyClient

    shape = None if chunk_size is None else (chunk_size, 4)
    return PolicyClient(address, token_for(token_file), timeout_s=timeout_s, expect_shape=shape)


def check_remote(link: str, policy: Policy, chunk_size: int,
                 token_file: str | Path | None) -> None:
    """Connect once to a ``remote:`` link's server and check it serves ``policy``'s model.

    Raises:
        ValueError: the spec is malformed, the local policy runs in another dtype than
            float32, there is no token, the server is not reachable, it refuses the token, or its
            model's family, block count, chunk size or cameras differ from the local policy's
            (both named).
    """
    from rapid_env.serve.client import ServeError, Unauthenticated

    address = remote_address(link)
    vla = split_runtime(policy)
    dtype = getattr(vla, "dtype", "float32")
    if dtype != "float32":  # rapid-serve decodes float32 boundaries: bf16 bytes would be refused
        raise ValueError(f"--links {link}: the local policy runs in dtype={dtype!r}, but "
                         "rapid-serve expects float32 boundary states; allowed with remote: "
                         "links: --dtype float32")
    with connect(address, token_file, CONNECT_TIMEOUT_S) as client:
        try:
            info = client.info(deadline_s=CONNECT_TIMEOUT_S)
        except ServeError as exc:
            if isinstance(exc, Unauthenticated):
                raise ValueError(f"--links {link}: the server at {address} refused the token "
                                 f"({exc.message}); check --token-file") from None
            raise ValueError(f"--links {link}: no rapid-serve reachable at {address} "
                             f"({exc.code}: {exc.message})") from None
    cfg = vla.model.cfg
    local = (cfg.family, vla.model.n_blocks, chunk_size, tuple(cfg.cameras))
    served = (info.family, info.n_blocks, info.chunk_size, info.cameras)
    if local != served:
        raise ValueError(
            f"--links {link}: the server at {address} runs {info.policy!r} ({info.family}, "
            f"{info.n_blocks} blocks, chunk {info.chunk_size}, cameras "
            f"{', '.join(info.cameras)}); the local policy {policy.name!r} is ({local[0]}, "
            f"{local[1]} blocks, chunk {local[2]}, cameras {', '.join(local[3])}): start "
            "rapid-serve with the same --policy and --chunk-size"
        )
    if vla.compression not in info.compressions:
        raise ValueError(f"--links {link}: the server at {address} does not take compression "
                         f"{vla.compression!r}; it takes {', '.join(info.compressions)}")


def measure_link(client: Any, vla: Any) -> tuple[float, float]:
    """A nominal (Mbit/s, RTT ms) of the path to the server, for deciders' a-priori context.

    RTT: the median of :data:`PROBES` health-check round trips (no token, not counted by the
    server's ``--max-requests``). Bandwidth: :data:`PROBES` all-cloud probe requests on blank
    frames (one per camera the model reads); the median of their bytes over (round trip - server
    compute - RTT), kept within 1 Mbit/s .. 10 Gbit/s. Errors of the calls propagate (the
    controller cannot be built).
    """
    from rapid_env.agents.vla.split import SplitRunner

    rtts = []
    for _ in range(PROBES):
        t0 = time.perf_counter()
        client.health(deadline_s=CONNECT_TIMEOUT_S)
        rtts.append(time.perf_counter() - t0)
    rtt = statistics.median(rtts)
    cfg = vla.model.cfg
    frame = np.zeros((cfg.image_size, cfg.image_size, 3), np.uint8)
    blank = PolicyInput(  # a frame for every camera the model reads, as the loop renders them
        frame, np.zeros(cfg.proprio_dim, np.float32), "probe",
        images={cam: frame for cam in vla.cameras},
    )
    blob = SplitRunner(vla.model, 0, vla.compression).edge(vla.prepare(blank))
    rates = []
    for i in range(PROBES):
        actions, server_ms, rtt_ms = client.infer(
            f"probe-{i}", 0, "probe", blob, vla.compression, deadline_s=CONNECT_TIMEOUT_S
        )
        wire = max((rtt_ms - server_ms) / 1e3 - rtt, 1e-4)
        rates.append(8.0 * (len(blob) + reply_bytes(f"probe-{i}", actions, server_ms)) / wire)
    mbps = min(max(statistics.median(rates) / 1e6, 1.0), 1e4)
    return float(f"{mbps:.4g}"), float(f"{rtt * 1e3:.4g}")


def remote_controller(cfg: EnvConfig, needs_image: bool, token_file: str | Path | None) -> Any:
    """The controller of a ``remote:`` job: the policy's cloud half on the server.

    Built as :func:`~rapid_env.compose.build_controller` builds one (the same policy, task, cost
    model and noise), on a ``constant:`` link of the measured nominal bandwidth and RTT
    (:func:`measure_link`), which only the deciders' a-priori context reads; every request goes
    through a :class:`GrpcTransport` whose RPC deadline is what is left of
    ``cfg.control.request_timeout_s`` after the edge part.

    Raises:
        ValueError: a malformed spec, no token, a policy without a split runtime, a placement
            other than edge-prefix; a client error
            when the server cannot be reached (the runner records it as an ``episode_error``).
    """
    from rapid_env.build import assemble_controller
    from rapid_env.compose import build_policy

    if cfg.placement != "edge-prefix":  # the server runs the cloud half behind the edge's front
        raise ValueError(
            f"placement={cfg.placement!r} with a remote link; allowed: edge-prefix"
        )
    address = remote_address(cfg.link)
    timeout = cfg.control.request_timeout_s
    client = connect(address, token_file, timeout, cfg.chunk_size)
    try:
        policy = build_policy(cfg)
        mbps, rtt_ms = measure_link(client, split_runtime(policy))
        nominal = replace(cfg, link=f"constant:{mbps:g}:{rtt_ms:g}")
        controller = assemble_controller(nominal, policy, needs_image)
        controller.transport = GrpcTransport(client, policy, controller.cost, timeout)
    except BaseException:
        client.close()
        raise
    return controller
