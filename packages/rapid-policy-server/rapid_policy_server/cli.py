"""``rapid-policy-server``: serve a policy over openpi's websocket protocol.

Three kinds of policy, one server:

* ``--lerobot DIR``: a LeRobot checkpoint, in the environment that has LeRobot installed
  (:mod:`rapid_policy_server.lerobot`);
* ``--object MODULE:NAME``: any Python object with ``infer(obs) -> dict`` or ``predict(obs) ->
  actions`` (``NAME`` may be a factory taking no arguments), in whatever environment it needs;
* ``--policy NAME``: one of rapid-env's own policies, where rapid-env is installed
  (``rapid_env.cli.policy_server``).

Binds 127.0.0.1 unless ``--host`` says otherwise; nothing is unpickled (msgpack only). Prints one
``serving ... on ws://host:port`` line once it listens (``--port 0`` picks a free port), so a
script can read the port. Exit status: 0 when stopped, 2 on bad input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from rapid_policy_server.server import DEFAULT_HOST, PolicyServer

PROG = "rapid-policy-server"


def parser() -> argparse.ArgumentParser:
    """The ``rapid-policy-server`` flags."""
    ap = argparse.ArgumentParser(
        prog=PROG, description="Serve a policy over openpi's websocket protocol.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  rapid-policy-server --policy chunk-regress --port 8000\n"
               "  rapid-policy-server --lerobot ./my_act_checkpoint --device cuda --port 8000\n"
               "  rapid-policy-server --object my_pkg.policies:make_policy --port 8000")
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--policy", default=None,
                      help="one of rapid-env's policies, as rapid-eval --policy takes it "
                           "(default chunk-regress; needs rapid-env installed)")
    what.add_argument("--lerobot", metavar="DIR", default=None,
                      help="a LeRobot checkpoint directory: config, weights and the processors' "
                           "normalisation stats (needs LeRobot installed)")
    what.add_argument("--object", metavar="MODULE:NAME", default=None,
                      help="a Python object (or a factory of one) with infer(obs) or "
                           "predict(obs)")
    ap.add_argument("--task", default="reach",
                    help="--policy: the task the policy is built for, Meta-World or LIBERO "
                         "(default reach)")
    ap.add_argument("--chunk-size", type=int, default=8,
                    help="--policy: actions per reply (default 8)")
    ap.add_argument("--seed", type=int, default=0,
                    help="--policy: seed of the policy's own randomness (default 0; openpi has "
                         "no reset)")
    ap.add_argument("--device", default="cpu",
                    help="--lerobot: torch device of the model (cpu, cuda, cuda:N, mps)")
    ap.add_argument("--camera", action="append", metavar="KEY=OPENPI_KEY", default=None,
                    help="--lerobot: feed a camera feature from observation/image or "
                         "observation/wrist_image (repeatable; needed only when names "
                         "cannot decide)")
    ap.add_argument("--host", default=DEFAULT_HOST,
                    help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=8000,
                    help="the port (default 8000; 0 picks a free one, printed)")
    ap.add_argument("--max-requests", type=int, default=None,
                    help="stop after this many replies (default: serve until Ctrl-C)")
    return ap


def load_object(spec: str) -> Any:
    """The object ``MODULE:NAME`` names, called when it is a class or a factory function.

    Raises:
        ValueError: a malformed spec, a module that does not import, or no such name.
    """
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"--object {spec!r}: expected MODULE:NAME, e.g. my_pkg.policies:Policy")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--object {spec!r}: cannot import {module_name} ({exc})") from None
    target = getattr(module, name, None)
    if target is None:
        raise ValueError(f"--object {spec!r}: {module_name} has no {name}")
    has_api = callable(getattr(target, "infer", None)) or callable(getattr(target, "predict", None))
    return target if has_api and not isinstance(target, type) else target()


def build_server(args: argparse.Namespace) -> tuple[PolicyServer, str]:
    """The (not yet started) server of ``args`` and what it serves; ValueError for bad input."""
    if not 0 <= args.port < 65536:
        raise ValueError(f"--port {args.port}; allowed: 0..65535 (0 picks a free port)")
    if args.max_requests is not None and args.max_requests < 1:
        raise ValueError(f"--max-requests {args.max_requests}; allowed: an int >= 1")
    if args.lerobot is not None:
        from rapid_policy_server.lerobot import LeRobotPolicy, parse_camera_map

        policy = LeRobotPolicy(args.lerobot, args.device, parse_camera_map(args.camera))
        server = PolicyServer(policy, args.host, args.port, policy.metadata(), args.max_requests)
        return server, f"LeRobot {policy.config.type} from {args.lerobot}"
    if args.object is not None:
        obj = load_object(args.object)
        meta = {"policy": args.object}
        return PolicyServer(obj, args.host, args.port, meta, args.max_requests), args.object
    try:
        from rapid_env.cli.policy_server import build_adapter
    except ImportError:
        raise ValueError("--policy serves rapid-env's policies and needs rapid-env installed; "
                         "in another environment serve --lerobot DIR or --object "
                         "MODULE:NAME") from None
    name = args.policy or "chunk-regress"
    adapter, meta = build_adapter(name, args.task, args.chunk_size, args.seed)
    return PolicyServer(adapter, args.host, args.port, meta, args.max_requests), name


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-policy-server``: 0 when stopped, 2 on bad input."""
    args = parser().parse_args(argv)
    try:
        server, what = build_server(args)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    server.start()
    print(f"{PROG}: serving {what} on {server.url}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
