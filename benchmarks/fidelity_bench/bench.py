"""One row of the table (a session of requests), and the raw-TCP check of ``tbf``.

A session opens a new connection through the shaped, delayed path and measures each request
against what the model predicts for the same bytes at the same moment.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .children import DelayHandle
from .model import fresh_link, loss_params, model_delays, model_run, round_trips
from .protocol import ECHO_METHOD
from .shaper import Shaper, TraceShaper


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
    """One (case, payload, path): its measured requests and the first (cold) one.

    ``rpcs`` round trips per request (1, or 7 for a split inside the decoding loop);
    ``trusted`` is False when the shaper check of the case failed (the row is not in the headline).
    """

    case: str
    payload: str
    path: str
    up_bytes: int
    samples: list[Sample]
    cold: Sample | None
    late_ms: float = 0.0
    overruns: int = 0
    rpcs: int = 1
    trusted: bool = True
    dropped: int = 0


Call = Callable[[str, bytes], tuple[float, float, int]]
"""One request: (id, boundary) -> (round trip s, server s, reply bytes)."""


def infer_call(address: str, token: str) -> tuple[Call, Callable[[], None]]:
    """A real ``Infer`` (split 0, no compression) on a new connection."""
    from rapid_env.serve.client import PolicyClient
    from rapid_env.serve.transport import reply_bytes

    client = PolicyClient(address, token, timeout_s=120.0)
    client.wait_ready(30.0)

    def call(rid: str, blob: bytes) -> tuple[float, float, int]:
        actions, server_ms, rtt_ms = client.infer(rid, 0, "fidelity", blob, "none", 120.0)
        return rtt_ms / 1e3, server_ms / 1e3, reply_bytes(rid, actions, server_ms)

    return call, client.close


def echo_call(address: str, token: str) -> tuple[Call, Callable[[], None]]:
    """The echo method: the same messages, channel options and metadata."""
    import grpc

    from rapid_env.serve import rapid_serve_pb2 as pb

    channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 1 << 20)])
    grpc.channel_ready_future(channel).result(timeout=30.0)
    method = channel.unary_unary(
        ECHO_METHOD, request_serializer=pb.InferRequest.SerializeToString,
        response_deserializer=pb.InferReply.FromString,
    )
    metadata = (("authorization", f"Bearer {token}"),)

    def call(rid: str, blob: bytes) -> tuple[float, float, int]:
        request = pb.InferRequest(request_id=rid, split=0, instruction="fidelity", boundary=blob,
                                  compression="none")
        t0 = time.perf_counter()
        reply = method(request, timeout=120.0, metadata=metadata)
        rtt = time.perf_counter() - t0
        return rtt, reply.server_ms / 1e3, reply.ByteSize()

    return call, channel.close


REPLY_GUESS = 160
"""Reply bytes assumed for the delay draws before the first reply (draws do not depend on it)."""


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
    one_segment: bool = False  # every connection one segment per packet (diagnostic)
    tc_lags: list[float] = field(default_factory=list)

    def session(self, case: str, spec: str | None, payload: str, path: str,
                blobs: Sequence[bytes], n: int, warmup: int, trusted: bool = True) -> Row:
        """``warmup + n`` requests on a new connection; ``spec`` None: loopback, no shaping.

        A request is ``len(blobs)`` sequential round trips on the connection (each blob up, the
        reply down): one for a single transfer, seven for a loop cut. Its measured time is the
        sum of the round trips minus the server's times; the delay line gets, before each round
        trip, the delays the model drew for it.
        """
        follower = self._shape(spec)
        loss = None if spec is None else loss_params(spec)
        kind = "infer" if path == "infer" else "echo"
        maker = infer_call if kind == "infer" else echo_call
        seeds = [self.seed * 1000 + i for i in range(warmup + n)]
        steps = round_trips([len(b) for b in blobs], REPLY_GUESS)
        delays = [[(0.0, 0.0)] * len(blobs) if spec is None
                  else model_delays(spec, steps, seed, self.offset) for seed in seeds]
        # The connection is opened across the delayed path, as a real one would be: TCP's RTT
        # estimates (BBR's min_rtt, which sizes its window) start from the real handshake.
        self.delay.set_delays(*delays[0][0])
        if self.one_segment:
            self.shaper.segment(True)
        try:
            call, close = maker(f"127.0.0.1:{self.ports[kind]}", self.token)
        finally:
            self.shaper.segment(False)
        self.delay.set_loss(loss, self.seed)
        self.delay.stats()
        t0 = follower.begin() if follower is not None else time.perf_counter()
        try:
            samples = [
                self._request(call, spec, f"{case} {payload} {path}", i, seed, delays[i], t0,
                              blobs)
                for i, seed in enumerate(seeds)
            ]
        finally:
            self.delay.set_loss(None, 0)
            if follower is not None:
                follower.halt()
                self.tc_lags.extend(follower.lags)
            close()
        _, late_ms, _, overruns, dropped = self.delay.stats()
        cold = samples[0] if samples else None
        return Row(case, payload, path, sum(len(b) for b in blobs), samples[warmup:], cold,
                   late_ms, overruns, len(blobs), trusted, dropped)

    def _shape(self, spec: str | None) -> TraceShaper | None:
        """Shape the path to ``spec``; a varying trace is followed by the returned thread."""
        if spec is None:
            self.shaper.unshaped()
            return None
        link = fresh_link(spec, self.seed, self.offset)
        if is_varying(link):
            return TraceShaper(self.shaper, link, self.offset)
        up, down = case_rates(link)
        self.shaper.set(up, down)
        return None

    def _request(self, call: Call, spec: str | None, label: str, i: int, seed: int,
                 delays: Sequence[tuple[float, float]], t0: float,
                 blobs: Sequence[bytes]) -> Sample:
        """Request ``i`` of a row: its round trips sent and measured, then modelled; the gap."""
        t = time.perf_counter() - t0
        measured = 0.0
        down_bytes = REPLY_GUESS
        for j, (blob, d) in enumerate(zip(blobs, delays, strict=True)):
            self.delay.set_delays(*d)  # outside the timed part: between round trips
            rtt, server, down_bytes = call(f"{label.replace(' ', '-')}-{i}-{j}", blob)
            measured += rtt - server
        model = (0.0 if spec is None
                 else model_run(spec, round_trips([len(b) for b in blobs], down_bytes), t, seed,
                                self.offset)[0])
        sample = Sample(measured, model)
        if self.verbose and spec is not None:
            print(f"    {label} #{i} t={t:.2f} s: measured {measured * 1e3:.1f} ms, modelled "
                  f"{model * 1e3:.1f} ms ({sample.error * 100:+.1f}%)", file=sys.stderr,
                  flush=True)
        time.sleep(self.gap_s)
        return sample


def is_varying(link: Any) -> bool:
    """Whether the link's rate changes over time (a trace to follow) or is one constant."""
    from rapid_env.link.models import TraceLink

    return isinstance(link, TraceLink) and len({*link.up.rates_bps, *link.down.rates_bps}) > 1


def case_rates(link: Any) -> tuple[float, float]:
    """(up, down) payload rate of a constant link, or of a trace where the row starts."""
    from rapid_env.link.models import TraceLink

    if isinstance(link, TraceLink):
        return link.up.rate_at(link.offset_s, True), link.down.rate_at(link.offset_s, True)
    return link.bandwidth_bps, link.bandwidth_bps


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
