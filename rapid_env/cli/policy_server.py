"""``rapid-policy-server --policy NAME``: the part of the command that needs rapid-env.

The command itself lives in the small ``rapid-policy-server`` distribution
(:mod:`rapid_policy_server.cli`), so that it runs in a policy's own environment (LeRobot's, say)
without rapid-env; for ``--policy NAME`` it calls :func:`build_adapter` here, which turns one of
this project's policies into an openpi-served object. Any openpi client
(``openpi_client.websocket_client_policy.WebsocketClientPolicy``, or ``rapid-eval --policy
openpi:ws://host:port``) can then query it. See docs/plugging_in_a_policy.md, *A policy served
over the openpi protocol*.

Usage::

    rapid-policy-server --policy chunk-regress --port 8000
"""

from __future__ import annotations

from typing import Any


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
