"""``--delay relay``: a user-space TCP relay that delays every chunk it forwards.

The relay terminates TCP on both sides (split TCP): the client's connection, the one through
``tbf``, has a round trip of about zero, so TCP's own dynamics over the delay are not reproduced;
HTTP/2 flow control is. Each direction of a connection is a FIFO delay line in front of a
transport. Commands on stdin, one per line (``delay <up_s> <down_s>``, ``stats``), as the kernel
delay line's; EOF stops it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .protocol import late_stats


class _DelayLine:
    """One direction of one relayed connection: a FIFO delay in front of a transport."""

    def __init__(self, relay: _Relay, direction: str) -> None:
        self.relay, self.direction = relay, direction
        self.queue: deque[tuple[float, bytes]] = deque()
        self.out: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.last_due = 0.0
        self.closing = False

    def push(self, data: bytes) -> None:
        loop = self.relay.loop
        due = max(loop.time() + self.relay.delay[self.direction], self.last_due)
        self.last_due = due
        self.queue.append((due, data))
        if self.timer is None:
            self._arm()

    def attach(self, transport: asyncio.Transport) -> None:
        self.out = transport
        if self.timer is None:
            self._arm()

    def close_after_flush(self) -> None:
        self.closing = True
        if not self.queue and self.out is not None:
            self.out.close()

    def _arm(self) -> None:
        if self.out is not None and self.queue:
            self.timer = self.relay.loop.call_at(self.queue[0][0], self._fire)

    def _fire(self) -> None:
        self.timer = None
        now = self.relay.loop.time()
        out = self.out
        assert out is not None
        while self.queue and self.queue[0][0] <= now:
            due, data = self.queue.popleft()
            self.relay.late.append(now - due)
            if not out.is_closing():
                out.write(data)
        if self.queue:
            self._arm()
        elif self.closing:
            out.close()


class _Upstream(asyncio.Protocol):
    """The relay's connection to the server."""

    def __init__(self, peer: _Downstream) -> None:
        self.peer = peer

    def data_received(self, data: bytes) -> None:
        self.peer.down.push(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.peer.down.close_after_flush()


class _Downstream(asyncio.Protocol):
    """A client's connection to the relay; opens its own connection to the server."""

    def __init__(self, relay: _Relay, upstream_port: int) -> None:
        self.relay, self.upstream_port = relay, upstream_port
        self.up = _DelayLine(relay, "up")
        self.down = _DelayLine(relay, "down")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.down.attach(transport)
        self.relay.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            upstream, _ = await self.relay.loop.create_connection(
                lambda: _Upstream(self), "127.0.0.1", self.upstream_port
            )
        except OSError:
            self.transport.close()
            return
        self.up.attach(upstream)

    def data_received(self, data: bytes) -> None:
        self.up.push(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.up.close_after_flush()


@dataclass
class _Relay:
    loop: asyncio.AbstractEventLoop
    delay: dict[str, float] = field(default_factory=lambda: {"up": 0.0, "down": 0.0})
    late: list[float] = field(default_factory=list)

    def take_late(self) -> list[float]:
        late, self.late = self.late, []
        return late


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on ``loop`` (from another thread) and return its result."""
    done: futures.Future[Any] = futures.Future()
    loop.call_soon_threadsafe(lambda: done.set_result(fn()))
    return done.result()


def _relay_control(relay: _Relay, done: asyncio.Event) -> None:
    """Commands on stdin, one per line: ``delay <up_s> <down_s>``, ``stats``; EOF stops."""
    for line in sys.stdin:
        words = line.split()
        if words and words[0] == "delay":
            _on_loop(relay.loop, partial(relay.delay.update, up=float(words[1]),
                                         down=float(words[2])))
            print("ok", flush=True)
        elif words and words[0] == "stats":
            print(late_stats(_on_loop(relay.loop, relay.take_late)), flush=True)
    relay.loop.call_soon_threadsafe(done.set)


async def relay_main(upstreams: Sequence[int]) -> None:
    """Listen once per upstream port (printed as ``ports a,b``); relay until stdin closes."""
    loop = asyncio.get_running_loop()
    relay = _Relay(loop)
    ports = []
    for port in upstreams:
        server = await loop.create_server(partial(_Downstream, relay, port), "127.0.0.1", 0)
        ports.append(server.sockets[0].getsockname()[1])
    print("ports " + ",".join(str(p) for p in ports), flush=True)
    done = asyncio.Event()
    threading.Thread(target=_relay_control, args=(relay, done), daemon=True).start()
    await done.wait()
