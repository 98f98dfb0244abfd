"""``rapid-policy-server``: serve a policy over openpi's websocket protocol.

The command itself lives in the small ``rapid-policy-server`` distribution
(:mod:`rapid_policy_server.cli`), so that it runs in a policy's own environment (LeRobot's, say)
without rapid-env; this module is the part that needs rapid-env: :func:`build_adapter` turns one
of this project's policies into an openpi-served object for ``--policy NAME``. Any openpi client
(``openpi_client.websocket_client_policy.WebsocketClientPolicy``, or ``rapid-eval --policy
openpi:ws://host:port``) can then query it. See docs/plugging_in_a_policy.md, *A policy served
over the openpi protocol*.

Usage::

    rapid-policy-server --policy chunk-regress --port 8000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rapid_policy_server import PolicyServer

INSTALL_HINT = "pip install ./packages/rapid-policy-server (make install does)"


def _cli() -> Any:
    """The small distribution's command module; ValueError when it is not installed."""
    try:
        from rapid_policy_server import cli
    except ImportError:
        raise ValueError(f"the rapid-policy-server package is not installed: {INSTALL_HINT}"
                         ) from None
    return cli


def build_adapter(policy: str, task: str, chunk_size: int, seed: int
                  ) -> tuple[Any, dict[str, Any]]:
    """One of this project's policies as an openpi-served object, and its metadata.

    Raises:
        ValueError: an unknown policy or task (naming the allowed ones).
    """
    from rapid_env.compose import build_policy, validate_names
    from rapid_env.config import EnvConfig
    from rapid_env.serve.openpi import OpenPIAdapter

    cfg = EnvConfig(task=task, policy=policy, chunk_size=chunk_size)
    validate_names(cfg)
    adapter = OpenPIAdapter(build_policy(cfg), seed=seed)
    return adapter, adapter.metadata()


def parser() -> argparse.ArgumentParser:
    """The ``rapid-policy-server`` flags (:func:`rapid_policy_server.cli.parser`)."""
    return _cli().parser()  # type: ignore[no-any-return]


def build_server(args: argparse.Namespace) -> PolicyServer:
    """The (not yet started) server of ``args``; ValueError for a bad flag or policy."""
    server, _ = _cli().build_server(args)
    return server  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-policy-server``: 0 when stopped, 2 on bad input."""
    try:
        cli = _cli()
    except ValueError as exc:
        print(f"rapid-policy-server: error: {exc}", file=sys.stderr)
        return 2
    return cli.main(argv)  # type: ignore[no-any-return]


if __name__ == "__main__":
    sys.exit(main())
