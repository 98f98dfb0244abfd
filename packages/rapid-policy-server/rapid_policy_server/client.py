"""A blocking openpi client with bounded waits, for harnesses that must never hang.

The same exchange as ``openpi_client.websocket_client_policy.WebsocketClientPolicy`` (connect,
read the metadata, then one binary observation out and one reply in per request), with a timeout
on the connection and on every reply, and the server's error (a text frame: its traceback) raised
as :class:`ServerError` instead of a bare ``RuntimeError``.
"""

from __future__ import annotations

from typing import Any

from websockets.sync.client import ClientConnection, connect

from rapid_policy_server.wire import packb, unpackb


class ServerError(RuntimeError):
    """The server's policy raised: the text frame it sent (a traceback) is the message."""


class PolicyClient:
    """One connection to an openpi policy server.

    Args:
        url: ``ws://host:port`` (or ``wss://``).
        open_timeout_s: the longest wait for the connection and the server's metadata.
        timeout_s: the longest wait for each reply.

    Raises:
        OSError: nothing listens there (``ConnectionRefusedError``) or the host is unknown.
        TimeoutError: the connection or the metadata did not come in time.
        websockets.exceptions.WebSocketException: the handshake failed, or the connection closed.
    """

    def __init__(self, url: str, open_timeout_s: float = 5.0, timeout_s: float = 30.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._ws: ClientConnection = connect(url, compression=None, max_size=None,
                                             open_timeout=open_timeout_s, close_timeout=1.0)
        try:
            self.metadata: dict[str, Any] = dict(self._receive(open_timeout_s))
        except BaseException:
            self._ws.close()
            raise

    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        """Send one observation; the server's reply map.

        Raises:
            ServerError: the server's policy failed (the server then closes the connection).
            TimeoutError: no reply within ``timeout_s``.
            websockets.exceptions.ConnectionClosed: the server went away.
        """
        self._ws.send(packb(obs))
        reply = self._receive(self.timeout_s)
        if not isinstance(reply, dict):
            raise ServerError(f"the reply is a {type(reply).__name__}, not a map")
        return reply

    def _receive(self, timeout_s: float) -> Any:
        message = self._ws.recv(timeout=timeout_s)
        if isinstance(message, str):
            raise ServerError(message)
        return unpackb(message)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._ws.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
