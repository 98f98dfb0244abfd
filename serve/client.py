"""A client of ``rapid-serve``: what a control loop calls to finish a split forward in the cloud.

Every failure is one of a small exception hierarchy (:class:`ServeError` and its subclasses), so
a loop can record it as a fault (``err.kind``, ``err.code``) instead of crashing:

* :class:`ServerUnavailable` - no connection (server down, wrong address, TLS handshake failed);
* :class:`Unauthenticated` - the token was refused;
* :class:`DeadlineExceeded` - the call ran past its deadline (on either side);
* :class:`RequestRejected` - any other status: ``INVALID_ARGUMENT`` (a bad boundary, split or
  compression), ``RESOURCE_EXHAUSTED`` (too large, too many calls), ``INTERNAL`` (the forward
  failed), ...;
* :class:`CorruptReply` - a reply that is not a chunk (sizes that disagree, NaN, values outside
  [-1, 1], another request's id, a shape other than the expected one).

Example:
    >>> client = PolicyClient("127.0.0.1:50051", read_token(None))  # doctest: +SKIP
    >>> actions, server_ms, rtt_ms = client.infer("r1", 3, "push the puck", blob)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rapid_env.serve import rapid_serve_pb2 as pb
from rapid_env.serve import rapid_serve_pb2_grpc as pb_grpc
from rapid_env.serve.config import DEVICE_KEY, DTYPE_KEY, load_token

TOKEN_ENV = "RAPID_SERVE_TOKEN"
SERVICE_NAME = "rapid_env.serve.v1.PolicyServer"


class ServeError(Exception):
    """A failed call to the server; ``kind`` names the fault, ``code`` the gRPC status."""

    kind = "serve_error"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class ServerUnavailable(ServeError):
    """No connection to the server (``UNAVAILABLE``)."""

    kind = "unavailable"


class Unauthenticated(ServeError):
    """The server refused the token (``UNAUTHENTICATED``)."""

    kind = "unauthenticated"


class DeadlineExceeded(ServeError):
    """The call ran past its deadline (``DEADLINE_EXCEEDED``)."""

    kind = "deadline"


class RequestRejected(ServeError):
    """The server answered with another error status (``INVALID_ARGUMENT``, ``INTERNAL`` ...)."""

    kind = "rejected"


class CorruptReply(ServeError):
    """The reply is not a valid chunk."""

    kind = "corrupt_reply"

    def __init__(self, message: str) -> None:
        super().__init__("CORRUPT_REPLY", message)


_BY_CODE: dict[grpc.StatusCode, type[ServeError]] = {
    grpc.StatusCode.UNAVAILABLE: ServerUnavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def _translate(err: grpc.RpcError) -> ServeError:
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    cls = _BY_CODE.get(code, RequestRejected)
    return cls(code.name, details or "")


def read_token(path: str | Path | None) -> str:
    """The bearer token: the file at ``path`` (stripped), else ``$RAPID_SERVE_TOKEN``.

    The file is read under the server's own rule (:func:`~rapid_env.serve.config.load_token`):
    a file its group or other users may read is refused here too, so a client never sends a
    token the server would call exposed.

    Raises:
        ValueError: no path and no environment variable, the token is empty, or the file is
            refused (one line naming it).
    """
    if path is not None:
        return load_token(path)
    text = os.environ.get(TOKEN_ENV, "").strip()
    if not text:
        raise ValueError(
            f"no token: ${TOKEN_ENV} is empty or unset (give --token-file or {TOKEN_ENV})"
        )
    return text


@dataclass(frozen=True)
class ServerDescription:
    """What ``Info`` says a server runs.

    Attributes:
        boundaries: (split, compression) -> the expected tensors, ``(name, dtype, shape)``.
        nbytes: (split, compression) -> the size of the boundary blob the edge writes.
        cameras: the cameras the model reads, in the order the boundary's image batch holds
            them (``("main",)`` from a server that predates the field).
        device / dtype: where the server's cloud half runs and in which precision (``Info``'s
            reply metadata; ``cpu`` and ``float32``, what it always was, from a server that
            predates them). Boundaries and actions are float32 whatever they say.
    """

    policy: str
    family: str
    n_blocks: int
    splits: tuple[int, ...]
    chunk_size: int
    action_dim: int
    compressions: tuple[str, ...]
    block_names: tuple[str, ...]
    max_request_bytes: int
    boundaries: dict[tuple[int, str], tuple[tuple[str, str, tuple[int, ...]], ...]]
    nbytes: dict[tuple[int, str], int]
    cameras: tuple[str, ...] = ("main",)
    device: str = "cpu"
    dtype: str = "float32"

    @classmethod
    def from_proto(
        cls, info: pb.ServerInfo, metadata: Sequence[tuple[str, str | bytes]] = ()
    ) -> ServerDescription:
        """From the ``Info`` reply and its metadata (the device and dtype)."""
        meta = {key: str(value) for key, value in metadata}
        boundaries, nbytes = {}, {}
        for entry in info.split_info:
            for b in entry.boundaries:
                key = (int(entry.split), b.compression)
                boundaries[key] = tuple(
                    (t.name, t.dtype, tuple(int(d) for d in t.shape)) for t in b.tensors
                )
                nbytes[key] = int(b.nbytes)
        return cls(
            policy=info.policy,
            family=info.family,
            n_blocks=int(info.n_blocks),
            splits=tuple(int(k) for k in info.splits),
            chunk_size=int(info.chunk_size),
            action_dim=int(info.action_dim),
            compressions=tuple(info.compressions),
            block_names=tuple(info.block_names),
            max_request_bytes=int(info.max_request_bytes),
            boundaries=boundaries,
            nbytes=nbytes,
            cameras=tuple(info.cameras) or ("main",),
            device=meta.get(DEVICE_KEY, "cpu"),
            dtype=meta.get(DTYPE_KEY, "float32"),
        )


class PolicyClient:
    """A connection to one ``rapid-serve``.

    Args:
        address: ``host:port``.
        token: the bearer token (:func:`read_token`).
        tls_ca: PEM root certificate(s) to verify the server with (bytes, or a file path); TLS
            when given, plaintext otherwise.
        timeout_s: deadline of a call that names none.
        tls_server_name: the name the server's certificate must carry, when it differs from the
            address's host.
        expect_shape: the (rows, cols) every reply must have (None: any consistent shape).
    """

    def __init__(
        self,
        address: str,
        token: str,
        tls_ca: bytes | str | Path | None = None,
        timeout_s: float = 5.0,
        tls_server_name: str | None = None,
        expect_shape: tuple[int, int] | None = None,
    ) -> None:
        if not token:
            raise ValueError("empty token")
        self.address, self.timeout_s, self.expect_shape = address, timeout_s, expect_shape
        self._metadata = (("authorization", f"Bearer {token}"),)
        options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", 1 << 20)]
        if tls_ca is not None:
            ca = tls_ca if isinstance(tls_ca, bytes) else Path(tls_ca).read_bytes()
            if tls_server_name:
                options.append(("grpc.ssl_target_name_override", tls_server_name))
            creds = grpc.ssl_channel_credentials(root_certificates=ca)
            self._channel = grpc.secure_channel(address, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._stub = pb_grpc.PolicyServerStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def _timeout(self, deadline_s: float | None) -> float:
        return self.timeout_s if deadline_s is None else deadline_s

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Block until the channel is connected; :class:`ServerUnavailable` on timeout."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise ServerUnavailable(
                "UNAVAILABLE", f"no connection to {self.address} within {timeout_s} s"
            ) from None

    def info(self, deadline_s: float | None = None) -> ServerDescription:
        """What the server runs: splits, chunk size, the boundary each split expects."""
        try:
            reply, call = self._stub.Info.with_call(
                pb.InfoRequest(), timeout=self._timeout(deadline_s), metadata=self._metadata
            )
        except grpc.RpcError as e:
            raise _translate(e) from None
        return ServerDescription.from_proto(reply, tuple(call.initial_metadata() or ()))

    def health(self, service: str = SERVICE_NAME, deadline_s: float | None = None) -> str:
        """The health service's status for ``service``: ``SERVING``, ``NOT_SERVING`` ..."""
        try:
            reply = self._health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self._timeout(deadline_s)
            )
        except grpc.RpcError as e:
            raise _translate(e) from None
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def infer(
        self,
        request_id: str,
        split: int,
        instruction: str,
        boundary: bytes,
        compression: str = "none",
        deadline_s: float | None = None,
    ) -> tuple[np.ndarray, float, float]:
        """Finish the forward from ``boundary`` (``SplitRunner(model, split, compression).edge``).

        Returns:
            The chunk as a (rows, cols) float32 array, the server's own milliseconds and the
            round trip's (wall clock, this side).
        """
        request = pb.InferRequest(
            request_id=request_id,
            split=split,
            instruction=instruction,
            boundary=boundary,
            compression=compression,
        )
        t0 = time.perf_counter()
        try:
            reply = self._stub.Infer(
                request, timeout=self._timeout(deadline_s), metadata=self._metadata
            )
        except grpc.RpcError as e:
            raise _translate(e) from None
        rtt_ms = (time.perf_counter() - t0) * 1000.0
        return self.check_reply(reply, request_id), float(reply.server_ms), rtt_ms

    def check_reply(self, reply: pb.InferReply, request_id: str) -> np.ndarray:
        """The reply's chunk, or :class:`CorruptReply` naming what is wrong with it."""
        if reply.request_id != request_id:
            raise CorruptReply(f"reply is for request {reply.request_id!r}, not {request_id!r}")
        rows, cols, n = int(reply.rows), int(reply.cols), len(reply.actions)
        if rows < 1 or cols < 1 or rows * cols != n:
            raise CorruptReply(f"reply says {rows}x{cols} but carries {n} values")
        if self.expect_shape is not None and (rows, cols) != self.expect_shape:
            raise CorruptReply(f"reply is {rows}x{cols}, expected {self.expect_shape}")
        actions = np.asarray(reply.actions, dtype=np.float32).reshape(rows, cols)
        if not np.isfinite(actions).all():
            raise CorruptReply("reply holds non-finite actions")
        if np.abs(actions).max() > 1.0:
            raise CorruptReply("reply holds actions outside [-1, 1]")
        if not np.isfinite(reply.server_ms) or reply.server_ms < 0:
            raise CorruptReply(f"reply says the server took {reply.server_ms} ms")
        return actions

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
