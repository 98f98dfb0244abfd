"""``rapid-serve``: serve the cloud half of a split policy over gRPC (``docs/serve.md``).

Security model: binds 127.0.0.1 unless ``--host`` says otherwise; every ``PolicyServer`` call needs
``authorization: Bearer <token>`` (compared in constant time), the standard health service stays
open; optional TLS; requests over ``--max-request-mb`` are refused by gRPC itself; nothing is
unpickled; a failing forward is answered ``INTERNAL`` and the server keeps serving.

The flags are parsed and checked before torch, grpc or the model load (they take seconds), so
``--help`` and a bad flag answer at once.

Usage::

    rapid-serve --policy chunk-regress --token-file ~/.rapid-serve-token --port 0
    rapid-serve --policy flow --device cuda --dtype bfloat16 --token-file ~/.rapid-serve-token
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rapid_env.cli.common import HelpFormatter, examples_epilog
from rapid_env.config import DEVICE_FORMS, DTYPE_CHOICES
from rapid_env.serve.config import (
    BOUNDS,
    LOOPBACK,
    SERVABLE,
    TORCH_THREADS,
    ServeConfig,
    UsageError,
    check_log_level,
    check_number,
    check_placement,
    default_chunk_size,
    read_tls_pair,
    read_token_file,
)

if TYPE_CHECKING:
    from rapid_env.serve.lifecycle import RunningServer

log = logging.getLogger("rapid_env.serve")


def parser() -> argparse.ArgumentParser:
    """The ``rapid-serve`` flags."""
    ap = argparse.ArgumentParser(
        prog="rapid-serve",
        description="Serve the cloud half of a split policy over gRPC (docs/serve.md).",
        formatter_class=HelpFormatter,
        epilog=examples_epilog((
            "rapid-serve --token-file token.txt                 # chunk-regress on 127.0.0.1:50051",
            "rapid-serve --policy flow --port 0 --token-file token.txt --max-seconds 600",
            "rapid-serve --token-file token.txt --tls-cert c.pem --tls-key k.pem --host 0.0.0.0",
            "rapid-serve --token-file token.txt --device cuda --dtype bfloat16",
        )),
    )
    ap.add_argument("--policy", default="chunk-regress",
                    help=f"a policy with a split runtime: {', '.join(SERVABLE)}")
    ap.add_argument("--device", default="cpu", metavar="DEVICE",
                    help=f"torch device the cloud half runs on: {', '.join(DEVICE_FORMS)} (an "
                         "absent device is refused before the model loads)")
    ap.add_argument("--dtype", choices=DTYPE_CHOICES, default="float32",
                    help="precision of the cloud half's weights and activations (boundaries "
                         "arrive and actions leave as float32)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=50051, help="0 picks a free port (printed)")
    ap.add_argument("--token-file", required=True,
                    help="file holding the bearer token every call must carry (chmod 600)")
    ap.add_argument("--tls-cert", help="PEM certificate chain: serve TLS (with --tls-key)")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    ap.add_argument("--max-request-mb", type=float, default=16.0,
                    help="largest request accepted; larger ones get RESOURCE_EXHAUSTED")
    ap.add_argument("--deadline-s", type=float, default=5.0,
                    help="longest a request may compute (a client's shorter deadline wins)")
    ap.add_argument("--workers", type=int, default=4, help="request threads")
    ap.add_argument("--max-concurrent", type=int, default=None,
                    help="calls running or queued before RESOURCE_EXHAUSTED (default 2x workers)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch intra-op threads (default: CPU cores / workers, at least 1)")
    ap.add_argument("--parallel-forward", action="store_true",
                    help="run forwards of concurrent calls at once (default: one at a time)")
    ap.add_argument("--chunk-size", type=int, default=None,
                    help="rows of every reply (at most the checkpoint's chunk; default: the "
                         "environment's)")
    ap.add_argument("--max-batch", type=int, default=1,
                    help="most requests for the same split run as one batched forward (1: no "
                         "batching)")
    ap.add_argument("--max-wait-ms", type=float, default=0.0,
                    help="longest the oldest waiting request waits for its batch to fill (never "
                         "past its deadline)")
    ap.add_argument("--max-requests", type=int, default=None,
                    help="stop after this many Infer/Info calls (tests)")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop after this many seconds (tests)")
    ap.add_argument("--grace-s", type=float, default=2.0,
                    help="on SIGTERM/SIGINT, how long calls in flight may finish")
    ap.add_argument("--log-level", default="INFO")
    return ap


def config_from(args: argparse.Namespace) -> ServeConfig:
    """The parsed flags checked and turned into a :class:`ServeConfig` (:class:`UsageError`).

    Every number is checked against its range (:data:`~rapid_env.serve.config.BOUNDS`) before
    the token file is read or anything loads.
    """
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    chunk_size = default_chunk_size() if args.chunk_size is None else args.chunk_size
    flags = {**vars(args), "chunk_size": chunk_size}
    for name, bound in BOUNDS.items():
        check_number(*bound, flags[name])
    check_number(*TORCH_THREADS, args.torch_threads)
    check_log_level(args.log_level)
    check_placement(args.device, args.dtype)
    if args.device != "cpu":  # torch is asked only off the default (it takes seconds to load)
        from rapid_env.agents.torch_device import check_device

        try:
            check_device(args.device)
        except ValueError as e:
            raise UsageError(str(e)) from None
    tls = read_tls_pair(args.tls_cert, args.tls_key) if args.tls_cert else (None, None)
    return ServeConfig(
        policy=args.policy,
        token=read_token_file(args.token_file),
        host=args.host,
        port=args.port,
        tls_cert=tls[0],
        tls_key=tls[1],
        max_request_mb=args.max_request_mb,
        deadline_s=args.deadline_s,
        workers=args.workers,
        max_concurrent=args.max_concurrent,
        parallel_forward=args.parallel_forward,
        max_requests=args.max_requests,
        max_seconds=args.max_seconds,
        grace_s=args.grace_s,
        chunk_size=chunk_size,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        device=args.device,
        dtype=args.dtype,
    )


def _start(args: argparse.Namespace, config: ServeConfig) -> tuple[RunningServer, int]:
    """Load the policy and start serving it: the running server and its torch thread count."""
    import torch

    from rapid_env.serve.lifecycle import start
    from rapid_env.serve.model import load_cloud_model

    cloud = load_cloud_model(
        config.policy, config.chunk_size, config.parallel_forward, config.device, config.dtype
    )
    threads = args.torch_threads or max(1, (os.cpu_count() or 1) // config.workers)
    torch.set_num_threads(threads)
    return start(config, cloud), threads


def _forwards(config: ServeConfig) -> str:
    """How forwards run: batched (with the batch rule), in parallel, or one at a time."""
    if config.batching:
        return (f"batches of up to {config.max_batch} per split, the oldest waiting at most "
                f"{config.max_wait_ms:g} ms")
    return "parallel forwards" if config.parallel_forward else "one forward at a time"


def _announce(running: RunningServer, threads: int) -> None:
    """What is served where (the ``port`` line is the one to parse with ``--port 0``)."""
    config, cloud = running.config, running.cloud
    scheme = "tls" if config.tls_cert else "plaintext"
    if scheme == "plaintext" and config.host not in LOOPBACK:
        log.warning(
            "serving %s without TLS: the token and the boundaries cross the network in the "
            "clear (give --tls-cert and --tls-key)", config.host,
        )
    print(
        f"rapid-serve: serving {cloud.name} ({cloud.model.cfg.family}, cameras "
        f"{', '.join(cloud.cameras)}, splits {cloud.splits[0]}..{cloud.splits[-1]}) on "
        f"{running.address} ({scheme}, device {cloud.device}, dtype {cloud.dtype}, "
        f"{config.workers} workers, {threads} torch threads, "
        f"{_forwards(config)})",
        flush=True,
    )
    print(f"rapid-serve: port {running.port}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``rapid-serve``: 0 after a graceful stop, 2 on a usage error."""
    args = parser().parse_args(argv)
    try:
        config = config_from(args)  # every flag checked before anything loads
    except UsageError as e:
        print(f"rapid-serve: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=check_log_level(args.log_level),
        format="%(asctime)s rapid-serve %(levelname)s %(message)s",
    )
    stop = threading.Event()  # set by SIGTERM/SIGINT, from now on (loading takes seconds)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        running, threads = _start(args, config)
    except UsageError as e:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print(f"rapid-serve: {e}", file=sys.stderr)
        return 2
    _announce(running, threads)
    while not running.wait(0.2):
        if stop.is_set():
            running.stop_requested.set()  # health NOT_SERVING, then stop(grace)
    print("rapid-serve: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
