"""Everything a sweep names is built or parsed once, before its first episode.

A sweep that is going to fail should fail in the first second with one line, not after an hour
as a table of zeros. So every name is checked against its registry, every noise and link spec is
parsed (a trace file is read, memory-bounded), the policy is loaded once (a missing or broken
checkpoint fails here) and every agent spec is built once (``sb3:<dir>`` loads its files). A link
that runs over a transport (its registry entry has a :class:`~rapid_env.link.LinkTransport`, as
``remote:<host:port>`` has) is not simulated: its form is checked, then its ``preflight`` hook runs
once with the built policy (``remote:`` asks its server, with the token, what it runs).
``--policy-timing measured`` is checked against the policy and every link. A ``ValueError`` from
here is bad input: ``rapid-eval`` exits 2 with its message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TypeVar

from rapid_env.build import validate_core_names
from rapid_env.compose import build_decider, build_policy, check_policy_timing, validate_names
from rapid_env.eval.jobs import SweepSpec
from rapid_env.link import check_link, link_transport, parse_link
from rapid_env.noise import parse_noise
from rapid_env.serve import remote_link  # noqa: F401  (registers the remote: link)

T = TypeVar("T")


def preflight(spec: SweepSpec, token_file: str | None = None) -> None:
    """Raise ValueError for the first part of ``spec`` that cannot be built.

    ``token_file`` is the bearer token's file for ``remote:`` links (None: ``$RAPID_SERVE_TOKEN``);
    it is handed to every transport link's ``preflight`` hook.
    """
    validate_names(spec.base)
    for task in spec.tasks:
        validate_core_names(spec.config(task))
    for noise in spec.noises:
        parse_noise(noise)
    for link in spec.links:
        check_link(link)  # a transport's link: its form only, before anything loads
        check_policy_timing(replace(spec.base, link=link))  # measured: a served policy's only
        if link_transport(link) is None:
            parse_link(link, episode_s=spec.base.max_episode_s)  # warns on a dead trace
    for agent in spec.agents:
        _build(f"agent {agent!r}", partial(build_decider, agent))
    policy = _build(f"policy {spec.base.policy!r}", partial(build_policy, spec.base))
    try:
        for link in spec.links:
            transport = link_transport(link)
            if transport is not None:
                _build(f"link {link!r}", partial(
                    transport.preflight, link, policy, spec.base.chunk_size, token_file))
    finally:
        close = getattr(policy, "close", None)  # a served policy's connection (openpi:)
        if callable(close):
            close()


def _build(what: str, make: Callable[[], T]) -> T:
    """Build once; any failure to build is bad input, with what failed in front."""
    try:
        return make()
    except ValueError:
        raise
    except Exception as exc:  # a loader's own error type (OSError, KeyError, safetensors ...)
        raise ValueError(f"{what} cannot be loaded: {type(exc).__name__}: {exc}") from None
