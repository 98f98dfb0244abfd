"""``rapid-policy-server``: serve one of this project's policies over openpi's websocket protocol.

Any openpi client (``openpi_client.websocket_client_policy.WebsocketClientPolicy``, or
``rapid-eval --policy openpi:ws://host:port``) can then query it. Binds 127.0.0.1 unless
``--host`` says otherwise; nothing is unpickled (msgpack only). Needs the small
``rapid-policy-server`` package (``pip install ./packages/rapid-policy-server``; ``make install``
installs it). See docs/plugging_in_a_policy.md, *A policy served over the openpi protocol*.

Usage::

    rapid-policy-server --policy chunk-regress --port 8000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rapid_env.cli.common import HelpFormatter, examples_epilog

if TYPE_CHECKING:
    from rapid_policy_server import PolicyServer


def parser() -> argparse.ArgumentParser:
    """The ``rapid-policy-server`` flags."""
    ap = argparse.ArgumentParser(
        prog="rapid-policy-server",
        description="Serve a policy over openpi's websocket protocol "
                    "(docs/plugging_in_a_policy.md).",
        formatter_class=HelpFormatter,
        epilog=examples_epilog((
            "rapid-policy-server --policy chunk-regress --port 8000",
            "rapid-policy-server --policy chunk-regress-libero --task libero_object --port 8000",
        )),
    )
    ap.add_argument("--policy", default="chunk-regress",
                    help="a policy name, as rapid-eval --policy takes it (a learned one: it "
                         "sees no simulator)")
    ap.add_argument("--task", default="reach",
                    help="the task the policy is built for (its suite: Meta-World or LIBERO)")
    ap.add_argument("--chunk-size", type=int, default=8, help="actions per reply")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    ap.add_argument("--max-requests", type=int, default=None,
                    help="stop after this many replies (default: serve until Ctrl-C)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the policy's own randomness (openpi has no per-episode reset)")
    return ap


def build_server(args: argparse.Namespace) -> PolicyServer:
    """The (not yet started) server of ``args``; ValueError for a bad flag or policy."""
    if not 0 <= args.port < 65536:
        raise ValueError(f"--port {args.port}; allowed: 0..65535 (0 picks a free port)")
    if args.max_requests is not None and args.max_requests < 1:
        raise ValueError(f"--max-requests {args.max_requests}; allowed: an int >= 1")
    try:
        from rapid_policy_server import PolicyServer
    except ImportError:
        raise ValueError("the rapid-policy-server package is not installed: "
                         "pip install ./packages/rapid-policy-server") from None
    from rapid_env.compose import build_policy, validate_names
    from rapid_env.config import EnvConfig
    from rapid_env.serve.openpi import OpenPIAdapter

    cfg = EnvConfig(task=args.task, policy=args.policy, chunk_size=args.chunk_size)
    validate_names(cfg)
    adapter = OpenPIAdapter(build_policy(cfg), seed=args.seed)
    return PolicyServer(adapter, args.host, args.port, adapter.metadata(), args.max_requests)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-policy-server``: 0 when stopped, 2 on bad input."""
    args = parser().parse_args(argv)
    try:
        server = build_server(args)
    except ValueError as exc:
        print(f"rapid-policy-server: error: {exc}", file=sys.stderr)
        return 2
    server.start()
    print(f"rapid-policy-server: serving {args.policy} on {server.url}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
