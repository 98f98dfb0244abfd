"""The run inside the network namespace: children, checks, every row, the table."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .bench import Bench, Row, case_rates, raw_check
from .children import Child, DelayHandle
from .delay_line import iptables_rules
from .model import fresh_link, loss_params
from .protocol import SCRIPT
from .shaper import Shaper, bucket_bytes

HEADLINE_PATHS = ("infer", "echo", "loop")
"""The rows whose errors make the headline number (``check`` rows repeat ``image`` via echo)."""


def image_blob(seed: int) -> bytes:
    """The executable ``chunk-regress`` model's split-0 boundary for a random image."""
    import torch

    from rapid_env.agents.vla.split import SplitRunner
    from rapid_env.compose import build_policy
    from rapid_env.config import EnvConfig

    model = build_policy(EnvConfig(policy="chunk-regress")).model  # type: ignore[attr-defined]
    cfg, s = model.cfg, model.cfg.image_size
    cams = (cfg.n_cameras,) if cfg.n_cameras > 1 else ()  # one frame per camera it reads
    gen = torch.Generator().manual_seed(seed)
    state = model.prepare(
        torch.randint(0, 256, (1, *cams, s, s, 3), dtype=torch.uint8, generator=gen),
        torch.rand(1, cfg.proprio_dim, generator=gen),
        torch.zeros(1, cfg.max_text_tokens, dtype=torch.long),
        torch.Generator(),
    )
    return SplitRunner(model, 0, "none").edge(state)


def large_nbytes() -> int:
    """The ``openvla-7b`` profile's boundary after block 3 (inside the language model)."""
    from rapid_env.cost import load_profile

    return int(math.ceil(load_profile("openvla-7b").blocks[3].activation_bytes))


def loop_ups(split: int) -> list[int]:
    """The uploads of a split inside the decoding loop: the cost model's plan, one per pass."""
    from rapid_env.cost import build_cost_model

    ups = [int(st.nbytes) for st in build_cost_model().plan(split).stages if st.kind == "up"]
    if len(ups) < 2:
        raise ValueError(f"--loop-split {split} is not inside the decoding loop (one upload)")
    return ups


def median(xs: Sequence[float]) -> float:
    """The median; NaN for no values (a row with no measured requests)."""
    return statistics.median(xs) if xs else math.nan


def stack_baselines(rows: Sequence[Row]) -> dict[str, float]:
    """The stack's fixed cost of one round trip, by path: the ``loopback`` image rows' median.

    ``infer`` rows get the real ``Infer``'s (``rapid-serve``'s own work outside ``server_ms``
    included), every echo row (``check``, ``echo``, ``loop``) the echo method's. Only the
    small payload's time counts: for a large one, the stack's copying runs while the link
    serialises (the ``loopback`` large row is the stack's throughput, not an additive cost).
    """
    small = {r.path: median([s.measured_s for s in r.samples])
             for r in rows if r.case == "loopback" and r.payload == "image"}
    echo = small.get("check", 0.0)
    return {"infer": small.get("infer", echo), "check": echo, "echo": echo, "loop": echo}


def net_error(measured_s: float, modelled_s: float, stack_s: float) -> float:
    """(measured - stack - modelled) / modelled: the link's part of the measurement vs the model.

    ``stack_s`` is the fixed software cost of the request's round trips with no shaping and no
    delay (:func:`stack_baselines`): client, server, gRPC and the delay line's own handling,
    which the link model does not contain.
    """
    return (measured_s - stack_s - modelled_s) / modelled_s


def print_table(rows: list[Row]) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """The table; returns the headline rows' absolute errors, raw and net, and net per case."""
    head = (f"{'case':16s} {'payload':7s} {'path':6s} {'rpc':>3s} {'bytes up':>10s} {'n':>3s} "
            f"{'measured ms':>11s} {'modelled ms':>11s} {'err':>7s} {'|err|':>6s} "
            f"{'net err':>8s} {'|net|':>6s} {'cold err':>8s} {'late ms':>7s} {'drops':>5s}")
    print(head)
    print("-" * len(head))
    base = stack_baselines(rows)
    raw: list[float] = []
    net: list[float] = []
    per_case: dict[str, list[float]] = {}
    for r in rows:
        meas = median([s.measured_s for s in r.samples]) * 1e3
        model = median([s.modelled_s for s in r.samples]) * 1e3
        if r.case == "loopback":
            err = abs_err = nerr = abs_net = cold = "-"
        else:
            errs = [s.error for s in r.samples]
            stack = r.rpcs * base.get(r.path, 0.0)
            nets = [net_error(s.measured_s, s.modelled_s, stack) for s in r.samples]
            err = f"{median(errs) * 100:+.1f}%"
            abs_err = f"{median([abs(e) for e in errs]) * 100:.1f}%"
            nerr = f"{median(nets) * 100:+.1f}%"
            abs_net = f"{median([abs(e) for e in nets]) * 100:.1f}%"
            cold = f"{r.cold.error * 100:+.1f}%" if r.cold else "-"
            if r.path in HEADLINE_PATHS and r.trusted:
                raw.extend(abs(e) for e in errs)
                net.extend(abs(e) for e in nets)
                per_case.setdefault(r.case, []).extend(abs(e) for e in nets)
        mark = "" if r.trusted else "  UNTRUSTED (shaper check failed)"
        print(f"{r.case:16s} {r.payload:7s} {r.path:6s} {r.rpcs:>3d} {r.up_bytes:>10,d} "
              f"{len(r.samples):>3d} {meas:>11.1f} {model:>11.1f} {err:>7s} {abs_err:>6s} "
              f"{nerr:>8s} {abs_net:>6s} {cold:>8s} {r.late_ms:>7.2f} {r.dropped:>5d}{mark}")
    return raw, net, per_case


def inside(args: argparse.Namespace) -> int:
    """The benchmark proper, in its own network namespace."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("WANDB_MODE", "offline")
    cases = [c for c in args.cases.split(",") if c]
    loop_cases = {c for c in args.loop_cases.split(",") if c}
    if args.delay == "relay":
        lossy = [c for c in cases if loss_params(c) is not None]
        if lossy:
            print(f"fidelity: --delay relay cannot drop packets; skipping {', '.join(lossy)} "
                  "(use --delay kernel)", file=sys.stderr)
            cases = [c for c in cases if c not in lossy]
    children: list[Child] = []
    tmp = Path(tempfile.mkdtemp(prefix="rapid-fidelity-"))
    try:
        shaper = Shaper(args.rate_mode, args.bucket_ms / 1e3)
        cc_file = Path("/proc/sys/net/ipv4/tcp_congestion_control")
        if args.cc:
            cc_file.write_text(args.cc)  # this namespace's default only
        cc = cc_file.read_text().strip()
        ups = loop_ups(args.loop_split)
        per_row = args.requests + args.warmup
        calls = (len(cases) + 1) * per_row * (2 + len(ups)) + 10  # echo calls, with a margin
        token, serve, echo = start_servers(tmp, calls, children)
        # the payloads while the servers load their models
        large = args.large_bytes or large_nbytes()
        blobs = {"image": [image_blob(args.seed)], "large": [os.urandom(large)],
                 "loop": [os.urandom(n) for n in ups]}
        ports = {"infer": int(serve.read_line("rapid-serve: port", 120.0)),
                 "echo": int(echo.read_line("port", 60.0))}
        line, ports = start_delay_line(args.delay, ports, tmp, children)
        for port in ports.values():
            shaper.classify(port)
        bench = Bench(shaper, DelayHandle(line), ports, token, args.trace_offset, args.seed,
                      args.gap, args.verbose, args.one_segment)
        print(f"loop rows: split {args.loop_split} of the cost model, {len(ups)} round trips "
              f"per request (uploads {', '.join(f'{n:,d}' for n in ups)} bytes)", flush=True)
        rows = run_rows(bench, cases, loop_cases, blobs, args)
        untrusted = sorted({r.case for r in rows if not r.trusted})
        print_summary(args, cc, cases, bench, rows)
        if untrusted:
            print(f"fidelity: the shaper did not hold the rate of {', '.join(untrusted)}: "
                  "those rows are not in the headline", file=sys.stderr)
            return 1
        return 0
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def start_servers(tmp: Path, calls: int, children: list[Child]) -> tuple[str, Child, Child]:
    """Start ``rapid-serve`` and the echo server (also appended to ``children``) with a token."""
    token_file = tmp / "token"
    token = os.urandom(24).hex()
    token_file.write_text(token)
    token_file.chmod(0o600)
    serve = Child([
        sys.executable, "-m", "rapid_env.cli.serve", "--policy", "chunk-regress",
        "--port", "0", "--token-file", str(token_file), "--max-requests", str(calls),
        "--max-seconds", "1800", "--log-level", "WARNING",
    ], tmp / "serve.log")
    children.append(serve)
    echo = Child([
        sys.executable, str(SCRIPT), "--echo-server", "--max-requests", str(2 * calls),
        "--max-seconds", "1800",
    ], tmp / "echo.log")
    children.append(echo)
    return token, serve, echo


def start_delay_line(mode: str, ports: dict[str, int], tmp: Path,
                     children: list[Child]) -> tuple[Child, dict[str, int]]:
    """Start the delay line (``relay`` or ``kernel``); the ports the client connects to."""
    if mode == "relay":
        line = Child([sys.executable, str(SCRIPT), "--relay", "--upstream",
                      f"{ports['infer']},{ports['echo']}"], tmp / "relay.log", stdin=True)
        children.append(line)
        relayed = [int(p) for p in line.read_line("ports", 30.0).split(",")]
        return line, dict(zip(("infer", "echo"), relayed, strict=True))
    line = Child([sys.executable, str(SCRIPT), "--nfqueue"], tmp / "nfqueue.log", stdin=True)
    children.append(line)
    line.read_line("ready", 30.0)
    for port in ports.values():
        for rule in iptables_rules(port):
            subprocess.run(rule, check=True)
    return line, ports


CHECK_S = 0.4
"""The raw shaper check sends this many seconds of the case's rate (at least 200 kB)."""


CALIBRATION_TRIES = 3
"""How often the shaper check may rescale the tbf rate before it gives a case up."""


def shaper_check(shaper: Shaper, case: str | None, rate_bps: float, tolerance: float,
                 calibrate: bool) -> bool:
    """Raw TCP through the "up" tbf at ``rate_bps``: does ``bytes / rate`` come out? Printed.

    When it is off by more than ``tolerance`` and ``calibrate`` is set, the tbf rate is scaled by
    the measured ratio and checked again, up to :data:`CALIBRATION_TRIES` times: the case is
    trusted only once a transfer comes within ``tolerance``. Without ``calibrate``, an off
    shaper makes the case untrusted. WHY calibrate: on this 2-core machine raw TCP through
    ``tbf`` at 1 Gbit/s takes 7-20 % longer than bytes / rate (not the bucket, the htb parent or
    the congestion control; more under load); what the model is compared with must run at the
    model's rate, and the check proves that it does.
    """
    shaper.calibration = 1.0
    nbytes = max(200_000, int(rate_bps / 8 * CHECK_S))
    expect = 8 * nbytes / rate_bps
    took = raw_check(shaper, rate_bps, nbytes)
    ok = abs(took / expect - 1) <= tolerance
    label = case or "tbf"
    burst = bucket_bytes(rate_bps * shaper.factor, shaper.bucket_s)
    print(f"shaper check {label}: {nbytes:,d} bytes of raw TCP through the 'up' tbf at "
          f"{rate_bps / 1e6:g} Mbit/s (payload rate, bucket {burst:,d} B): {took * 1e3:.1f} ms, "
          f"bytes/rate {expect * 1e3:.1f} ms ({(took / expect - 1) * 100:+.1f}%)"
          + ("" if ok else f" -- off by more than {tolerance * 100:g}%"), flush=True)
    tries = 0
    while not ok and calibrate and tries < CALIBRATION_TRIES:
        tries += 1
        shaper.calibration *= took / expect
        took = raw_check(shaper, rate_bps, nbytes)
        ok = abs(took / expect - 1) <= tolerance
        print(f"shaper check {label}: tbf rate x {shaper.calibration:.4f} (calibration {tries}): "
              f"{took * 1e3:.1f} ms ({(took / expect - 1) * 100:+.1f}%)", flush=True)
    if not ok:
        print(f"shaper check {label}: UNTRUSTED", flush=True)
    return ok


def run_rows(bench: Bench, cases: Sequence[str], loop_cases: set[str],
             blobs: dict[str, list[bytes]], args: argparse.Namespace) -> list[Row]:
    """Every (case, payload, path) row, ``loopback`` first, with progress on stderr.

    Each case starts with its shaper check (:func:`shaper_check`); the calibration it finds
    stays on for the case's rows.
    """
    rows: list[Row] = []
    plan = [("image", "infer"), ("image", "check"), ("large", "echo")]
    t_start = time.perf_counter()
    for case in ["loopback", *cases]:
        trusted = True
        spec = None if case == "loopback" else case
        if spec is not None:
            rate = case_rates(fresh_link(spec, args.seed, args.trace_offset))[0]
            trusted = shaper_check(bench.shaper, case, rate, args.check_tolerance / 100,
                                   args.calibrate)
        loop = [("loop", "loop")] if case == "loopback" or case in loop_cases else []
        for payload, path in plan + loop:
            rows.append(bench.session(case, spec, payload, path, blobs[payload], args.requests,
                                      args.warmup, trusted))
            print(f"  ... {case} {payload} {path}: {time.perf_counter() - t_start:.0f} s",
                  file=sys.stderr, flush=True)
    return rows


def print_summary(args: argparse.Namespace, cc: str, cases: Sequence[str], bench: Bench,
                  rows: list[Row]) -> None:
    """The settings line, the table and the headline ``fidelity:`` line."""
    lags = bench.tc_lags or [0.0]
    print(f"delay: {args.delay}; TCP congestion control: {cc}; cases: {', '.join(cases)}; "
          f"{args.requests} requests per row after {args.warmup} warm-up (the first, 'cold', "
          f"opens the connection), {args.gap:g} s apart; trace offset {args.trace_offset:g} s, "
          f"{len(bench.tc_lags)} trace steps applied {statistics.fmean(lags) * 1e3:.1f} ms "
          f"late on average (max {max(lags) * 1e3:.1f}); tbf rate mode {args.rate_mode}, bucket "
          f"{args.bucket_ms:g} ms of the rate; tbf drops {Shaper.drops()}; delay-line overruns "
          f"{sum(r.overruns for r in rows)}")
    raw, net, per_case = print_table(rows)
    print("per case, median |net err|: " + ", ".join(
        f"{case} {median(errs) * 100:.1f} %" for case, errs in per_case.items()))
    print(f"without subtracting the stack (loopback rows): median |measured-modelled|/modelled "
          f"= {median(raw) * 100:.1f} %")
    print("headline: measured minus the stack's fixed cost per round trip (loopback image rows), "
          "against the model")
    print(f"fidelity: median |measured-modelled|/modelled = {median(net) * 100:.1f} %")
