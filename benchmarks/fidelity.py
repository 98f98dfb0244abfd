"""Measured vs modelled: real gRPC requests through a shaped path against the link model.

For each case (a link spec) and payload, the script sends real requests through a path shaped to
that spec on this machine and compares each request's measured transfer time (the client's round
trip minus the server's own compute) with what the simulated link predicts for the same bytes at
the same moment: a fresh link from the spec, ``transfer(up_bytes, t, "up")`` then
``transfer(down_bytes, arrival, "down")``, ``arrival - t``.

**The path.** Everything is on loopback in a private network namespace: the script re-executes
itself under ``unshare -n`` (``-rn`` where plain ``-n`` is refused), so nothing it does touches the
host's network, and the namespace goes away with its last process. Client and servers talk over
``127.0.0.1``; one TCP connection per row, end to end::

    client --[tbf "up"]--> lo --[delay d_up]--> server          (request)
    client <--[delay d_down]-- lo <--[tbf "down"]-- server      (reply)

* **Bandwidth: ``tbf``, one per direction.** ``netem`` is not in this kernel; ``tbf`` and ``htb``
  are. The root qdisc of ``lo`` is an ``htb`` that only classifies (three classes at 10 Gbit/s,
  ``u32`` filters on the server's port): packets *to* the server go to a ``tbf`` leaf "up", packets
  *from* it to a ``tbf`` leaf "down" (so the request's ACKs share the downlink, as on a real
  link), anything else is unshaped. ``lo``'s MTU is set to 1500, so segments are Ethernet-sized
  (MSS 1448). ``tbf`` meters wire bytes (IP, TCP and the 14-byte link header), while the model's
  bandwidth is a rate of payload bytes (the trace presets are measured TCP goodput), so the
  ``tbf`` rate is the spec's x 1514/1448 (``--rate-mode goodput``, default; ``wire`` gives ``tbf``
  the spec's rate). The bucket is 1600 bytes: one full frame, the least ``tbf`` takes.
* **Delay, ``--delay kernel`` (default where ``iptables`` exists):** an ``iptables`` rule in the
  namespace's ``mangle PREROUTING`` hands every packet for (up) or from (down) the server's port
  to an ``NFQUEUE``; a small netlink program (``--nfqueue`` mode of this script, standard library
  only) accepts each packet ``d`` seconds after it was queued, in order. The packets wait on the
  receive side, after ``tbf``, as propagation follows serialisation on a real link; the sender's
  TCP sees the real round trip (slow start, the congestion window, BBR's estimates and gRPC's
  HTTP/2 flow control all run over it). Holding packets on the *send* side instead (``OUTPUT``)
  would stall TCP: packets not yet transmitted count against TCP Small Queues.
* **Delay, ``--delay relay``:** a user-space TCP relay (``--relay`` mode, asyncio) between client
  and server delays every chunk it reads by the direction's delay. The relay terminates TCP on
  both sides (split TCP): the client's connection, the one through ``tbf``, has a round trip of
  about zero, so TCP's own dynamics over the delay are not reproduced; HTTP/2 flow control is.
* The delay of each request is the one the model draws for it (half the RTT for a constant link;
  the preset's own RTT sample per direction for a trace), set before the request; each row's
  connection is opened across the delayed path, as a real one is.
* **Traces**: a thread follows the trace in wall time from ``--trace-offset`` and changes both
  ``tbf`` rates (``tc qdisc change``) at every step; the model's link gets the same start offset
  (instead of its random one) and no timeout (a slow transfer is measured, not lost).

**Payloads.** ``image``: the executable ``chunk-regress`` model's split-0 boundary (its
safetensors bytes, what the edge sends when it runs nothing), as a real ``Infer`` to
``rapid-serve``. ``large``: the ``openvla-7b`` profile's boundary after block 3, inside its
language model (about 2.26 MB). ``rapid-serve`` validates boundary tensors against its own small
model, so these bytes go to an **echo** method instead: a gRPC server this script starts (the
same grpcio, the same channel and server options, the same ``InferRequest``/``InferReply``
messages and metadata) whose handler answers at once with a reply of the real reply's size. The
timed part, the client's round trip minus the handler's time, is the same gRPC transfer as an
``Infer``'s (HTTP/2 framing, flow control, TCP, the shaped path); only the handler differs, and
its time is subtracted on both. As a check, the ``image`` payload also goes through the echo
method (rows marked ``check``): they should agree with the real ``Infer`` rows.

Before the cases: a raw TCP transfer of 1 MB through the "up" ``tbf`` checks that it limits as
configured, and ``loopback`` rows (no delay, ``tbf`` at 10 Gbit/s) show what the stack itself costs
(client, delay line, server); they are not in the figure.

Output: one row per (case, payload, path) with the median measured and modelled milliseconds, the
median signed and absolute relative error over the row's requests, the first (cold) request's
error (a new connection: TCP slow start, HTTP/2 set-up) and how late the delay line released
packets on average; the last line is ``fidelity: median |measured-modelled|/modelled = X %`` over
all requests of the ``infer``/``echo`` rows (``check`` rows and cold requests excluded).
``docs/fidelity.md`` has the results and the explanation of the biases.

Usage (as root or where ``unshare -rn`` works; ``tc`` from ``iproute2``, ``iptables``)::

    python benchmarks/fidelity.py                      # about 2-3 minutes on 2 cores
    python benchmarks/fidelity.py --requests 4         # quicker
    python benchmarks/fidelity.py --delay relay        # user-space relay instead of NFQUEUE
    python benchmarks/fidelity.py --cc reno            # loss-based TCP instead of the default
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import queue
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

INSIDE_FLAG = "--inside-netns"
MTU = 1500
FRAME = MTU + 14  # what tbf meters for a full segment on lo (Ethernet-style header)
MSS = MTU - 52  # IPv4 20 + TCP 20 + timestamps 12
GOODPUT_FACTOR = FRAME / MSS
BURST_BYTES = 1600  # tbf bucket: one full frame (tbf refuses less than the largest packet)
TBF_LIMIT_BYTES = 32 << 20  # queue room: no drops even with a whole blob queued in tbf
UNSHAPED_BPS = 10e9
ECHO_SERVICE = "rapid_env.bench.v1.Echo"
ECHO_METHOD = f"/{ECHO_SERVICE}/Infer"
HEADLINE_PATHS = ("infer", "echo")


# =============================================================================== the relay


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


def _late_stats(late: Sequence[float], overruns: int = 0) -> str:
    mean = statistics.fmean(late) * 1e3 if late else 0.0
    worst = max(late) * 1e3 if late else 0.0
    return f"stats {len(late)} {mean:.3f} {worst:.3f} {overruns}"


def _relay_control(relay: _Relay, done: asyncio.Event) -> None:
    """Commands on stdin, one per line: ``delay <up_s> <down_s>``, ``stats``; EOF stops."""
    for line in sys.stdin:
        words = line.split()
        if words and words[0] == "delay":
            _on_loop(relay.loop, partial(relay.delay.update, up=float(words[1]),
                                         down=float(words[2])))
            print("ok", flush=True)
        elif words and words[0] == "stats":
            print(_late_stats(_on_loop(relay.loop, relay.take_late)), flush=True)
    relay.loop.call_soon_threadsafe(done.set)


async def _relay_main(upstreams: Sequence[int]) -> None:
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


# ============================================================ the kernel delay line (NFQUEUE)

_NETLINK_NETFILTER = 12
_SO_RCVBUFFORCE = 33
_NFNL_SUBSYS_QUEUE = 3
_NFQNL_MSG_PACKET, _NFQNL_MSG_CONFIG, _NFQNL_MSG_VERDICT_BATCH = 0, 2, 3
_NLM_F_REQUEST, _NLM_F_ACK, _NLMSG_ERROR = 1, 4, 2
_NFQA_PACKET_HDR, _NFQA_VERDICT_HDR = 1, 2
_NFQA_CFG_CMD, _NFQA_CFG_PARAMS, _NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
_NFQA_CFG_MASK, _NFQA_CFG_FLAGS, _NFQA_CFG_F_GSO = 4, 5, 4
_NFQNL_CFG_CMD_BIND, _NFQNL_COPY_META, _NF_ACCEPT = 1, 1, 1
QUEUES = {"up": 0, "down": 1}


def _nla(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("HH", size, kind) + payload + b"\0" * (-size % 4)


def _nfq_msg(kind: int, queue: int, attrs: Sequence[bytes], flags: int = _NLM_F_REQUEST) -> bytes:
    body = struct.pack("BB", socket.AF_UNSPEC, 0) + struct.pack("!H", queue) + b"".join(attrs)
    header = struct.pack("IHHII", 16 + len(body), (_NFNL_SUBSYS_QUEUE << 8) | kind, flags, 0, 0)
    return header + body


class _KernelQueue:
    """One NFQUEUE (one direction): packets are held ``delay`` seconds, then accepted, in order.

    Raw netlink (``nfnetlink_queue``), metadata only (no payload is copied), GSO packets whole;
    verdicts go in batches (``NFQNL_MSG_VERDICT_BATCH`` accepts every packet up to an id).
    """

    def __init__(self, num: int) -> None:
        self.num = num
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 32 << 20)
        self.sock.bind((0, 0))
        for attrs in (
            [_nla(_NFQA_CFG_CMD, struct.pack("BBH", _NFQNL_CFG_CMD_BIND, 0, 0))],
            [_nla(_NFQA_CFG_PARAMS, struct.pack("!IB", 0, _NFQNL_COPY_META))],
            [_nla(_NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 1 << 16))],
            [_nla(_NFQA_CFG_MASK, struct.pack("!I", _NFQA_CFG_F_GSO)),
             _nla(_NFQA_CFG_FLAGS, struct.pack("!I", _NFQA_CFG_F_GSO))],
        ):
            self._config(_nfq_msg(_NFQNL_MSG_CONFIG, num, attrs, _NLM_F_REQUEST | _NLM_F_ACK))
        self.pending: deque[tuple[float, int]] = deque()
        self.delay = 0.0
        self.last_due = 0.0
        self.late: list[float] = []
        self.overruns = 0

    def _config(self, message: bytes) -> None:
        self.sock.send(message)
        reply = self.sock.recv(65536)
        if struct.unpack_from("IH", reply)[1] == _NLMSG_ERROR:
            err = struct.unpack_from("i", reply, 16)[0]
            if err:
                raise OSError(-err, f"nfqueue {self.num} config: {os.strerror(-err)}")

    def read(self, now: float) -> None:
        try:
            data = self.sock.recv(1 << 20)
        except OSError:  # ENOBUFS: the kernel dropped what it could not hand over
            self.overruns += 1
            return
        off = 0
        while off + 16 <= len(data):
            size, kind = struct.unpack_from("IH", data, off)
            if size < 16:
                break
            if kind == (_NFNL_SUBSYS_QUEUE << 8) | _NFQNL_MSG_PACKET:
                a, end = off + 20, off + size
                while a + 4 <= end:
                    alen, atype = struct.unpack_from("HH", data, a)
                    if alen < 4:
                        break
                    if atype & 0x7FFF == _NFQA_PACKET_HDR:
                        due = max(now + self.delay, self.last_due)
                        self.last_due = due
                        self.pending.append((due, struct.unpack_from("!I", data, a + 4)[0]))
                    a += (alen + 3) & ~3
            off += (size + 3) & ~3

    def release(self, now: float) -> None:
        last = None
        while self.pending and self.pending[0][0] <= now:
            due, last = self.pending.popleft()
            self.late.append(now - due)
        if last is not None:
            verdict = _nla(_NFQA_VERDICT_HDR, struct.pack("!II", _NF_ACCEPT, last))
            self.sock.send(_nfq_msg(_NFQNL_MSG_VERDICT_BATCH, self.num, [verdict]))


def _nfqueue_main() -> None:
    """The kernel delay line: queues 0 (up) and 1 (down); commands on stdin as the relay's."""
    queues = {d: _KernelQueue(n) for d, n in QUEUES.items()}
    by_fd = {q.sock.fileno(): q for q in queues.values()}
    print("ready", flush=True)
    buf = b""
    while True:
        dues = [q.pending[0][0] for q in queues.values() if q.pending]
        timeout = max(0.0, min(dues) - time.monotonic()) if dues else 1.0
        ready, _, _ = select.select([*by_fd, 0], [], [], timeout)
        now = time.monotonic()
        for fd in ready:
            if fd != 0:
                by_fd[fd].read(now)
                continue
            chunk = os.read(0, 4096)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                words = line.decode().split()
                if words and words[0] == "delay":
                    queues["up"].delay, queues["down"].delay = float(words[1]), float(words[2])
                    print("ok", flush=True)
                elif words and words[0] == "stats":
                    late = [x for q in queues.values() for x in q.late]
                    for q in queues.values():
                        q.late.clear()
                    overruns = sum(q.overruns for q in queues.values())
                    print(_late_stats(late, overruns), flush=True)
        now = time.monotonic()
        for q in queues.values():
            q.release(now)


def _iptables(port: int) -> list[list[str]]:
    """Rules that queue what arrives for ``port`` (up) and from it (down), on receipt."""
    return [
        ["iptables", "-t", "mangle", "-A", "PREROUTING", "-i", "lo", "-p", "tcp", flag, str(port),
         "-j", "NFQUEUE", "--queue-num", str(QUEUES[direction])]
        for flag, direction in (("--dport", "up"), ("--sport", "down"))
    ]


# =========================================================================== the echo server


def _echo_main(max_requests: int, max_seconds: float, reply_values: int) -> None:
    """A gRPC server with one method: ``InferRequest`` in, a real-sized ``InferReply`` out."""
    import grpc

    from rapid_env.serve import rapid_serve_pb2 as pb

    stop = threading.Event()
    calls = [0]
    lock = threading.Lock()

    def infer(request: Any, context: Any) -> Any:
        t0 = time.perf_counter()
        reply = pb.InferReply(
            request_id=request.request_id, actions=[0.25] * reply_values, rows=8,
            cols=reply_values // 8, server_ms=(time.perf_counter() - t0) * 1e3,
        )
        with lock:
            calls[0] += 1
            if calls[0] >= max_requests:
                stop.set()
        return reply

    handler = grpc.method_handlers_generic_handler(ECHO_SERVICE, {
        "Infer": grpc.unary_unary_rpc_method_handler(
            infer,
            request_deserializer=pb.InferRequest.FromString,
            response_serializer=pb.InferReply.SerializeToString,
        )
    })
    server = grpc.server(
        futures.ThreadPoolExecutor(4),
        options=[  # rapid-serve's
            ("grpc.max_receive_message_length", 16 << 20),
            ("grpc.max_send_message_length", 1 << 20),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=8,
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"port {port}", flush=True)
    stop.wait(max_seconds)
    server.stop(1).wait()


# ============================================================================== shaping (tc)


def _tc(*commands: str) -> None:
    """Run ``tc`` commands (one process, ``-batch``)."""
    proc = subprocess.run(
        ["tc", "-force", "-batch", "-"], input="\n".join(commands) + "\n",
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tc failed: {proc.stderr.strip()}\n{commands}")


def _tbf(handle: int, rate_bps: float, burst: int = BURST_BYTES, verb: str = "change") -> str:
    rate = max(int(rate_bps), 8_000)  # tbf needs a positive rate: an outage is 8 kbit/s here
    return (
        f"qdisc {verb} dev lo parent 1:{handle} handle {handle}: tbf rate {rate}bit "
        f"burst {burst} limit {TBF_LIMIT_BYTES}"
    )


class Shaper:
    """``lo``: htb root (classification only) with a tbf leaf per direction."""

    def __init__(self, rate_mode: str) -> None:
        self.factor = GOODPUT_FACTOR if rate_mode == "goodput" else 1.0
        run = subprocess.run
        run(["ip", "link", "set", "lo", "up"], check=True)
        run(["ip", "link", "set", "lo", "mtu", str(MTU)], check=True)
        # Every row's connection starts fresh: no RTT or ssthresh inherited from the last one.
        Path("/proc/sys/net/ipv4/tcp_no_metrics_save").write_text("1")
        _tc(
            "qdisc add dev lo root handle 1: htb default 30",
            *(f"class add dev lo parent 1: classid 1:{c} htb rate 10gbit quantum 200000"
              for c in (10, 20, 30)),
            _tbf(10, UNSHAPED_BPS, 1 << 20, "add"),
            _tbf(20, UNSHAPED_BPS, 1 << 20, "add"),
        )

    def classify(self, port: int) -> None:
        """Traffic to ``port`` is "up", from it "down"."""
        _tc(
            f"filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport {port} 0xffff "
            "flowid 1:10",
            f"filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport {port} 0xffff "
            "flowid 1:20",
        )

    def set(self, up_bps: float, down_bps: float) -> None:
        """The payload rates (bit/s) of both directions."""
        _tc(_tbf(10, up_bps * self.factor), _tbf(20, down_bps * self.factor))

    def unshaped(self) -> None:
        """Both directions at 10 Gbit/s with a 1 MiB bucket: no shaping to speak of."""
        _tc(_tbf(10, UNSHAPED_BPS, 1 << 20), _tbf(20, UNSHAPED_BPS, 1 << 20))

    @staticmethod
    def drops() -> int:
        """Packets the qdiscs on ``lo`` dropped so far."""
        out = subprocess.run(["tc", "-s", "qdisc", "show", "dev", "lo"], capture_output=True,
                             text=True).stdout
        total = 0
        for part in out.split("(dropped ")[1:]:
            total += int(part.split(",")[0])
        return total


class TraceShaper(threading.Thread):
    """Follow a trace link's rates in wall time from trace time ``offset``: one step per row."""

    def __init__(self, shaper: Shaper, link: Any, offset: float) -> None:
        super().__init__(daemon=True)
        self.shaper, self.link, self.offset = shaper, link, offset
        self.stop_event = threading.Event()
        self.lags: list[float] = []
        self.t0 = 0.0

    def _apply(self, tau: float) -> None:
        up = self.link.up.rate_at(tau, True)
        down = self.link.down.rate_at(tau, True)
        self.shaper.set(up, down)

    def begin(self) -> float:
        """Set the rates at the offset and start following; returns the wall time of trace 0."""
        self._apply(self.offset)
        self.t0 = time.perf_counter()
        self.start()
        return self.t0

    def run(self) -> None:
        """Sleep to each next step of the trace, then set its rates."""
        times = self.link.up.times_s
        period = times[-1]
        tau = self.offset
        while not self.stop_event.is_set():
            base = math.floor(tau / period) * period
            nxt = next((base + b for b in times if base + b > tau + 1e-9), base + period)
            target = self.t0 + (nxt - self.offset)
            if self.stop_event.wait(max(0.0, target - time.perf_counter())):
                return
            self._apply(nxt + 1e-9)
            self.lags.append(time.perf_counter() - target)
            tau = nxt

    def halt(self) -> None:
        """Stop following the trace."""
        self.stop_event.set()
        self.join(5)


# =========================================================================== the model side


def fresh_link(spec: str, seed: int, offset: float) -> Any:
    """The model: a fresh link from ``spec``; a trace starts at ``offset`` and never times out."""
    import numpy as np

    from rapid_env.link import parse_link
    from rapid_env.link.models import TraceLink

    link = parse_link(spec)
    link.reset(np.random.default_rng(seed))
    if isinstance(link, TraceLink):
        link.offset_s = offset
        link.timeout_s = math.inf
    return link


def model_delays(spec: str, seed: int, offset: float) -> tuple[float, float]:
    """The one-way delays the model draws for one request (what the delay line applies)."""
    link = fresh_link(spec, seed, offset)
    return link.transfer(0, 0.0, "up").arrival, link.transfer(0, 0.0, "down").arrival


def modelled_s(spec: str, up_bytes: int, down_bytes: int, t: float, seed: int,
               offset: float) -> float:
    """``transfer(up)`` then ``transfer(down)`` on a fresh link: ``arrival - t``."""
    link = fresh_link(spec, seed, offset)
    up = link.transfer(up_bytes, t, "up")
    down = link.transfer(down_bytes, up.arrival, "down")
    return float(down.arrival - t)


# ================================================================================= processes


class Child:
    """A child process in its own process group; its stdout lines, read by a thread."""

    def __init__(self, cmd: list[str], log: Path, stdin: bool = False) -> None:
        self.log, self.name = log, " ".join(cmd[:4])
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=log.open("w"), text=True, start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def read_line(self, prefix: str, timeout_s: float) -> str:
        """The next stdout line starting with ``prefix`` (the rest of it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                break
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise RuntimeError(f"{self.name} gave no {prefix!r} line; its log ends:\n{tail}")

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after 5 s."""
        proc = self.proc
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        if proc.stdin is not None:
            proc.stdin.close()


class DelayHandle:
    """The delay child (relay or kernel queue): set its delays, read its timing statistics."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self.delays = (-1.0, -1.0)

    def _ask(self, line: str, prefix: str) -> str:
        stdin = self.child.proc.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()
        return self.child.read_line(prefix, 10.0)

    def set_delays(self, up: float, down: float) -> None:
        """One-way delays (s) for what is read from now on."""
        if (up, down) != self.delays:
            self._ask(f"delay {up!r} {down!r}", "ok")
            self.delays = (up, down)

    def stats(self) -> tuple[int, float, float, int]:
        """What was released since the last call: count, mean and worst lateness (ms), overruns.

        Overruns: how often the kernel could not hand packets over (always 0 for the relay).
        """
        n, mean, worst, overruns = self._ask("stats", "stats ").split()
        return int(n), float(mean), float(worst), int(overruns)


# ============================================================================== measurement


@dataclass
class Sample:
    """One request: its measured and modelled transfer time."""

    measured_s: float
    modelled_s: float

    @property
    def error(self) -> float:
        """(measured - modelled) / modelled."""
        return (self.measured_s - self.modelled_s) / self.modelled_s


@dataclass
class Row:
    """One (case, payload, path): its measured requests and the first (cold) one."""

    case: str
    payload: str
    path: str
    up_bytes: int
    samples: list[Sample]
    cold: Sample | None
    late_ms: float = 0.0
    overruns: int = 0


Call = Callable[[str], tuple[float, float, int]]
"""One request: id -> (round trip s, server s, reply bytes)."""


def infer_call(address: str, token: str, blob: bytes) -> tuple[Call, Callable[[], None]]:
    """A real ``Infer`` of ``blob`` (split 0, no compression) on a new connection."""
    from rapid_env.serve.client import PolicyClient
    from rapid_env.serve.transport import reply_bytes

    client = PolicyClient(address, token, timeout_s=120.0)
    client.wait_ready(30.0)

    def call(rid: str) -> tuple[float, float, int]:
        actions, server_ms, rtt_ms = client.infer(rid, 0, "fidelity", blob, "none", 120.0)
        return rtt_ms / 1e3, server_ms / 1e3, reply_bytes(rid, actions, server_ms)

    return call, client.close


def echo_call(address: str, token: str, blob: bytes) -> tuple[Call, Callable[[], None]]:
    """The echo method with ``blob``: the same messages, channel options and metadata."""
    import grpc

    from rapid_env.serve import rapid_serve_pb2 as pb

    channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 1 << 20)])
    grpc.channel_ready_future(channel).result(timeout=30.0)
    method = channel.unary_unary(
        ECHO_METHOD, request_serializer=pb.InferRequest.SerializeToString,
        response_deserializer=pb.InferReply.FromString,
    )
    metadata = (("authorization", f"Bearer {token}"),)

    def call(rid: str) -> tuple[float, float, int]:
        request = pb.InferRequest(request_id=rid, split=0, instruction="fidelity", boundary=blob,
                                  compression="none")
        t0 = time.perf_counter()
        reply = method(request, timeout=120.0, metadata=metadata)
        rtt = time.perf_counter() - t0
        return rtt, reply.server_ms / 1e3, reply.ByteSize()

    return call, channel.close


@dataclass
class Bench:
    """What a session needs: the shaper, the delay line, where each path's server listens."""

    shaper: Shaper
    delay: DelayHandle
    ports: dict[str, int]  # "infer" / "echo" -> the port the client connects to
    token: str
    offset: float
    seed: int
    gap_s: float
    verbose: bool = False
    tc_lags: list[float] = field(default_factory=list)

    def session(self, case: str, spec: str | None, payload: str, path: str, blob: bytes,
                n: int, warmup: int) -> Row:
        """``warmup + n`` requests on a new connection; ``spec`` None: loopback, no shaping."""
        from rapid_env.link.models import TraceLink

        follower: TraceShaper | None = None
        if spec is None:
            self.shaper.unshaped()
        else:
            link = fresh_link(spec, self.seed, self.offset)
            if isinstance(link, TraceLink):
                follower = TraceShaper(self.shaper, link, self.offset)
            else:
                self.shaper.set(link.bandwidth_bps, link.bandwidth_bps)
        kind = "infer" if path == "infer" else "echo"
        maker = infer_call if kind == "infer" else echo_call
        seeds = [self.seed * 1000 + i for i in range(warmup + n)]
        delays = [(0.0, 0.0) if spec is None else model_delays(spec, seed, self.offset)
                  for seed in seeds]
        # The connection is opened across the delayed path, as a real one would be: TCP's RTT
        # estimates (BBR's min_rtt, which sizes its window) start from the real handshake.
        self.delay.set_delays(*delays[0])
        call, close = maker(f"127.0.0.1:{self.ports[kind]}", self.token, blob)
        samples: list[Sample] = []
        cold: Sample | None = None
        self.delay.stats()
        t0 = follower.begin() if follower is not None else time.perf_counter()
        try:
            for i, seed in enumerate(seeds):
                self.delay.set_delays(*delays[i])
                t = time.perf_counter() - t0
                rtt, server, down_bytes = call(f"{case}-{payload}-{path}-{i}")
                measured = rtt - server
                model = (0.0 if spec is None
                         else modelled_s(spec, len(blob), down_bytes, t, seed, self.offset))
                sample = Sample(measured, model)
                if self.verbose and spec is not None:
                    print(f"    {case} {payload} {path} #{i} t={t:.2f} s: measured "
                          f"{measured * 1e3:.1f} ms, modelled {model * 1e3:.1f} ms "
                          f"({sample.error * 100:+.1f}%)", file=sys.stderr, flush=True)
                if i == 0:
                    cold = sample
                if i >= warmup:
                    samples.append(sample)
                time.sleep(self.gap_s)
        finally:
            if follower is not None:
                follower.halt()
                self.tc_lags.extend(follower.lags)
            close()
        _, late_ms, _, overruns = self.delay.stats()
        return Row(case, payload, path, len(blob), samples, cold, late_ms, overruns)


def raw_check(shaper: Shaper, rate_bps: float, nbytes: int = 1_000_000) -> float:
    """Seconds for ``nbytes`` through the "up" tbf at ``rate_bps`` (payload rate), raw TCP."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    shaper.classify(port)
    shaper.set(rate_bps, rate_bps)
    done: list[float] = []

    def sink() -> None:
        conn, _ = srv.accept()
        with conn:
            got = 0
            while got < nbytes:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
            done.append(time.perf_counter())
            conn.sendall(b"k")

    th = threading.Thread(target=sink, daemon=True)
    th.start()
    with socket.create_connection(("127.0.0.1", port)) as c:
        time.sleep(0.05)
        t0 = time.perf_counter()
        c.sendall(b"x" * nbytes)
        c.recv(1)
    th.join(10)
    srv.close()
    return done[0] - t0


# ================================================================================== the run


def image_blob(seed: int) -> bytes:
    """The executable ``chunk-regress`` model's split-0 boundary for a random image."""
    import torch

    from rapid_env.agents.vla.split import SplitRunner
    from rapid_env.compose import build_policy
    from rapid_env.config import EnvConfig

    model = build_policy(EnvConfig(policy="chunk-regress")).model  # type: ignore[attr-defined]
    cfg, s = model.cfg, model.cfg.image_size
    gen = torch.Generator().manual_seed(seed)
    state = model.prepare(
        torch.randint(0, 256, (1, s, s, 3), dtype=torch.uint8, generator=gen),
        torch.rand(1, cfg.proprio_dim, generator=gen),
        torch.zeros(1, cfg.max_text_tokens, dtype=torch.long),
        torch.Generator(),
    )
    return SplitRunner(model, 0, "none").edge(state)


def large_nbytes() -> int:
    """The ``openvla-7b`` profile's boundary after block 3 (inside the language model)."""
    from rapid_env.cost import load_profile

    return int(math.ceil(load_profile("openvla-7b").blocks[3].activation_bytes))


def _median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def print_table(rows: list[Row]) -> list[float]:
    """The table; returns the headline rows' absolute errors."""
    head = (f"{'case':16s} {'payload':8s} {'path':6s} {'bytes up':>10s} {'n':>3s} "
            f"{'measured ms':>12s} {'modelled ms':>12s} {'err':>7s} {'|err|':>7s} "
            f"{'cold err':>9s} {'late ms':>8s}")
    print(head)
    print("-" * len(head))
    errors: list[float] = []
    for r in rows:
        meas = _median([s.measured_s for s in r.samples]) * 1e3
        model = _median([s.modelled_s for s in r.samples]) * 1e3
        if r.case == "loopback":
            err = abs_err = cold = "-"
        else:
            errs = [s.error for s in r.samples]
            err = f"{_median(errs) * 100:+.1f}%"
            abs_err = f"{_median([abs(e) for e in errs]) * 100:.1f}%"
            cold = f"{r.cold.error * 100:+.1f}%" if r.cold else "-"
            if r.path in HEADLINE_PATHS:
                errors.extend(abs(e) for e in errs)
        print(f"{r.case:16s} {r.payload:8s} {r.path:6s} {r.up_bytes:>10,d} {len(r.samples):>3d} "
              f"{meas:>12.1f} {model:>12.1f} {err:>7s} {abs_err:>7s} {cold:>9s} "
              f"{r.late_ms:>8.2f}")
    return errors


def inside(args: argparse.Namespace) -> int:
    """The benchmark proper, in its own network namespace."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("WANDB_MODE", "offline")
    cases = [c for c in args.cases.split(",") if c]
    n, warmup = args.requests, args.warmup
    children: list[Child] = []
    tmp = Path(tempfile.mkdtemp(prefix="rapid-fidelity-"))
    try:
        shaper = Shaper(args.rate_mode)
        cc_file = Path("/proc/sys/net/ipv4/tcp_congestion_control")
        if args.cc:
            cc_file.write_text(args.cc)  # this namespace's default only
        cc = cc_file.read_text().strip()
        token_file = tmp / "token"
        token = os.urandom(24).hex()
        token_file.write_text(token)
        token_file.chmod(0o600)
        bound = (len(cases) + 1) * (n + warmup) + 10  # Infer calls this run makes, and a margin
        serve = Child([
            sys.executable, "-m", "rapid_env.cli.serve", "--policy", "chunk-regress",
            "--port", "0", "--token-file", str(token_file), "--max-requests", str(bound),
            "--max-seconds", "1800", "--log-level", "WARNING",
        ], tmp / "serve.log")
        children.append(serve)
        echo = Child([
            sys.executable, __file__, "--echo-server", "--max-requests", str(2 * bound),
            "--max-seconds", "1800",
        ], tmp / "echo.log")
        children.append(echo)
        blob_image = image_blob(args.seed)
        blob_large = os.urandom(args.large_bytes or large_nbytes())
        ports = {"infer": int(serve.read_line("rapid-serve: port", 120.0)),
                 "echo": int(echo.read_line("port", 60.0))}
        if args.delay == "relay":
            line = Child([sys.executable, __file__, "--relay", "--upstream",
                          f"{ports['infer']},{ports['echo']}"], tmp / "relay.log", stdin=True)
            children.append(line)
            relayed = [int(p) for p in line.read_line("ports", 30.0).split(",")]
            ports = dict(zip(("infer", "echo"), relayed, strict=True))
        else:
            line = Child([sys.executable, __file__, "--nfqueue"], tmp / "nfqueue.log", stdin=True)
            children.append(line)
            line.read_line("ready", 30.0)
            for port in ports.values():
                for rule in _iptables(port):
                    subprocess.run(rule, check=True)
        for port in ports.values():
            shaper.classify(port)

        took = raw_check(shaper, 20e6)
        expect = 8 * 1_000_000 / 20e6
        print(f"tbf check: 1,000,000 bytes of raw TCP through the 'up' tbf at 20 Mbit/s "
              f"(payload rate, rate mode {args.rate_mode}): {took * 1e3:.1f} ms, "
              f"payload model {expect * 1e3:.1f} ms ({(took / expect - 1) * 100:+.1f}%)")
        if not 0.8 < took / expect < 1.3:
            print("tbf does not limit as configured: stopping", file=sys.stderr)
            return 1

        bench = Bench(shaper, DelayHandle(line), ports, token, args.trace_offset, args.seed,
                      args.gap, args.verbose)
        rows: list[Row] = []
        plan = [("image", "infer", blob_image), ("image", "check", blob_image),
                ("large", "echo", blob_large)]
        t_start = time.perf_counter()
        for case in ["loopback", *cases]:
            for payload, path, blob in plan:
                spec = None if case == "loopback" else case
                rows.append(bench.session(case, spec, payload, path, blob, n, warmup))
                print(f"  ... {case} {payload} {path}: {time.perf_counter() - t_start:.0f} s",
                      file=sys.stderr, flush=True)
        lags = bench.tc_lags or [0.0]
        print(f"delay: {args.delay}; TCP congestion control: {cc}; cases: {', '.join(cases)}; "
              f"{n} requests per row after {warmup} warm-up (the first, 'cold', opens the "
              f"connection), {args.gap:g} s apart; trace offset {args.trace_offset:g} s, "
              f"{len(bench.tc_lags)} trace steps applied {statistics.fmean(lags) * 1e3:.1f} ms "
              f"late on average (max {max(lags) * 1e3:.1f}); tbf rate mode {args.rate_mode}; "
              f"tbf drops {Shaper.drops()}; delay-line overruns {sum(r.overruns for r in rows)}")
        errors = print_table(rows)
        print(f"fidelity: median |measured-modelled|/modelled = {_median(errors) * 100:.1f} %")
        return 0
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def parser() -> argparse.ArgumentParser:
    """The flags (internal modes are hidden)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="constant:20:40,constant:5:80,5g-driving",
                    help="comma-separated link specs (constant or trace presets without loss)")
    ap.add_argument("--requests", type=int, default=10, help="measured requests per row")
    ap.add_argument("--warmup", type=int, default=2,
                    help="requests before them on the row's new connection (the first: cold)")
    ap.add_argument("--large-bytes", type=int, default=0,
                    help="size of the large payload (default: openvla-7b's block-3 boundary)")
    ap.add_argument("--trace-offset", type=float, default=13.0,
                    help="trace time (s) where a trace case starts (13: 5g-driving's 42 s "
                         "without an outage)")
    ap.add_argument("--rate-mode", choices=("goodput", "wire"), default="goodput",
                    help="tbf rate = spec x 1514/1448 (payload rate = spec) or = spec")
    ap.add_argument("--gap", type=float, default=0.1,
                    help="idle seconds between two requests of a row")
    ap.add_argument("--cc", default="",
                    help="TCP congestion control in the namespace (default: the kernel's; a "
                         "namespace may only pick tcp_allowed_congestion_control, e.g. reno)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="print every request (stderr)")
    ap.add_argument("--delay", choices=("kernel", "relay"), default=None,
                    help="kernel: NFQUEUE holds packets on receipt (needs iptables; default "
                         "when present); relay: a user-space TCP relay delays chunks")
    ap.add_argument(INSIDE_FLAG, action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--nfqueue", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--relay", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    ap.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--max-requests", type=int, default=1000, help=argparse.SUPPRESS)
    ap.add_argument("--max-seconds", type=float, default=1800.0, help=argparse.SUPPRESS)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Re-execute in a new network namespace, then run there."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.relay:
        asyncio.run(_relay_main([int(p) for p in args.upstream.split(",")]))
        return 0
    if args.echo_server:
        _echo_main(args.max_requests, args.max_seconds, reply_values=32)
        return 0
    if args.nfqueue:
        _nfqueue_main()
        return 0
    if args.inside_netns:
        return inside(args)
    if args.delay is None:
        args.delay = "kernel" if shutil.which("iptables") else "relay"
        argv += ["--delay", args.delay]
    if args.delay == "kernel" and shutil.which("iptables") is None:
        print("fidelity: --delay kernel needs iptables (apt-get install -y iptables)",
              file=sys.stderr)
        return 2
    for tool in ("tc", "ip", "unshare"):
        if shutil.which(tool) is None:
            print(f"fidelity: needs '{tool}' (apt-get install -y iproute2 util-linux)",
                  file=sys.stderr)
            return 2
    cmd = [sys.executable, os.path.abspath(__file__), *argv, INSIDE_FLAG]
    for unshare in (["unshare", "-n"], ["unshare", "-rn"]):
        probe = subprocess.run([*unshare, "true"], capture_output=True)
        if probe.returncode == 0:
            return subprocess.run([*unshare, "--", *cmd]).returncode
    print("fidelity: cannot create a network namespace (unshare -n / -rn failed)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
