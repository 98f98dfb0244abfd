"""``rapid-serve``: serve the cloud half of a split policy over gRPC.

The edge runs blocks ``0..k-1`` of the executable model and sends the boundary state
(:meth:`rapid_env.agents.vla.split.SplitRunner.edge`'s safetensors bytes); this server checks
those bytes against the tensors split ``k`` must hold (:mod:`.boundary`, before anything is
decoded), decodes them in the edge's memory layout (:func:`~rapid_env.agents.vla.split.deserialise`,
as :meth:`SplitRunner.cloud` does), runs blocks ``k..n-1`` and returns the policy's chunk (its first
``chunk_size`` rows, clipped to [-1, 1], as :class:`~rapid_env.agents.vla.policy.VLAPolicy` does).
With compression ``none`` the reply equals ``VLAPolicy.act_split`` for the same input bit for bit,
on the same kernels and thread count.

Security model (``docs/serve.md``): binds 127.0.0.1 unless ``--host`` says otherwise; every
``PolicyServer`` call needs ``authorization: Bearer <token>`` (compared in constant time), the
standard health service stays open; optional TLS; requests over ``--max-request-mb`` are refused by
gRPC itself; nothing is unpickled; a failing forward is answered ``INTERNAL`` and the server keeps
serving.

Usage::

    rapid-serve --policy chunk-regress --token-file ~/.rapid-serve-token --port 0
"""

from __future__ import annotations

import argparse
import hmac
import logging
import math
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import grpc
import numpy as np
import torch
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from rapid_env.agents.vla.base import ExecutableVLA
from rapid_env.agents.vla.split import COMPRESSIONS, Layout, deserialise, layout_of, serialise
from rapid_env.compose import build_policy
from rapid_env.config import EnvConfig
from rapid_env.eval.serve import rapid_serve_pb2 as pb
from rapid_env.eval.serve import rapid_serve_pb2_grpc as pb_grpc
from rapid_env.eval.serve.boundary import (
    BoundaryError,
    Expected,
    check_boundary,
    parse_specs,
    read_header,
)

log = logging.getLogger("rapid_env.serve")

SERVICE_NAME = "rapid_env.serve.v1.PolicyServer"
"""The service's full name: what the health service reports on (and ``""``, the server)."""

SERVABLE = ("chunk-regress", "ar-token", "flow", "ckpt:<dir>")
"""Policies with a split runtime (an executable VLA), the ones ``rapid-serve`` can serve."""

MAX_REQUEST_ID = 256
MAX_INSTRUCTION = 1024
LOOPBACK = ("127.0.0.1", "::1", "[::1]", "localhost")
OPEN_METHODS = ("/grpc.health.v1.Health/",)
"""Method prefixes served without a token (the standard health check)."""


class UsageError(Exception):
    """A start-up problem the user must fix (``rapid-serve`` exits 2 with the message)."""


# ----------------------------------------------------------------------------- the model side


@dataclass(frozen=True)
class Boundary:
    """What split ``k`` under one compression expects: tensors (batch 1), layout, blob size."""

    tensors: Expected
    layout: Layout
    nbytes: int


class _DeadlineHit(Exception):
    """The request's time ran out between two blocks."""


class CloudModel:
    """The cloud half of one loaded policy: expected boundaries per split, and the forward.

    The expected boundaries come from one dry edge run per split on zero inputs of batch 1 (what
    :meth:`SplitRunner.boundary_layout` does): names, dtypes and shapes of the safetensors blob
    :func:`serialise` writes under each compression, and the strides the cloud restores.

    The model's forward keeps no state between calls (every block is a pure function of its input
    state; the autoregressive family's KV cache lives in the call), so concurrent requests may run
    it at once (``parallel=True``). By default a lock lets one forward run at a time: on two cores
    that served the token-by-token ``ar-token`` family twice as fast (its many small ops fight
    over the GIL when several run at once) and cost ``chunk-regress`` about a fifth
    (``docs/serve.md``, *Threads*).
    """

    def __init__(
        self,
        name: str,
        model: ExecutableVLA,
        chunk_size: int,
        parallel: bool = False,
    ) -> None:
        self.name, self.model, self.chunk_size = name, model.eval(), chunk_size
        self.n_blocks = model.n_blocks
        self.block_names = model.block_names()
        self.splits = tuple(range(self.n_blocks))  # k = n_blocks would leave nothing to serve
        self._lock: threading.Lock | None = None if parallel else threading.Lock()
        self.table: dict[tuple[int, str], Boundary] = {}
        cfg, s = model.cfg, model.cfg.image_size
        with torch.inference_mode():
            first = model.prepare(
                torch.zeros(1, s, s, 3, dtype=torch.uint8),
                torch.zeros(1, cfg.proprio_dim),
                torch.zeros(1, cfg.max_text_tokens, dtype=torch.long),
                torch.Generator(),
            )
            for k in self.splits:
                state = model.run(first, 0, k)
                layout = layout_of(state)
                for comp in COMPRESSIONS:
                    blob = serialise(state, comp)
                    header, _ = read_header(blob)
                    self.table[k, comp] = Boundary(parse_specs(header), layout, len(blob))

    @classmethod
    def from_policy(cls, name: str, policy: object, parallel: bool = False) -> CloudModel:
        """The cloud half of a built policy; :class:`UsageError` when it has no split runtime."""
        model = getattr(policy, "model", None)
        chunk = getattr(policy, "chunk_size", None)
        if not isinstance(model, ExecutableVLA) or not isinstance(chunk, int):
            raise UsageError(
                f"policy {name!r} has no split runtime to serve; servable: {', '.join(SERVABLE)}"
            )
        return cls(name, model, chunk, parallel)

    def boundary(self, split: int, compression: str) -> Boundary:
        """The expected boundary (KeyError for a split or compression not served)."""
        return self.table[split, compression]

    def info(self, max_request_bytes: int) -> pb.ServerInfo:
        """The ``Info`` reply."""
        out = pb.ServerInfo(
            policy=self.name,
            family=self.model.cfg.family,
            n_blocks=self.n_blocks,
            splits=list(self.splits),
            chunk_size=self.chunk_size,
            action_dim=self.model.cfg.action_dim,
            compressions=list(COMPRESSIONS),
            block_names=self.block_names,
            max_request_bytes=max_request_bytes,
        )
        for k in self.splits:
            entry = out.split_info.add(split=k, first_cloud_block=self.block_names[k])
            for comp in COMPRESSIONS:
                b = self.table[k, comp]
                spec = entry.boundaries.add(compression=comp, nbytes=b.nbytes)
                for tname, (dtype, shape) in b.tensors.items():
                    spec.tensors.add(name=tname, dtype=dtype, shape=list(shape))
        return out

    def check_values(self, state: dict[str, torch.Tensor]) -> None:
        """Decoded values the model cannot take: non-finite floats, token ids outside the vocab."""
        for name, t in state.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise BoundaryError(f"tensor {name!r} holds non-finite values")
        ids = state.get("text_ids")
        if ids is not None and ids.numel():
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.model.cfg.vocab_size:
                raise BoundaryError(
                    f"tensor 'text_ids' holds ids in [{lo}, {hi}], outside the vocabulary "
                    f"[0, {self.model.cfg.vocab_size})"
                )

    def decode(self, blob: bytes, split: int, compression: str) -> dict[str, torch.Tensor]:
        """Checked blob -> state in the edge's layout (``SplitRunner.cloud``'s decoding)."""
        with torch.inference_mode():
            return deserialise(blob, self.table[split, compression].layout)

    def forward(
        self, state: dict[str, torch.Tensor], split: int, deadline: float = math.inf
    ) -> np.ndarray:
        """Blocks ``split..n-1``, then the policy's chunk finishing.

        ``deadline`` (``time.perf_counter`` seconds) is checked between blocks. The blocks are
        :meth:`ExecutableVLA.run`'s, in its order, so the chunk is
        ``SplitRunner.cloud``'s; the finishing is ``VLAPolicy._finish``'s.
        """
        if self._lock is None:
            actions = self._run(state, split, deadline)
        else:
            with self._lock:
                actions = self._run(state, split, deadline)
        out = actions[0, : self.chunk_size].numpy().astype(np.float32)
        return np.clip(out, -1.0, 1.0)

    def _run(self, state: dict[str, torch.Tensor], split: int, deadline: float) -> torch.Tensor:
        with torch.inference_mode():
            for name, fn in self.model.blocks()[split:]:
                if time.perf_counter() > deadline:
                    raise _DeadlineHit(name)
                state = fn(state)
            return state["actions"]


# ----------------------------------------------------------------------------- the gRPC side


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    log.info("reply %s: %s", code.name, message)
    context.abort(code, message)
    raise AssertionError("grpc's abort returned")  # it raises; this line is never reached


class PolicyService(pb_grpc.PolicyServerServicer):
    """``PolicyServer``: ``Infer`` and ``Info`` over a :class:`CloudModel`."""

    def __init__(
        self,
        cloud: CloudModel,
        max_request_bytes: int,
        deadline_s: float,
        on_call: Callable[[], None] | None = None,
    ) -> None:
        self.cloud = cloud
        self.deadline_s = deadline_s
        self._info = cloud.info(max_request_bytes)
        self._on_call = on_call or (lambda: None)

    def Info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.ServerInfo:  # noqa: N802
        """What this server runs (see the proto)."""
        try:
            out = pb.ServerInfo()
            out.CopyFrom(self._info)
            return out
        finally:
            self._on_call()

    def Infer(self, request: pb.InferRequest, context: grpc.ServicerContext) -> pb.InferReply:  # noqa: N802
        """Validate the boundary, finish the forward, reply with the chunk."""
        try:
            return self._infer(request, context)
        finally:
            self._on_call()

    def _infer(self, request: pb.InferRequest, context: grpc.ServicerContext) -> pb.InferReply:
        t0 = time.perf_counter()
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        cloud = self.cloud
        if len(request.request_id) > MAX_REQUEST_ID:
            _abort(context, invalid, f"request_id longer than {MAX_REQUEST_ID} characters")
        if len(request.instruction) > MAX_INSTRUCTION:
            _abort(context, invalid, f"instruction longer than {MAX_INSTRUCTION} characters")
        comp = request.compression or "none"
        if comp not in COMPRESSIONS:
            _abort(
                context, invalid,
                f"unknown compression {comp!r}; allowed: {', '.join(COMPRESSIONS)}",
            )
        k = request.split
        if k not in cloud.splits:
            _abort(
                context, invalid,
                f"split {k} not served; accepted: {cloud.splits[0]}..{cloud.splits[-1]} "
                f"({cloud.model.cfg.family}, {cloud.n_blocks} blocks)",
            )
        where = f"for split {k} with compression {comp}"
        error = ""
        try:
            check_boundary(request.boundary, cloud.boundary(k, comp).tensors, comp, where)
        except BoundaryError as e:
            error = str(e)
        if error:
            _abort(context, invalid, f"boundary rejected: {error}")
        try:
            state = cloud.decode(request.boundary, k, comp)
            cloud.check_values(state)
        except BoundaryError as e:
            error = str(e)
        except Exception as e:  # a decoder failure on checked bytes is still bad input
            error = f"{type(e).__name__}: {e}"
        if error:
            _abort(context, invalid, f"boundary rejected: {error}")
        remaining = context.time_remaining()
        budget = self.deadline_s if remaining is None else min(remaining, self.deadline_s)
        failure: tuple[grpc.StatusCode, str] | None = None
        try:
            actions = cloud.forward(state, k, t0 + budget)
        except _DeadlineHit as e:
            failure = (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"deadline of {budget * 1000:.0f} ms passed before block {e.args[0]!r}",
            )
        except Exception as e:  # the model's failure is answered, never fatal
            log.exception("forward failed (request %r, split %d)", request.request_id, k)
            failure = (grpc.StatusCode.INTERNAL, f"forward failed at split {k}: "
                       f"{type(e).__name__}: {e}")
        if failure is None and not np.isfinite(actions).all():
            failure = (grpc.StatusCode.INTERNAL, "forward produced non-finite actions")
        if failure is not None:
            _abort(context, *failure)
        server_ms = (time.perf_counter() - t0) * 1000.0
        log.info(
            "infer %r split=%d compression=%s bytes=%d %.1f ms instruction=%r",
            request.request_id, k, comp, len(request.boundary), server_ms,
            request.instruction[:80],
        )
        rows, cols = actions.shape
        return pb.InferReply(
            request_id=request.request_id,
            actions=actions.reshape(-1).tolist(),
            rows=rows,
            cols=cols,
            server_ms=server_ms,
        )


def _deny(request: Any, context: grpc.ServicerContext) -> None:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


class TokenAuth(grpc.ServerInterceptor):
    """Every call but :data:`OPEN_METHODS` needs ``authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        if not token:
            raise UsageError("empty token")
        self._expected = f"Bearer {token}".encode()
        self._denied = grpc.unary_unary_rpc_method_handler(_deny)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        """Hand the call on when its token matches (in constant time), else deny it."""
        method = handler_call_details.method  # type: ignore[attr-defined]
        if method.startswith(OPEN_METHODS):
            return continuation(handler_call_details)
        given = b""
        for key, value in handler_call_details.invocation_metadata or ():  # type: ignore[attr-defined]
            if key == "authorization":
                given = value if isinstance(value, bytes) else value.encode("utf-8", "replace")
        if hmac.compare_digest(given, self._expected):
            return continuation(handler_call_details)
        log.warning("unauthenticated call to %s", method)
        return self._denied


@dataclass
class ServeConfig:
    """Everything ``rapid-serve`` is started with (the flags, parsed)."""

    policy: str = "chunk-regress"
    token: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    max_request_mb: float = 16.0
    deadline_s: float = 5.0
    workers: int = 4
    max_concurrent: int | None = None  # default: 2 * workers
    parallel_forward: bool = False
    max_requests: int | None = None
    max_seconds: float | None = None
    grace_s: float = 2.0
    chunk_size: int = field(default_factory=lambda: EnvConfig().chunk_size)

    @property
    def max_request_bytes(self) -> int:
        """``--max-request-mb`` in bytes."""
        return int(self.max_request_mb * (1 << 20))


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class RunningServer:
    """A started server: its port, and a graceful stop that a signal, a test or a bound triggers.

    The stop runs on a watcher thread: health turns NOT_SERVING first, then ``server.stop(grace)``
    lets calls in flight finish.
    """

    def __init__(
        self, config: ServeConfig, cloud: CloudModel, on_stopped: Callable[[], None] | None = None
    ) -> None:
        self.config = config
        self.cloud = cloud
        self.stop_requested = threading.Event()
        self.stopped = threading.Event()
        self._calls = 0
        self._count_lock = threading.Lock()
        self._on_stopped = on_stopped
        self.health = health.HealthServicer()
        self.service = PolicyService(
            cloud, config.max_request_bytes, config.deadline_s, on_call=self._counted
        )
        options = [
            ("grpc.max_receive_message_length", config.max_request_bytes),
            ("grpc.max_send_message_length", 1 << 20),
            ("grpc.so_reuseport", 0),  # a second server on our port must fail, not share it
        ]
        self.server = grpc.server(
            futures.ThreadPoolExecutor(config.workers, thread_name_prefix="rapid-serve"),
            interceptors=[TokenAuth(config.token)],
            options=options,
            maximum_concurrent_rpcs=config.max_concurrent or 2 * config.workers,
        )
        pb_grpc.add_PolicyServerServicer_to_server(self.service, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        address = _host_port(config.host, config.port)
        try:
            if config.tls_cert is not None and config.tls_key is not None:
                creds = grpc.ssl_server_credentials([(config.tls_key, config.tls_cert)])
                self.port = self.server.add_secure_port(address, creds)
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError as e:
            raise UsageError(f"cannot listen on {address}: {e}") from None
        if self.port == 0:
            raise UsageError(f"cannot listen on {address}")
        self.address = _host_port(config.host, self.port)
        self.server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._watcher = threading.Thread(target=self._watch, name="rapid-serve-stop", daemon=True)
        self._watcher.start()

    def _counted(self) -> None:
        with self._count_lock:
            self._calls += 1
            done = self.config.max_requests is not None and self._calls >= self.config.max_requests
        if done:
            log.info("served %d calls (--max-requests): stopping", self._calls)
            self.stop_requested.set()

    def _watch(self) -> None:
        if not self.stop_requested.wait(self.config.max_seconds):
            log.info("--max-seconds %s passed: stopping", self.config.max_seconds)
        self.health.enter_graceful_shutdown()  # every service NOT_SERVING, later sets ignored
        self.server.stop(self.config.grace_s).wait()
        self.stopped.set()
        if self._on_stopped is not None:
            self._on_stopped()

    def stop(self, wait: bool = True) -> None:
        """Ask for the graceful stop (and wait for it)."""
        self.stop_requested.set()
        if wait:
            self.stopped.wait()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the server has stopped; False on timeout."""
        return self.stopped.wait(timeout)


def start(config: ServeConfig, cloud: CloudModel | None = None) -> RunningServer:
    """Load the policy (unless ``cloud`` is given) and start serving it."""
    if cloud is None:
        cloud = load_cloud_model(config.policy, config.chunk_size, config.parallel_forward)
    return RunningServer(config, cloud)


def load_cloud_model(policy: str, chunk_size: int, parallel: bool = False) -> CloudModel:
    """Build ``policy`` once with :func:`build_policy` and take its cloud half."""
    try:
        built = build_policy(EnvConfig(policy=policy, chunk_size=chunk_size))
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(f"cannot load policy {policy!r}: {e}") from None
    return CloudModel.from_policy(policy, built, parallel)


# ----------------------------------------------------------------------------- the command


def read_token_file(path: str | Path) -> str:
    """The token in ``path``, stripped; :class:`UsageError` when it is unusable.

    Refused: a missing or empty file, one that others may read or write (``chmod 600`` it), and
    a token that is not printable ASCII without spaces (it travels as gRPC metadata).
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read token file {p}: {e}") from None
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise UsageError(
            f"token file {p} is readable or writable by every user; chmod 600 {p}"
        )
    if not text:
        raise UsageError(f"token file {p} is empty")
    if not all(33 <= ord(c) <= 126 for c in text):
        raise UsageError(f"token in {p} must be printable ASCII without spaces")
    if len(text) < 16:
        log.warning("token in %s is only %d characters; use 32 random ones", p, len(text))
    return text


def _read_bytes(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e}") from None


def parser() -> argparse.ArgumentParser:
    """The ``rapid-serve`` flags."""
    ap = argparse.ArgumentParser(
        prog="rapid-serve",
        description="Serve the cloud half of a split policy over gRPC (docs/serve.md).",
    )
    ap.add_argument("--policy", default="chunk-regress",
                    help=f"a policy with a split runtime: {', '.join(SERVABLE)}")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=50051, help="0 picks a free port (printed)")
    ap.add_argument("--token-file", required=True,
                    help="file holding the bearer token every call must carry (chmod 600)")
    ap.add_argument("--tls-cert", help="PEM certificate chain: serve TLS (with --tls-key)")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    ap.add_argument("--max-request-mb", type=float, default=16.0,
                    help="largest request accepted; larger ones get RESOURCE_EXHAUSTED")
    ap.add_argument("--deadline-s", type=float, default=5.0,
                    help="longest a request may compute (a client's shorter deadline wins)")
    ap.add_argument("--workers", type=int, default=4, help="request threads")
    ap.add_argument("--max-concurrent", type=int, default=None,
                    help="calls running or queued before RESOURCE_EXHAUSTED (default 2x workers)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch intra-op threads (default: CPU cores / workers, at least 1)")
    ap.add_argument("--parallel-forward", action="store_true",
                    help="run forwards of concurrent calls at once (default: one at a time)")
    ap.add_argument("--chunk-size", type=int, default=EnvConfig().chunk_size,
                    help="rows of every reply (at most the checkpoint's chunk)")
    ap.add_argument("--max-requests", type=int, default=None,
                    help="stop after this many Infer/Info calls (tests)")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop after this many seconds (tests)")
    ap.add_argument("--grace-s", type=float, default=2.0,
                    help="on SIGTERM/SIGINT, how long calls in flight may finish")
    ap.add_argument("--log-level", default="INFO")
    return ap


def _config(args: argparse.Namespace) -> ServeConfig:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for flag, value, low in (
        ("--workers", args.workers, 1),
        ("--max-request-mb", args.max_request_mb, 1e-3),
        ("--deadline-s", args.deadline_s, 1e-6),
        ("--chunk-size", args.chunk_size, 1),
    ):
        if value < low:
            raise UsageError(f"{flag} must be >= {low}, got {value}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    return ServeConfig(
        policy=args.policy,
        token=read_token_file(args.token_file),
        host=args.host,
        port=args.port,
        tls_cert=_read_bytes(args.tls_cert, "--tls-cert") if args.tls_cert else None,
        tls_key=_read_bytes(args.tls_key, "--tls-key") if args.tls_key else None,
        max_request_mb=args.max_request_mb,
        deadline_s=args.deadline_s,
        workers=args.workers,
        max_concurrent=args.max_concurrent,
        parallel_forward=args.parallel_forward,
        max_requests=args.max_requests,
        max_seconds=args.max_seconds,
        grace_s=args.grace_s,
        chunk_size=args.chunk_size,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``rapid-serve``: 0 after a graceful stop, 2 on a usage error."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s rapid-serve %(levelname)s %(message)s",
    )
    stop = threading.Event()  # set by SIGTERM/SIGINT, from now on (loading takes seconds)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        config = _config(args)
        cloud = load_cloud_model(config.policy, config.chunk_size, config.parallel_forward)
        threads = args.torch_threads or max(1, (os.cpu_count() or 1) // config.workers)
        torch.set_num_threads(threads)
        running = start(config, cloud)
    except UsageError as e:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print(f"rapid-serve: {e}", file=sys.stderr)
        return 2
    scheme = "tls" if config.tls_cert else "plaintext"
    if scheme == "plaintext" and config.host not in LOOPBACK:
        log.warning(
            "serving %s without TLS: the token and the boundaries cross the network in the "
            "clear (give --tls-cert and --tls-key)", config.host,
        )
    print(
        f"rapid-serve: serving {cloud.name} ({cloud.model.cfg.family}, splits "
        f"{cloud.splits[0]}..{cloud.splits[-1]}) on {running.address} ({scheme}, "
        f"{config.workers} workers, {threads} torch threads, "
        f"{'parallel forwards' if config.parallel_forward else 'one forward at a time'})",
        flush=True,
    )
    print(f"rapid-serve: port {running.port}", flush=True)
    while not running.wait(0.2):
        if stop.is_set():
            running.stop_requested.set()  # health NOT_SERVING, then stop(grace)
    print("rapid-serve: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
