"""A batching ``rapid-serve`` under a fleet's arrivals, against the fleet's queue model.

The fleet simulator shares one cloud among many robots through a queue model in virtual time
(:class:`rapid_env.fleet.queue.CloudQueue`: FIFO, the oldest waiting request heads a batch of up
to B requests of its kind, started when full or when the head has waited W). This benchmark asks
whether a real server that batches by the same rule queues as the model says.

* **Server.** ``rapid-serve``'s server (:func:`rapid_env.serve.lifecycle.start`) runs in this
  process on 127.0.0.1 with ``--max-batch`` / ``--max-wait-ms`` and the batching queue on, so
  its per-request records (:meth:`rapid_env.serve.batcher.Batcher.served`, monotonic seconds)
  can be read when the run ends: when each request entered the queue (its checks and decoding
  done on its request thread: its *arrival* at the batcher), when its batch started and
  finished, and the batch's size.
* **Clients.** ``--clients`` K processes (start method ``spawn``: torch's OpenMP does not
  survive ``fork``), each with its own channel; robot ``r`` sends from process ``r % K``. Each
  request is sent at its scheduled time, whether or not earlier replies are in (open loop), from
  a thread of its process. The schedule is ``--arrivals FILE`` (JSON lines
  ``{"t": seconds from the start, "robot": int, "split": int}``, as the fleet simulator writes
  them) or, without a file, a seeded Poisson process (``--rate`` per second, ``--requests``,
  robots drawn uniformly from ``--robots``, every request at ``--split``). The boundary each
  request carries is the executable model's real one at its split, for a random observation.
* **Model.** The same arrival times as measured at the server, and the server's measured service
  time of a batch per batch size (the median over the batches of that size; sizes never seen
  are interpolated between the nearest seen ones), go into a :class:`CloudQueue` with one GPU and
  the same B and W. Per request the modelled queueing delay (arrival -> batch start) and finish
  are compared with the measured ones.
* **The figure.** Queueing delay is often ~0 (a request that finds the server idle and B = 1),
  where a relative error means nothing; the comparison is therefore made on each request's
  **sojourn time** (queueing + service: arrival at the batcher -> its batch's finish), which is
  never 0: ``median over requests of |measured - modelled| / modelled``, in percent, printed as
  ``queue model: median |measured-modelled|/modelled = X %``. The table beside it shows queueing
  delay and sojourn (mean, p50, p95), throughput, batches, mean batch size and utilisation,
  measured and modelled.

Everything runs on this machine's cores: client processes, the gRPC threads and the forward
share them, so service times carry that contention (it is in the medians the model gets too).

Usage::

    python benchmarks/bench_fleet_serve.py                         # about 25 s on 2 cores
    python benchmarks/bench_fleet_serve.py --max-batch 8 --max-wait-ms 10 --rate 200
    python benchmarks/bench_fleet_serve.py --arrivals fleet_arrivals.jsonl --clients 8
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WARMUP = 24  # requests before the measured ones (kernels, channels, the batcher's estimate)


@dataclass(frozen=True)
class Arrival:
    """One scheduled request: when (seconds from the start), from which robot, at which split."""

    t: float
    robot: int
    split: int


def read_arrivals(path: Path) -> list[Arrival]:
    """The ``--arrivals`` file: one JSON object per line, ``t`` >= 0, ``robot`` >= 0, ``split``.

    Raises:
        ValueError: one line naming the file, the line and what is wrong with it.
    """
    out: list[Arrival] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            t, robot, split = obj["t"], obj["robot"], obj["split"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: expected {{\"t\", \"robot\", \"split\"}}, "
                             f"got {line[:80]!r} ({type(e).__name__})") from None
        ok_t = (isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
                and t >= 0)
        ok_ints = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                      for v in (robot, split))
        if not (ok_t and ok_ints):
            raise ValueError(f"{path}:{n}: t must be a finite number >= 0, robot and split ints "
                             f">= 0; got {line[:80]!r}")
        out.append(Arrival(float(t), robot, split))
    if not out:
        raise ValueError(f"{path}: no arrivals")
    return sorted(out, key=lambda a: a.t)


def fleet_arrivals(path: Path, rate: float, split: int, requests: int) -> list[Arrival]:
    """A virtual fleet's arrival process, from ``rapid-fleet``'s ``requests.jsonl``.

    Every request of the file's first fleet reaches the cloud at its send time plus the edge
    compute and upload before its first cloud stage (the recorded gap). The fleet's clock is
    scaled so that the mean rate is ``rate`` per second: the executable model serves in
    milliseconds what the full-size model's cloud half takes tens of milliseconds for, so the
    same load, not the same seconds, is what the server gets (the burstiness -- robots that ask
    together, quiet stretches -- is the fleet's). Every request runs at ``split`` (the
    executable model's own blocks); the first ``requests`` are kept.
    """
    line = next((x for x in path.read_text().splitlines() if x.strip()), None)
    if line is None:
        raise ValueError(f"{path}: no fleet recorded")
    row = json.loads(line)
    times = sorted(
        (req[0] + req[2][0], robot)  # [t, split, gaps, back]: sent at t, at the cloud t + gaps[0]
        for robot, timeline in enumerate(row["timelines"]) for req in timeline
    )[:requests]
    if len(times) < 2:
        raise ValueError(f"{path}: its fleet sent {len(times)} requests; need 2 or more")
    t0, span = times[0][0], times[-1][0] - times[0][0]
    scale = (len(times) - 1) / rate / span if span > 0 else 1.0
    return [Arrival((t - t0) * scale, robot, split) for t, robot in times]


def poisson_arrivals(rate: float, requests: int, robots: int, split: int,
                     seed: int) -> list[Arrival]:
    """``requests`` arrivals of a Poisson process of ``rate`` per second (seeded)."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1.0 / rate, requests))
    who = rng.integers(0, robots, requests)
    return [Arrival(float(t), int(r), split) for t, r in zip(times, who, strict=True)]


def boundaries(model: object, splits: Sequence[int], seed: int) -> dict[int, bytes]:
    """The executable model's real boundary at each split, for one random observation."""
    import torch

    from rapid_env.agents.vla.split import SplitRunner

    cfg = model.cfg  # type: ignore[attr-defined]
    s = cfg.image_size
    cams = (cfg.n_cameras,) if cfg.n_cameras > 1 else ()
    gen = torch.Generator().manual_seed(seed)
    state = model.prepare(  # type: ignore[attr-defined]
        torch.randint(0, 256, (1, *cams, s, s, 3), dtype=torch.uint8, generator=gen),
        torch.rand(1, cfg.proprio_dim, generator=gen),
        torch.randint(0, cfg.vocab_size, (1, cfg.max_text_tokens), generator=gen),
        torch.Generator().manual_seed(seed),
    )
    return {k: SplitRunner(model, k, "none").edge(state) for k in splits}  # type: ignore[arg-type]


def client_process(address: str, token: str, schedule: list[tuple[int, float, int]],
                   blobs: dict[int, bytes], deadline_s: float, ready: object, start: object,
                   results: object) -> None:
    """One client process: send each ``(index, t, split)`` at ``start + t``; report outcomes."""
    from rapid_env.serve.client import PolicyClient, ServeError

    client = PolicyClient(address, token, timeout_s=deadline_s)
    client.wait_ready(60.0)
    ready.set()  # type: ignore[attr-defined]
    t0 = start.get()  # type: ignore[attr-defined]
    late: list[float] = []

    def send(i: int, split: int) -> tuple[int, str]:
        try:
            client.infer(f"m{i}", split, "fleet", blobs[split], "none", deadline_s)
        except ServeError as e:
            return i, e.code
        return i, "OK"

    futures = []
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i, t, split in schedule:
            wait = t0 + t - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            late.append(time.perf_counter() - (t0 + t))  # oversleep, or a loop behind schedule
            futures.append(pool.submit(send, i, split))
        outcomes = [f.result() for f in futures]
    client.close()
    results.put((outcomes, late))  # type: ignore[attr-defined]


@dataclass
class Request:
    """One measured request: its split, its arrival at the batcher, its batch's times and size."""

    split: int
    arrival: float
    start: float
    finish: float
    size: int
    deadline: float
    model_start: float = math.nan
    model_finish: float = math.nan


def percentile(xs: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation); nan for no values."""
    return float(np.percentile(xs, q)) if len(xs) else math.nan


ServiceTable = dict[tuple[int, int], float]
"""(split, batch size) -> median measured seconds of one batch."""


def service_table(reqs: Sequence[Request]) -> ServiceTable:
    """The median measured service time of a batch per split and batch size (each batch once)."""
    batches = {(r.split, r.start, r.finish, r.size) for r in reqs}
    by_size: dict[tuple[int, int], list[float]] = {}
    for split, start, finish, size in batches:
        by_size.setdefault((split, size), []).append(finish - start)
    return {key: statistics.median(v) for key, v in sorted(by_size.items())}


def model_run(reqs: list[Request], table: ServiceTable, max_batch: int,
              max_wait_s: float) -> list[object]:
    """Replay the measured arrivals through :class:`CloudQueue`; fill each request's model times.

    A job's kind is its split (as the server batches); a batch size not measured for a split
    takes the service time interpolated between the nearest measured sizes (clamped at the ends).
    Returns the model's batches.
    """
    from rapid_env.fleet.queue import BatchPolicy, CloudJob, CloudQueue

    curves: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for split in sorted({k for k, _ in table}):
        sizes = sorted(n for k, n in table if k == split)
        curves[split] = (np.array(sizes, dtype=float), np.array([table[split, n] for n in sizes]))

    def service_s(kind: object, size: int) -> float:
        sizes, secs = curves[kind]  # type: ignore[index]
        return float(np.interp(size, sizes, secs))

    queue = CloudQueue(BatchPolicy(gpus=1, max_batch=max_batch, max_wait_s=max_wait_s), service_s)

    def done_for(r: Request):  # noqa: ANN202 - a closure over one request
        def done(start: float, seconds: float, size: int) -> None:
            r.model_start, r.model_finish = start, start + seconds

        return done

    for r in sorted(reqs, key=lambda r: r.arrival):
        queue.submit(CloudJob(r.split, r.arrival, r.deadline, done_for(r)))
    queue.drain()
    return list(queue.batches)


def stats_row(name: str, xs: Sequence[float], ys: Sequence[float], unit: float = 1000.0) -> str:
    """``name``: mean, p50, p95 of measured (xs) and modelled (ys), in ms."""
    def cell(v: Sequence[float]) -> str:
        return (f"{statistics.fmean(v) * unit:7.2f} {percentile(v, 50) * unit:7.2f} "
                f"{percentile(v, 95) * unit:7.2f}")

    return f"{name:<24} {cell(xs)}   {cell(ys)}"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The benchmark's flags."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default="chunk-regress", help="a servable policy")
    ap.add_argument("--max-batch", type=int, default=4, help="the server's --max-batch (B)")
    ap.add_argument("--max-wait-ms", type=float, default=5.0, help="the server's --max-wait-ms")
    ap.add_argument("--arrivals", type=Path, default=None,
                    help="JSON lines {t, robot, split}; default: a seeded Poisson process")
    ap.add_argument("--fleet", type=Path, default=None,
                    help="a rapid-fleet OUT/requests.jsonl: its first fleet's arrivals, its "
                         "clock scaled to --rate per second, every request at --split")
    ap.add_argument("--rate", type=float, default=150.0,
                    help="requests per second (Poisson, or --fleet's scaled)")
    ap.add_argument("--requests", type=int, default=1500, help="Poisson requests")
    ap.add_argument("--robots", type=int, default=16, help="Poisson: robots the requests come from")
    ap.add_argument("--split", type=int, default=3, help="Poisson: every request's split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clients", type=int, default=4, help="client processes (K)")
    ap.add_argument("--deadline-s", type=float, default=5.0, help="every request's deadline")
    ap.add_argument("--workers", type=int, default=16, help="the server's request threads")
    ap.add_argument("--torch-threads", type=int, default=1)
    args = ap.parse_args(argv)
    for name, low in (("max_batch", 1), ("requests", 1), ("robots", 1), ("clients", 1),
                      ("workers", 1), ("torch_threads", 1)):
        if getattr(args, name) < low:
            ap.error(f"--{name.replace('_', '-')} {getattr(args, name)}; allowed: >= {low}")
    for name in ("rate", "deadline_s"):
        v = getattr(args, name)
        if not (math.isfinite(v) and v > 0):
            ap.error(f"--{name.replace('_', '-')} {v}; allowed: a finite number > 0")
    if not (math.isfinite(args.max_wait_ms) and args.max_wait_ms >= 0):
        ap.error(f"--max-wait-ms {args.max_wait_ms}; allowed: a finite number >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server, the clients and the model; print the comparison."""
    args = parse(argv)
    if args.arrivals is not None:
        try:
            arrivals = read_arrivals(args.arrivals)
        except (OSError, ValueError) as e:
            print(f"bench_fleet_serve: {e}", file=sys.stderr)
            return 2
    elif args.fleet is not None:
        try:
            arrivals = fleet_arrivals(args.fleet, args.rate, args.split, args.requests)
        except (OSError, ValueError, KeyError) as e:
            print(f"bench_fleet_serve: {e}", file=sys.stderr)
            return 2
    else:
        arrivals = poisson_arrivals(args.rate, args.requests, args.robots, args.split, args.seed)

    import torch

    from rapid_env.serve.config import ServeConfig
    from rapid_env.serve.lifecycle import start
    from rapid_env.serve.model import load_cloud_model

    torch.set_num_threads(args.torch_threads)
    cloud = load_cloud_model(args.policy, 8)
    bad = sorted({a.split for a in arrivals} - set(cloud.splits))
    if bad:
        print(f"bench_fleet_serve: split {bad[0]} not served; accepted: {cloud.splits[0]}.."
              f"{cloud.splits[-1]}", file=sys.stderr)
        return 2
    splits = sorted({a.split for a in arrivals})
    blobs = boundaries(cloud.model, splits, args.seed)
    token = os.urandom(24).hex()
    config = ServeConfig(
        policy=args.policy, token=token, port=0, workers=args.workers,
        max_concurrent=4 * args.workers, deadline_s=args.deadline_s, max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms, max_seconds=3600.0, grace_s=1.0, chunk_size=8,
    )
    server = start(config, cloud, batch=True)
    ctx = mp.get_context("spawn")
    procs: list[mp.process.BaseProcess] = []
    try:
        from rapid_env.serve.client import PolicyClient

        with PolicyClient(server.address, token, timeout_s=30.0) as warm:
            warm.wait_ready(30.0)
            for i in range(WARMUP):
                split = splits[i % len(splits)]
                warm.infer(f"w{i}", split, "warm-up", blobs[split])
        k = args.clients
        schedules: list[list[tuple[int, float, int]]] = [[] for _ in range(k)]
        for i, a in enumerate(arrivals):
            schedules[a.robot % k].append((i, a.t, a.split))
        ready = [ctx.Event() for _ in range(k)]
        starts = [ctx.Queue() for _ in range(k)]
        results = ctx.Queue()
        for j in range(k):
            p = ctx.Process(target=client_process, args=(
                server.address, token, schedules[j], blobs, args.deadline_s, ready[j], starts[j],
                results), daemon=True)
            p.start()
            procs.append(p)
        for ev in ready:
            if not ev.wait(120):
                raise RuntimeError("a client process did not connect within 120 s")
        t0 = time.perf_counter() + 0.5
        for q in starts:
            q.put(t0)
        outcomes: dict[int, str] = {}
        late: list[float] = []
        for _ in range(k):
            got, lt = results.get(timeout=arrivals[-1].t + 120)
            outcomes.update(dict(got))
            late.extend(lt)
        for proc in procs:
            proc.join(30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        server.stop()

    assert server.batcher is not None
    records = {r.request_id: r for r in server.batcher.served() if r.request_id.startswith("m")}
    ok = [r for r in records.values() if r.outcome == "ok"]
    failed = len(arrivals) - len(ok)
    origin = min(r.queued for r in ok)
    reqs = [Request(r.split, r.queued - origin, r.start - origin, r.finish - origin, r.size,
                    r.deadline - origin) for r in ok]
    table = service_table(reqs)
    model_batches = model_run(reqs, table, args.max_batch, args.max_wait_ms / 1000.0)
    report(args, arrivals, reqs, table, model_batches, ok, failed, late, outcomes)
    return 0


def report(args: argparse.Namespace, arrivals: list[Arrival], reqs: list[Request],
           table: ServiceTable, model_batches: list[object], ok: Sequence[object], failed: int,
           late: list[float], outcomes: dict[int, str]) -> None:
    """Print the setup, the side-by-side table and the one-line figure."""
    q_meas = [r.start - r.arrival for r in reqs]
    q_mod = [r.model_start - r.arrival for r in reqs]
    s_meas = [r.finish - r.arrival for r in reqs]
    s_mod = [r.model_finish - r.arrival for r in reqs]
    rel = [abs(m - p) / p for m, p in zip(s_meas, s_mod, strict=True)]
    meas_batches = {(r.start, r.finish, r.size) for r in reqs}  # one worker: starts differ
    span_meas = max(r.finish for r in reqs) - min(r.arrival for r in reqs)
    span_mod = max(r.model_finish for r in reqs) - min(r.arrival for r in reqs)
    busy_meas = sum(f - s for s, f, _ in meas_batches)
    busy_mod = sum(b.finish - b.start for b in model_batches)  # type: ignore[attr-defined]
    checks = [r.queued - r.received for r in ok]  # type: ignore[attr-defined]
    source = (f"arrivals {args.arrivals}" if args.arrivals else
              f"fleet {args.fleet} scaled to {args.rate:g}/s, split {args.split}" if args.fleet
              else f"Poisson {args.rate:g}/s, seed {args.seed}, {args.robots} robots, split "
              f"{args.split}")
    print(f"policy {args.policy}, B={args.max_batch}, W={args.max_wait_ms:g} ms, "
          f"{len(arrivals)} requests ({source}), {args.clients} client processes, "
          f"{args.workers} request threads, {args.torch_threads} torch thread(s)")
    codes = sorted({c for c in outcomes.values() if c != "OK"})
    print(f"served {len(reqs)}, not served {failed}{' (' + ', '.join(codes) + ')' if codes else ''}"
          f"; send lateness vs schedule p50/p95 {percentile(late, 50) * 1000:.2f}/"
          f"{percentile(late, 95) * 1000:.2f} ms; checks+decoding before the queue p50 "
          f"{percentile(checks, 50) * 1000:.2f} ms")
    print("service time per batch (median of measured batches, ms; split/size): " + ", ".join(
        f"{split}/{size}: {secs * 1000:.2f}" for (split, size), secs in table.items()))
    print()
    print(f"{'':<24} {'measured (mean p50 p95)':>23}   {'modelled (mean p50 p95)':>23}")
    print(stats_row("queueing delay ms", q_meas, q_mod))
    print(stats_row("sojourn ms", s_meas, s_mod))
    print(f"{'throughput req/s':<24} {len(reqs) / span_meas:23.1f}   {len(reqs) / span_mod:23.1f}")
    print(f"{'batches':<24} {len(meas_batches):23d}   {len(model_batches):23d}")
    print(f"{'mean batch size':<24} {len(reqs) / len(meas_batches):23.2f}   "
          f"{len(reqs) / len(model_batches):23.2f}")
    print(f"{'utilisation':<24} {busy_meas / span_meas:23.2f}   {busy_mod / span_mod:23.2f}")
    spread = [abs((f - s) - table[r.split, n]) / table[r.split, n]
              for r in reqs for s, f, n in [(r.start, r.finish, r.size)]]
    print(f"{'service spread':<24} per request, |its batch's service - the median for the size| / "
          f"median: p50 {percentile(spread, 50) * 100:.1f} %, p95 "
          f"{percentile(spread, 95) * 100:.1f} % (noise no queue model with fixed service times "
          "can follow)")
    print()
    print(f"queue model: median |measured-modelled|/modelled = {statistics.median(rel) * 100:.1f} %"
          "  (per request sojourn: arrival at the batcher -> its batch's finish)")


if __name__ == "__main__":
    sys.exit(main())
