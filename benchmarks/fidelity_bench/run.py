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

from .bench import Bench, Row, raw_check
from .children import Child, DelayHandle
from .delay_line import iptables_rules
from .protocol import SCRIPT
from .shaper import Shaper

HEADLINE_PATHS = ("infer", "echo")
"""The rows whose errors make the headline number (``check`` rows repeat ``image`` via echo)."""


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


def median(xs: Sequence[float]) -> float:
    """The median; NaN for no values (a row with no measured requests)."""
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
        meas = median([s.measured_s for s in r.samples]) * 1e3
        model = median([s.modelled_s for s in r.samples]) * 1e3
        if r.case == "loopback":
            err = abs_err = cold = "-"
        else:
            errs = [s.error for s in r.samples]
            err = f"{median(errs) * 100:+.1f}%"
            abs_err = f"{median([abs(e) for e in errs]) * 100:.1f}%"
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
    children: list[Child] = []
    tmp = Path(tempfile.mkdtemp(prefix="rapid-fidelity-"))
    try:
        shaper = Shaper(args.rate_mode)
        cc_file = Path("/proc/sys/net/ipv4/tcp_congestion_control")
        if args.cc:
            cc_file.write_text(args.cc)  # this namespace's default only
        cc = cc_file.read_text().strip()
        calls = (len(cases) + 1) * (args.requests + args.warmup) + 10  # Infer calls, a margin
        token, serve, echo = start_servers(tmp, calls, children)
        # the payloads while the servers load their models
        blobs = {"image": image_blob(args.seed),
                 "large": os.urandom(args.large_bytes or large_nbytes())}
        ports = {"infer": int(serve.read_line("rapid-serve: port", 120.0)),
                 "echo": int(echo.read_line("port", 60.0))}
        line, ports = start_delay_line(args.delay, ports, tmp, children)
        for port in ports.values():
            shaper.classify(port)
        if not tbf_ok(shaper, args.rate_mode):
            print("tbf does not limit as configured: stopping", file=sys.stderr)
            return 1
        bench = Bench(shaper, DelayHandle(line), ports, token, args.trace_offset, args.seed,
                      args.gap, args.verbose)
        rows = run_rows(bench, cases, blobs, args.requests, args.warmup)
        print_summary(args, cc, cases, bench, rows)
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


def tbf_ok(shaper: Shaper, rate_mode: str) -> bool:
    """Print how long 1 MB of raw TCP takes through the "up" tbf at 20 Mbit/s; within bounds?"""
    took = raw_check(shaper, 20e6)
    expect = 8 * 1_000_000 / 20e6
    print(f"tbf check: 1,000,000 bytes of raw TCP through the 'up' tbf at 20 Mbit/s "
          f"(payload rate, rate mode {rate_mode}): {took * 1e3:.1f} ms, "
          f"payload model {expect * 1e3:.1f} ms ({(took / expect - 1) * 100:+.1f}%)")
    return 0.8 < took / expect < 1.3


def run_rows(bench: Bench, cases: Sequence[str], blobs: dict[str, bytes], n: int,
             warmup: int) -> list[Row]:
    """Every (case, payload, path) row, ``loopback`` first, with progress on stderr."""
    rows: list[Row] = []
    plan = [("image", "infer"), ("image", "check"), ("large", "echo")]
    t_start = time.perf_counter()
    for case in ["loopback", *cases]:
        for payload, path in plan:
            spec = None if case == "loopback" else case
            rows.append(bench.session(case, spec, payload, path, blobs[payload], n, warmup))
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
          f"late on average (max {max(lags) * 1e3:.1f}); tbf rate mode {args.rate_mode}; "
          f"tbf drops {Shaper.drops()}; delay-line overruns {sum(r.overruns for r in rows)}")
    errors = print_table(rows)
    print(f"fidelity: median |measured-modelled|/modelled = {median(errors) * 100:.1f} %")
