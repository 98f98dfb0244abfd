"""Measured vs modelled: real gRPC requests through a shaped path against the link model.

For each case (a link spec) and payload, the script sends real requests through a path shaped to
that spec on this machine and compares each request's measured transfer time (the client's round
trip minus the server's own compute) with what the simulated link predicts for the same bytes at
the same moment: a fresh link from the spec, ``transfer(up_bytes, t, "up")`` then
``transfer(down_bytes, arrival, "down")``, ``arrival - t``.

**The path** (everything on loopback, in a private network namespace: the script re-executes
itself under ``unshare -n``, so nothing it does touches the host's network)::

    client --lo, tbf "up"--> relay --(delay d_up)--> lo --> server        (upload)
    client <--lo, tbf "down"-- relay <--(delay d_down)-- lo <-- server    (reply)

* **Bandwidth: ``tbf``, one per direction.** ``netem`` is not in this kernel; ``tbf`` and ``htb``
  are. The root of ``lo`` is an ``htb`` whose only job is to classify (three classes at 10 Gbit/s):
  packets *to* the relay's port go to a ``tbf`` leaf "up", packets *from* it to a ``tbf`` leaf
  "down" (so the upload's ACKs share the downlink, as on a real link), everything else (relay <->
  server) is unshaped. ``lo``'s MTU is set to 1500, so TCP segments are Ethernet-sized (MSS 1448).
  ``tbf`` meters wire bytes (IP, TCP and the 14-byte link header included), while the model's
  bandwidth is the rate of payload bytes (the trace presets are measured TCP goodput), so the
  ``tbf`` rate is the spec's x 1514/1448 (``--rate-mode goodput``, default); ``--rate-mode wire``
  gives ``tbf`` the spec's rate as it is. The bucket is 1600 bytes (one full frame: the least
  ``tbf`` takes), so a transfer starts with at most one frame of credit.
* **Delay: a user-space relay** (``--relay`` mode of this script, asyncio): every chunk of bytes it
  reads is written on after the direction's one-way delay, in order. The delay of each request is
  the one the model draws for it (half the RTT for a constant link; the trace preset's own RTT
  sample per direction), set over the relay's stdin before the request.
* **Traces**: a thread follows the trace in wall time from ``--trace-offset`` and changes both
  ``tbf`` rates (``tc qdisc change``) at every step of the trace; the model's link gets the same
  start offset (instead of its random one) and no timeout (a slow transfer is measured, not lost).

**Payloads.** ``image``: the executable ``chunk-regress`` model's split-0 boundary (its
safetensors bytes, what the edge sends when it runs nothing), as a real ``Infer`` to
``rapid-serve``. ``large``: the boundary of the ``openvla-7b`` profile inside its language model
(block 3, about 2.26 MB): ``rapid-serve`` validates boundary tensors against its own (small) model,
so these bytes go to an **echo** method instead: a gRPC server started by this script (same grpcio,
the same channel and server options, the same ``InferRequest``/``InferReply`` messages, the same
metadata) whose handler answers at once with a reply of the real reply's size. What is timed (the
client's round trip minus the handler's time) is the same gRPC transfer as an ``Infer``: HTTP/2
framing, flow control and TCP through the same shaped path; only the handler differs, and its
time is subtracted on both. The ``image`` payload is also sent through the echo method as a check
(rows marked ``check``): it should agree with the real ``Infer`` of the same bytes.

Before the cases: a raw TCP transfer of 1 MB through the "up" ``tbf`` checks that it limits as
configured, and a ``loopback`` session (no delay, ``tbf`` at 10 Gbit/s) measures what the stack
itself costs (client, relay, server; not counted in the figure).

Output: one row per (case, payload, path) with the median measured and modelled milliseconds, the
median signed and absolute relative error over the requests, and the first (cold, new connection)
request's error; the last line is ``fidelity: median |measured-modelled|/modelled = X %`` over all
requests of the ``infer``/``echo`` rows (``check`` rows excluded). ``docs/fidelity.md`` has the
results and the explanation of the biases.

Usage (as root, or where ``unshare -rn`` works; ``tc`` from ``iproute2``)::

    python benchmarks/fidelity.py                 # about 3 minutes on 2 cores
    python benchmarks/fidelity.py --requests 4    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
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
CONSTANT_GAP_S = 0.1  # idle time between two requests of a session
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


def _relay_control(relay: _Relay, done: asyncio.Event) -> None:
    """Commands on stdin, one per line: ``delay <up_s> <down_s>``, ``stats``; EOF stops."""
    loop = relay.loop
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        applied = threading.Event()
        if words[0] == "delay":
            up, down = float(words[1]), float(words[2])

            def apply(up: float = up, down: float = down) -> None:
                relay.delay.update(up=up, down=down)
                applied.set()

            loop.call_soon_threadsafe(apply)
            applied.wait()
            print("ok", flush=True)
        elif words[0] == "stats":
            box: list[float] = []

            def take() -> None:
                box.extend(relay.late)
                relay.late.clear()
                applied.set()

            loop.call_soon_threadsafe(take)
            applied.wait()
            mean = statistics.fmean(box) * 1e3 if box else 0.0
            worst = max(box) * 1e3 if box else 0.0
            print(f"stats {len(box)} {mean:.3f} {worst:.3f}", flush=True)
    loop.call_soon_threadsafe(done.set)


async def _relay_main(upstreams: Sequence[int]) -> None:
    loop = asyncio.get_running_loop()
    relay = _Relay(loop)
    ports = []
    for port in upstreams:
        server = await loop.create_server(
            lambda port=port: _Downstream(relay, port), "127.0.0.1", 0
        )
        ports.append(server.sockets[0].getsockname()[1])
    print("ports " + ",".join(str(p) for p in ports), flush=True)
    done = asyncio.Event()
    threading.Thread(target=_relay_control, args=(relay, done), daemon=True).start()
    await done.wait()


# =========================================================================== the echo server


def _echo_main(max_requests: int, max_seconds: float, reply_values: int) -> None:
    """A gRPC server with one method: ``InferRequest`` in, an ``InferReply`` of the real size out."""
    import grpc

    from rapid_env.eval.serve import rapid_serve_pb2 as pb

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
        _tc(_tbf(10, UNSHAPED_BPS, 1 << 20), _tbf(20, UNSHAPED_BPS, 1 << 20))

    @staticmethod
    def drops() -> int:
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
    """The one-way delays the model draws for one request (what the relay applies)."""
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
        self.log = log
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
        raise RuntimeError(f"{self.proc.args[:4]} gave no {prefix!r} line; its log ends:\n{tail}")

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


class RelayHandle:
    """The relay child: set its delays, read its timing statistics."""

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
        if (up, down) != self.delays:
            self._ask(f"delay {up!r} {down!r}", "ok")
            self.delays = (up, down)

    def stats(self) -> tuple[int, float, float]:
        n, mean, worst = self._ask("stats", "stats ").split()
        return int(n), float(mean), float(worst)


# ============================================================================== measurement


@dataclass
class Sample:
    measured_s: float
    modelled_s: float

    @property
    def error(self) -> float:
        return (self.measured_s - self.modelled_s) / self.modelled_s


@dataclass
class Row:
    case: str
    payload: str
    path: str
    up_bytes: int
    samples: list[Sample]
    cold: Sample | None
    relay_late_ms: float = 0.0


Call = Callable[[str], tuple[float, float, int]]
"""One request: id -> (round trip s, server s, reply bytes)."""


def infer_call(address: str, token: str, blob: bytes) -> tuple[Call, Callable[[], None]]:
    """A real ``Infer`` of ``blob`` (split 0, no compression) on a new connection."""
    from rapid_env.eval.serve.client import PolicyClient
    from rapid_env.eval.serve.transport import reply_bytes

    client = PolicyClient(address, token, timeout_s=120.0)
    client.wait_ready(30.0)

    def call(rid: str) -> tuple[float, float, int]:
        actions, server_ms, rtt_ms = client.infer(rid, 0, "fidelity", blob, "none", 120.0)
        return rtt_ms / 1e3, server_ms / 1e3, reply_bytes(rid, actions, server_ms)

    return call, client.close


def echo_call(address: str, token: str, blob: bytes) -> tuple[Call, Callable[[], None]]:
    """The echo method with ``blob``: the same messages, channel options and metadata."""
    import grpc

    from rapid_env.eval.serve import rapid_serve_pb2 as pb

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
    shaper: Shaper
    relay: RelayHandle
    ports: dict[str, int]  # path -> relay port
    token: str
    offset: float
    seed: int

    def session(self, case: str, spec: str | None, payload: str, path: str, blob: bytes,
                n: int, warmup: int) -> Row:
        """``warmup + n`` requests on a new connection; ``spec`` None: loopback, no shaping."""
        from rapid_env.link.models import TraceLink

        follower: TraceShaper | None = None
        if spec is None:
            self.shaper.unshaped()
            t0 = time.perf_counter()
        else:
            link = fresh_link(spec, self.seed, self.offset)
            if isinstance(link, TraceLink):
                follower = TraceShaper(self.shaper, link, self.offset)
            else:
                self.shaper.set(link.bandwidth_bps, link.bandwidth_bps)
        maker = infer_call if path == "infer" else echo_call
        self.relay.set_delays(0.0, 0.0)
        call, close = maker(f"127.0.0.1:{self.ports[path]}", self.token, blob)
        samples: list[Sample] = []
        cold: Sample | None = None
        self.relay.stats()
        try:
            if follower is not None:
                t0 = follower.begin()
            elif spec is not None:
                t0 = time.perf_counter()
            for i in range(warmup + n):
                seed = self.seed * 1000 + i
                if spec is not None:
                    self.relay.set_delays(*model_delays(spec, seed, self.offset))
                t = time.perf_counter() - t0
                rtt, server, down_bytes = call(f"{case}-{payload}-{path}-{i}")
                measured = rtt - server
                model = (0.0 if spec is None
                         else modelled_s(spec, len(blob), down_bytes, t, seed, self.offset))
                sample = Sample(measured, model)
                if i == 0:
                    cold = sample
                if i >= warmup:
                    samples.append(sample)
                time.sleep(CONSTANT_GAP_S)
        finally:
            if follower is not None:
                follower.halt()
            close()
        _, late_ms, _ = self.relay.stats()
        return Row(case, payload, path, len(blob), samples, cold, late_ms)


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
            f"{'cold err':>9s} {'relay late ms':>13s}")
    print(head)
    print("-" * len(head))
    errors: list[float] = []
    for r in rows:
        meas = _median([s.measured_s for s in r.samples]) * 1e3
        model = _median([s.modelled_s for s in r.samples]) * 1e3
        path = r.path if r.case == "loopback" or r.path in HEADLINE_PATHS else r.path
        if r.case == "loopback":
            err = abs_err = cold = "-"
        else:
            errs = [s.error for s in r.samples]
            err = f"{_median(errs) * 100:+.1f}%"
            abs_err = f"{_median([abs(e) for e in errs]) * 100:.1f}%"
            cold = f"{r.cold.error * 100:+.1f}%" if r.cold else "-"
            if r.path in HEADLINE_PATHS:
                errors.extend(abs(e) for e in errs)
        print(f"{r.case:16s} {r.payload:8s} {path:6s} {r.up_bytes:>10,d} {len(r.samples):>3d} "
              f"{meas:>12.1f} {model:>12.1f} {err:>7s} {abs_err:>7s} {cold:>9s} "
              f"{r.relay_late_ms:>13.2f}")
    return errors


def inside(args: argparse.Namespace) -> int:
    """The benchmark proper, in its own network namespace."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("WANDB_MODE", "offline")
    from rapid_env.eval.serve.transport import reply_bytes  # noqa: F401  (import check)

    cases = [c for c in args.cases.split(",") if c]
    n, warmup = args.requests, args.warmup
    # requests per path: loopback + every case, each with warm-up; infer also gets Info calls
    per_session = n + warmup
    procs: list[Child] = []
    tmp = Path(tempfile.mkdtemp(prefix="rapid-fidelity-"))
    try:
        shaper = Shaper(args.rate_mode)
        token_file = tmp / "token"
        token = os.urandom(24).hex()
        token_file.write_text(token)
        token_file.chmod(0o600)
        bound = (len(cases) + 1) * per_session + 10
        serve_log, echo_log, relay_log = tmp / "serve.log", tmp / "echo.log", tmp / "relay.log"
        serve = Child([
            sys.executable, "-m", "rapid_env.eval.serve.server", "--policy", "chunk-regress",
            "--port", "0", "--token-file", str(token_file), "--max-requests", str(bound),
            "--max-seconds", "1800", "--log-level", "WARNING",
        ], serve_log)
        procs.append(serve)
        echo = Child([
            sys.executable, __file__, "--echo-server", "--max-requests", str(2 * bound),
            "--max-seconds", "1800",
        ], echo_log)
        procs.append(echo)
        blob_image = image_blob(args.seed)
        blob_large = os.urandom(args.large_bytes or large_nbytes())
        serve_port = int(serve.read_line("rapid-serve: port", 120.0))
        echo_port = int(echo.read_line("port", 60.0))
        relay_child = Child([sys.executable, __file__, "--relay", "--upstream",
                             f"{serve_port},{echo_port}"], relay_log, stdin=True)
        procs.append(relay_child)
        relay = RelayHandle(relay_child)
        infer_port, echo_relay_port = (
            int(p) for p in relay_child.read_line("ports", 30.0).split(",")
        )
        for port in (infer_port, echo_relay_port):
            shaper.classify(port)

        took = raw_check(shaper, 20e6)
        expect = 8 * 1_000_000 / 20e6
        print(f"tbf check: 1,000,000 bytes of raw TCP through the 'up' tbf at 20 Mbit/s "
              f"(payload rate, rate mode {args.rate_mode}): {took * 1e3:.1f} ms, "
              f"payload model {expect * 1e3:.1f} ms ({(took / expect - 1) * 100:+.1f}%)")
        if not 0.8 < took / expect < 1.3:
            print("tbf does not limit as configured: stopping", file=sys.stderr)
            return 1

        bench = Bench(shaper, relay, {"infer": infer_port, "echo": echo_relay_port}, token,
                      args.trace_offset, args.seed)
        rows: list[Row] = []
        plan = [("image", "infer", blob_image), ("image", "check", blob_image),
                ("large", "echo", blob_large)]
        t_start = time.perf_counter()
        for payload, path, blob in plan:
            rows.append(bench.session("loopback", None, payload,
                                      "infer" if path == "infer" else "echo", blob, n, warmup))
            rows[-1].path = path
        for case in cases:
            for payload, path, blob in plan:
                row = bench.session(case, case, payload, "infer" if path == "infer" else "echo",
                                    blob, n, warmup)
                row.path = path
                rows.append(row)
                print(f"  ... {case} {payload} {path}: {time.perf_counter() - t_start:.0f} s",
                      file=sys.stderr, flush=True)
        print(f"cases: {', '.join(cases)}; {n} requests per row after {warmup} warm-up "
              f"(the first is the 'cold' one, on a new connection); trace offset "
              f"{args.trace_offset:g} s; tbf rate mode {args.rate_mode}; "
              f"tbf drops {Shaper.drops()}")
        errors = print_table(rows)
        print(f"fidelity: median |measured-modelled|/modelled = {_median(errors) * 100:.1f} %")
        return 0
    finally:
        for child in reversed(procs):
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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(INSIDE_FLAG, action="store_true", help=argparse.SUPPRESS)
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
    if args.inside_netns:
        return inside(args)
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
