"""A websocket server that speaks openpi's policy protocol for any Python policy object.

The protocol, as openpi's ``serving/websocket_policy_server.py`` speaks it: on connect the
server sends its metadata (one msgpack map); then each binary message from the client is an
observation map and each reply the policy's output map plus ``server_timing`` (``infer_ms``: the
policy's own wall-clock time; ``prev_total_ms``: the previous request's whole cycle, from the
second reply on). When the policy raises, the server sends the traceback as a *text* frame and
closes the connection with code 1011 (internal error): that is how a client tells a failed model
from a reply. ``GET /healthz`` answers 200 without a websocket.

The server runs its asyncio loop in a thread of its own (:meth:`PolicyServer.start`) or in the
caller's (:func:`serve`); :meth:`PolicyServer.stop`, ``max_requests`` replies or Ctrl-C stop it
and close every connection, so a test's server never outlives the test.
"""

from __future__ import annotations

import asyncio
import http
import logging
import threading
import time
import traceback
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from rapid_policy_server.wire import packb, unpackb

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
"""Loopback only unless told otherwise: a policy server runs code on what it is sent."""


def policy_reply(policy: Any, obs: dict[str, Any]) -> dict[str, Any]:
    """What ``policy`` answers to ``obs``: ``infer(obs)``'s map, or ``{"actions": predict(obs)}``.

    Raises:
        TypeError: the object has neither method, or ``infer`` returned something else than a map.
    """
    infer = getattr(policy, "infer", None)
    if callable(infer):
        reply = infer(obs)
        if not isinstance(reply, dict):
            raise TypeError(f"infer returned {type(reply).__name__}; expected a dict")
        return dict(reply)
    predict = getattr(policy, "predict", None)
    if callable(predict):
        return {"actions": np.asarray(predict(obs))}
    raise TypeError(f"{type(policy).__name__} has neither infer(obs) nor predict(obs)")


class PolicyServer:
    """Serves one policy object to any number of openpi clients (module docstring).

    Requests are answered one at a time, in the event loop (a model is one resource), as openpi's
    server does.

    Args:
        policy: an object with ``infer(obs) -> dict`` or ``predict(obs) -> actions``.
        host: the address to bind; 127.0.0.1 by default.
        port: the port; 0 picks a free one (read :attr:`port` after :meth:`start`).
        metadata: the map sent to every client when it connects.
        max_requests: stop after this many replies (None: serve until stopped); a bounded
            server for tests and one-off runs.
    """

    def __init__(self, policy: Any, host: str = DEFAULT_HOST, port: int = 8000,
                 metadata: dict[str, Any] | None = None, max_requests: int | None = None) -> None:
        if max_requests is not None and max_requests < 1:
            raise ValueError(f"max_requests={max_requests}; allowed: None or >= 1")
        if not callable(getattr(policy, "infer", None)) and not callable(
                getattr(policy, "predict", None)):
            raise TypeError(f"{type(policy).__name__} has neither infer(obs) nor predict(obs)")
        self.policy = policy
        self.host = host
        self.port = port
        self.metadata = dict(metadata or {})
        self.max_requests = max_requests
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``ws://host:port`` of the running server."""
        return f"ws://{self.host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop`, ``max_requests`` or Ctrl-C."""
        try:
            asyncio.run(self._main())
        except KeyboardInterrupt:
            pass

    def start(self, timeout_s: float = 10.0) -> PolicyServer:
        """Serve in a daemon thread; return once the port is bound (OSError when it cannot be)."""
        if self._thread is not None:
            raise RuntimeError("this server was started already; build another one")
        self._thread = threading.Thread(target=self._run_thread, name="policy-server",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"the policy server did not start within {timeout_s} s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close every connection and the listening socket; wait for the thread to end."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed in between: already stopped
                pass
        if self._thread is not None:
            self._thread.join(timeout_s)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the started server stops (:meth:`stop`, ``max_requests``); True if it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def __enter__(self) -> PolicyServer:
        """Start the server unless :meth:`start` already did; :meth:`stop` it on the way out."""
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_thread(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with ws_serve(self._handler, self.host, self.port, compression=None, max_size=None,
                            process_request=_health_check) as server:
            self.port = int(next(iter(server.sockets)).getsockname()[1])
            logger.info("serving %s on %s", type(self.policy).__name__, self.url)
            self._ready.set()
            await self._stop.wait()
            server.close()  # closes the connections too (code 1001, going away)
            await server.wait_closed()

    async def _handler(self, ws: ServerConnection) -> None:
        await ws.send(packb(self.metadata))
        prev_total_s: float | None = None
        while True:
            try:
                start = time.monotonic()
                message = await ws.recv()
                if isinstance(message, str):
                    raise TypeError("a text frame; expected a binary msgpack observation")
                obs = unpackb(message)
                t0 = time.monotonic()
                reply = policy_reply(self.policy, obs)
                timing = {"infer_ms": (time.monotonic() - t0) * 1e3}
                if prev_total_s is not None:
                    timing["prev_total_ms"] = prev_total_s * 1e3
                reply["server_timing"] = timing
                await ws.send(packb(reply))
                prev_total_s = time.monotonic() - start
            except ConnectionClosed:
                return
            except Exception:  # noqa: BLE001 - the client gets the traceback, as from openpi
                logger.exception("the policy failed")
                try:
                    await ws.send(traceback.format_exc())
                    await ws.close(CloseCode.INTERNAL_ERROR,
                                   "Internal server error. Traceback included in previous frame.")
                except ConnectionClosed:
                    pass
                return
            self.requests += 1
            if self.max_requests is not None and self.requests >= self.max_requests:
                assert self._stop is not None
                self._stop.set()
                return


def _health_check(connection: ServerConnection, request: Request) -> Response | None:
    """``GET /healthz``: 200 OK without a websocket; every other path goes on to the handshake."""
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


def serve(policy: Any, host: str = DEFAULT_HOST, port: int = 8000,
          metadata: dict[str, Any] | None = None, max_requests: int | None = None) -> None:
    """Serve ``policy`` over the openpi protocol in this thread until stopped (Ctrl-C).

    See :class:`PolicyServer` for the arguments; ``max_requests`` ends it after that many replies.
    """
    PolicyServer(policy, host, port, metadata, max_requests).serve_forever()
