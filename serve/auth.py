"""The bearer-token check every ``PolicyServer`` call passes before it reaches the servicer.

The token is compared in constant time (:func:`hmac.compare_digest`); the standard health service
(:data:`OPEN_METHODS`) stays open so that load balancers and ``PolicyClient.wait_ready`` can probe
a server without the secret.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import grpc

from rapid_env.serve.config import UsageError

log = logging.getLogger("rapid_env.serve")

OPEN_METHODS = ("/grpc.health.v1.Health/",)
"""Method prefixes served without a token (the standard health check)."""


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
