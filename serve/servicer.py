"""``PolicyServer``'s calls: ``Info`` and ``Infer`` over a loaded policy's cloud half.

``Infer`` answers bad input before any work: the request's sizes, its compression and split, then
the boundary's safetensors header (:func:`~rapid_env.serve.boundary.check_boundary`, before
anything is decoded), then the decoded values. A forward that fails or runs past its deadline is
answered (``INTERNAL``, ``DEADLINE_EXCEEDED``) and the server keeps serving; nothing is unpickled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NoReturn

import grpc
import numpy as np
import torch

from rapid_env.agents.vla.split import COMPRESSIONS
from rapid_env.serve import rapid_serve_pb2 as pb
from rapid_env.serve import rapid_serve_pb2_grpc as pb_grpc
from rapid_env.serve.batcher import Batcher, BatcherClosed, Job, WaitedPastDeadline
from rapid_env.serve.boundary import BoundaryError, check_boundary
from rapid_env.serve.config import DEVICE_KEY, DTYPE_KEY
from rapid_env.serve.model import CloudModel, DeadlineHit

log = logging.getLogger("rapid_env.serve")

SERVICE_NAME = "rapid_env.serve.v1.PolicyServer"
"""The service's full name: what the health service reports on (and ``""``, the server)."""

MAX_REQUEST_ID = 256
MAX_INSTRUCTION = 1024


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
        batcher: Batcher | None = None,
    ) -> None:
        self.cloud = cloud
        self.batcher = batcher
        self.deadline_s = deadline_s
        self._info = cloud.info(max_request_bytes)
        self._on_call = on_call or (lambda: None)

    def Info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.ServerInfo:  # noqa: N802
        """What this server runs (see the proto); its device and dtype in the reply metadata."""
        try:
            context.send_initial_metadata(
                ((DEVICE_KEY, self.cloud.device), (DTYPE_KEY, self.cloud.dtype))
            )
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
        comp = self._check_request(request, context)
        k = request.split
        state = self._decode(request, comp, context)
        if self.batcher is None:
            actions = self._forward(request, state, t0, context)
        else:
            actions = self._batched(request, state, t0, context)
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

    def _check_request(self, request: pb.InferRequest, context: grpc.ServicerContext) -> str:
        """Check sizes, compression and split (else ``INVALID_ARGUMENT``); the compression."""
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
        return comp

    def _decode(
        self, request: pb.InferRequest, comp: str, context: grpc.ServicerContext
    ) -> dict[str, torch.Tensor]:
        """The boundary's header checked, then its bytes decoded and their values checked."""
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        cloud, k = self.cloud, request.split
        where = f"for split {k} with compression {comp}{cloud.cameras_note()}"
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
        return state

    def _forward(
        self,
        request: pb.InferRequest,
        state: dict[str, torch.Tensor],
        t0: float,
        context: grpc.ServicerContext,
    ) -> np.ndarray:
        """The cloud blocks under the deadline; their failure is answered, never fatal."""
        k = request.split
        budget = self._budget(context)
        failure: tuple[grpc.StatusCode, str] | None = None
        try:
            actions = self.cloud.forward(state, k, t0 + budget)
        except Exception as e:  # the model's failure is answered, never fatal
            failure = self._failure(e, request, budget)
        if failure is None and not np.isfinite(actions).all():
            failure = (grpc.StatusCode.INTERNAL, "forward produced non-finite actions")
        if failure is not None:
            _abort(context, *failure)
        return actions

    def _batched(
        self,
        request: pb.InferRequest,
        state: dict[str, torch.Tensor],
        t0: float,
        context: grpc.ServicerContext,
    ) -> np.ndarray:
        """The cloud blocks as part of a batch (``--max-batch``); answered as :meth:`_forward`."""
        assert self.batcher is not None
        budget = self._budget(context)
        job = Job(request.split, state, t0 + budget, t0, request.request_id)
        try:
            self.batcher.run(job)
        except BatcherClosed as e:
            _abort(context, grpc.StatusCode.UNAVAILABLE, str(e))
        if job.error is not None:
            _abort(context, *self._failure(job.error, request, budget))
        actions = job.chunk
        if actions is None or not np.isfinite(actions).all():
            _abort(context, grpc.StatusCode.INTERNAL, "forward produced non-finite actions")
        return actions

    def _budget(self, context: grpc.ServicerContext) -> float:
        """Seconds this request may take: ``--deadline-s``, or the client's shorter deadline."""
        remaining = context.time_remaining()
        return self.deadline_s if remaining is None else min(remaining, self.deadline_s)

    def _failure(
        self, e: BaseException, request: pb.InferRequest, budget: float
    ) -> tuple[grpc.StatusCode, str]:
        """The status and message that answer a forward's exception."""
        if isinstance(e, DeadlineHit):
            return (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"deadline of {budget * 1000:.0f} ms passed before block {e.args[0]!r}",
            )
        if isinstance(e, WaitedPastDeadline):
            return (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"deadline of {budget * 1000:.0f} ms passed while waiting for a batch",
            )
        k = request.split
        log.error("forward failed (request %r, split %d)", request.request_id, k, exc_info=e)
        return (grpc.StatusCode.INTERNAL, f"forward failed at split {k}: {type(e).__name__}: {e}")
