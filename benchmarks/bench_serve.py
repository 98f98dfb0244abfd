"""``rapid-serve`` under load on loopback: requests per second, latency percentiles, memory.

Starts one ``rapid-serve --policy chunk-regress`` on 127.0.0.1 (a free port, a fresh token, its
own process group, ``--max-requests`` set to what this run sends plus a margin, ``--max-seconds``
as a backstop) and drives it from this process:

* **Clients** are threads, each with its **own** :class:`PolicyClient` (its own gRPC channel, so
  its own HTTP/2 connection, like separate robots); every client sends its next request as soon as
  the previous reply is in (closed loop). The boundary is the executable model's real one at
  ``--split`` (default 3: the edge has run the vision stem, the server runs the tokens, the
  transformer and the head) under ``--compression`` (default ``none``), computed once here.
* **Levels**: 1, 4 and 16 concurrent clients (``--levels``), each after a short warm-up of its own
  (3 requests per client, not timed). Per level: requests per second (requests / wall time of the
  level; refused calls do not count), the client's round-trip percentiles p50/p95/p99 of the
  replies, the server's own median
  ``server_ms`` (compute plus waiting for the model lock) and the calls refused
  (``RESOURCE_EXHAUSTED``). The server runs with ``--max-concurrent`` = ``--server-max-concurrent``
  (default 64) so that 16 clients are served, not refused; ``--default-bound-row`` adds a row at 16
  clients against a second server with the default bound (2 x 4 workers = 8 calls), to show the
  refusals a client then sees.
* **Memory**: the server's RSS (``VmRSS`` of ``/proc/<pid>/status``) after the first 100 requests,
  after the levels, and every ``--soak / 5`` requests of a soak (``--soak`` requests, 4 clients);
  the growth from the first reading to the last is printed, and the run fails (exit 1) when it is
  above ``--max-growth-mb``.

Everything the script starts is stopped in ``finally`` (SIGTERM to the process group, then SIGKILL).
Client and server share this machine's cores, so the figures are a floor for a separate client.

Usage::

    python benchmarks/bench_serve.py                  # about a minute on 2 cores
    python benchmarks/bench_serve.py --soak 5000 --levels 1,4,16,32
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WARMUP_PER_CLIENT = 3
FIRST_READING = 100


class Server:
    """A ``rapid-serve`` child in its own process group; its port and its RSS."""

    def __init__(self, token_file: Path, max_requests: int, max_concurrent: int | None,
                 log: Path) -> None:
        cmd = [
            sys.executable, "-m", "rapid_env.cli.serve", "--policy", "chunk-regress",
            "--port", "0", "--token-file", str(token_file), "--max-requests", str(max_requests),
            "--max-seconds", "900", "--log-level", "WARNING",
        ]
        if max_concurrent is not None:
            cmd += ["--max-concurrent", str(max_concurrent)]
        self.log = log
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.open("w"),
                                     stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + 120
        self.port = 0
        while not self.port:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"rapid-serve did not start; its log ends:\n{tail}")
            if line.startswith("rapid-serve: port"):
                self.port = int(line.split()[-1])

    def rss_mb(self) -> float:
        """The server process's resident set (``VmRSS``), MiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        """SIGTERM to the process group (a graceful stop), SIGKILL after 10 s."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)


def boundary(split: int, compression: str) -> tuple[bytes, int]:
    """The executable ``chunk-regress`` model's boundary at ``split`` for a random observation."""
    import torch

    from rapid_env.agents.vla.split import SplitRunner
    from rapid_env.compose import build_policy
    from rapid_env.config import EnvConfig

    model = build_policy(EnvConfig(policy="chunk-regress")).model  # type: ignore[attr-defined]
    cfg, s = model.cfg, model.cfg.image_size
    cams = (cfg.n_cameras,) if cfg.n_cameras > 1 else ()  # one frame per camera it reads
    gen = torch.Generator().manual_seed(0)
    state = model.prepare(
        torch.randint(0, 256, (1, *cams, s, s, 3), dtype=torch.uint8, generator=gen),
        torch.rand(1, cfg.proprio_dim, generator=gen),
        torch.randint(0, cfg.vocab_size, (1, cfg.max_text_tokens), generator=gen),
        torch.Generator(),
    )
    return SplitRunner(model, split, compression).edge(state), model.n_blocks


@dataclass
class Level:
    """What one run of closed-loop clients measured."""

    clients: int
    requests: int
    seconds: float
    rtt_ms: list[float]
    server_ms: list[float]
    refused: int
    failed: int

    @property
    def rps(self) -> float:
        """Replies per second over the level's wall time."""
        return len(self.rtt_ms) / self.seconds


def drive(address: str, token: str, blob: bytes, split: int, compression: str, clients: int,
          requests: int, warmup: bool = True) -> Level:
    """``requests`` calls spread over ``clients`` closed-loop threads, one channel each."""
    from rapid_env.serve.client import PolicyClient, RequestRejected, ServeError

    per = [requests // clients + (i < requests % clients) for i in range(clients)]
    conns = [PolicyClient(address, token, timeout_s=30.0) for _ in range(clients)]
    rtts: list[list[float]] = [[] for _ in range(clients)]
    servers: list[list[float]] = [[] for _ in range(clients)]
    refused = [0] * clients
    failed = [0] * clients
    start = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        conn = conns[i]
        conn.wait_ready(30.0)
        for j in range(WARMUP_PER_CLIENT if warmup else 0):
            try:
                conn.infer(f"w{i}-{j}", split, "bench", blob, compression, 30.0)
            except ServeError:
                pass
        start.wait()
        for j in range(per[i]):
            try:
                _, server_ms, rtt_ms = conn.infer(f"c{i}-{j}", split, "bench", blob,
                                                  compression, 30.0)
            except RequestRejected as e:
                if e.code == "RESOURCE_EXHAUSTED":
                    refused[i] += 1
                else:
                    failed[i] += 1
                continue
            except ServeError:
                failed[i] += 1
                continue
            rtts[i].append(rtt_ms)
            servers[i].append(server_ms)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    seconds = time.perf_counter() - t0
    for conn in conns:
        conn.close()
    return Level(clients, requests, seconds, [x for r in rtts for x in r],
                 [x for r in servers for x in r], sum(refused), sum(failed))


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def print_levels(levels: list[tuple[str, Level]]) -> None:
    """The load table."""
    head = (f"{'clients':>7s} {'server bound':>12s} {'calls':>6s} {'replies/s':>9s} "
            f"{'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s} {'server p50 ms':>13s} "
            f"{'refused':>7s} {'failed':>6s}")
    print(head)
    print("-" * len(head))
    for bound, lv in levels:
        srv = statistics.median(lv.server_ms) if lv.server_ms else float("nan")
        print(f"{lv.clients:>7d} {bound:>12s} {lv.requests:>6d} {lv.rps:>9.1f} "
              f"{_pct(lv.rtt_ms, 50):>7.1f} {_pct(lv.rtt_ms, 95):>7.1f} "
              f"{_pct(lv.rtt_ms, 99):>7.1f} {srv:>13.1f} {lv.refused:>7d} {lv.failed:>6d}")


def main() -> int:
    """Run the levels and the soak; print the tables; 1 if memory grew past the bound."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="1,4,16", help="concurrent clients per level")
    ap.add_argument("--requests", type=int, default=0,
                    help="timed requests per level (default: 300 x clients, at most 1200)")
    ap.add_argument("--soak", type=int, default=3000, help="requests of the memory soak")
    ap.add_argument("--split", type=int, default=3, help="executable split k (edge blocks)")
    ap.add_argument("--compression", default="none", choices=("none", "fp16", "int8"))
    ap.add_argument("--server-max-concurrent", type=int, default=64,
                    help="the server's --max-concurrent for the levels and the soak")
    ap.add_argument("--default-bound-row", action=argparse.BooleanOptionalAction, default=True,
                    help="also drive 16 clients against a server with the default bound")
    ap.add_argument("--max-growth-mb", type=float, default=20.0,
                    help="fail when RSS grows more than this from the first reading to the last")
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("WANDB_MODE", "offline")
    levels = [int(x) for x in args.levels.split(",") if x]
    per_level = {c: args.requests or min(300 * c, 1200) for c in levels}
    blob, n_blocks = boundary(args.split, args.compression)
    warm = sum(WARMUP_PER_CLIENT * c for c in levels) + WARMUP_PER_CLIENT * 4
    planned = FIRST_READING + sum(per_level.values()) + args.soak + warm
    tmp = Path(tempfile.mkdtemp(prefix="rapid-bench-serve-"))
    token = os.urandom(24).hex()
    token_file = tmp / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    servers: list[Server] = []
    try:
        server = Server(token_file, planned + 50, args.server_max_concurrent, tmp / "serve.log")
        servers.append(server)
        address = f"127.0.0.1:{server.port}"
        print(f"rapid-serve chunk-regress on {address} (4 workers, --max-concurrent "
              f"{args.server_max_concurrent}); split {args.split} of {n_blocks}, compression "
              f"{args.compression}: {len(blob):,} boundary bytes per request; clients are "
              f"threads in this process, one channel each; RSS at start "
              f"{server.rss_mb():.1f} MiB")
        first = drive(address, token, blob, args.split, args.compression, 1, FIRST_READING,
                      warmup=False)
        readings = [(FIRST_READING, server.rss_mb())]
        done = FIRST_READING
        rows: list[tuple[str, Level]] = []
        for clients in levels:
            lv = drive(address, token, blob, args.split, args.compression, clients,
                       per_level[clients])
            rows.append((str(args.server_max_concurrent), lv))
            done += lv.requests + WARMUP_PER_CLIENT * clients
            readings.append((done, server.rss_mb()))
        soak_clients = 4
        step = max(1, args.soak // 5)
        left = args.soak
        soak_t0 = time.perf_counter()
        soak_levels: list[Level] = []
        while left > 0:
            lv = drive(address, token, blob, args.split, args.compression, soak_clients,
                       min(step, left), warmup=not soak_levels)
            soak_levels.append(lv)
            left -= lv.requests
            done += lv.requests + (WARMUP_PER_CLIENT * soak_clients if len(soak_levels) == 1
                                   else 0)
            readings.append((done, server.rss_mb()))
        soak_s = time.perf_counter() - soak_t0
        if args.default_bound_row:
            default = Server(token_file, 1200 + 16 * WARMUP_PER_CLIENT + 50, None,
                             tmp / "serve-default.log")
            servers.append(default)
            lv = drive(f"127.0.0.1:{default.port}", token, blob, args.split, args.compression,
                       16, 1200)
            rows.append(("8 (default)", lv))
        print_levels(rows)
        soaked = sum(len(lv.rtt_ms) for lv in soak_levels)
        soak_fail = sum(lv.refused + lv.failed for lv in soak_levels)
        print(f"first {FIRST_READING} requests: p50 {_pct(first.rtt_ms, 50):.1f} ms; soak: "
              f"{soaked} replies ({soak_fail} errors) from {soak_clients} clients in "
              f"{soak_s:.1f} s ({soaked / soak_s:.0f} req/s)")
        print("server RSS (VmRSS) after N requests: " + ", ".join(
            f"{n}: {mb:.1f} MiB" for n, mb in readings))
        growth = readings[-1][1] - readings[0][1]
        after_levels = readings[len(levels)][1]
        print(f"memory: {readings[0][1]:.1f} MiB after the first {readings[0][0]} requests, "
              f"{readings[-1][1]:.1f} MiB after {readings[-1][0]} "
              f"({growth:+.1f} MiB; {readings[-1][1] - after_levels:+.1f} MiB over the soak's "
              f"{args.soak} requests)")
        if growth > args.max_growth_mb:
            print(f"memory grew {growth:.1f} MiB > {args.max_growth_mb} MiB", file=sys.stderr)
            return 1
        return 0
    finally:
        for s in servers:
            s.stop()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    sys.exit(main())
