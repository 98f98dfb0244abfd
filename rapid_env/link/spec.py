"""Link spec strings: one registry, :data:`LINKS`, for the CLI, the wrapper and W&B.

* ``ideal`` -- infinite bandwidth, zero delay (isolates compute latency);
* ``constant:<Mbps>:<rtt_ms>`` -- e.g. ``constant:20:40``; both directions get the bandwidth;
* presets ``wifi``, ``5g-driving``, ``5g-walking``, ``4g``, ``3g-train``, ``3g-bus``,
  ``broadband-slow``, ``puffer`` (sources and parameters in
  :data:`~rapid_env.link.presets.PRESETS`);
* ``trace:<path>[:scale[:rtt_ms]]`` -- a user's TSV / mahimahi / 5Gophers throughput file, rates
  times ``scale``, the same trace both ways, base RTT ``rtt_ms`` (default 40 ms).

A link the core does not simulate (``remote:<host:port>``, a real network to a ``rapid-serve``)
is registered by the layer that runs it with :func:`register_transport_link`: its entry carries a
:class:`LinkTransport` (how to check its form, what to ask before a sweep, how to build its
controller), and every front end asks :func:`link_transport` instead of testing the spelling.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rapid_env.link.base import Link
from rapid_env.link.latency import Latency
from rapid_env.link.models import ConstantLink, IdealLink, TraceLink
from rapid_env.link.presets import PRESETS
from rapid_env.link.traces import load_trace, warn_if_implausible
from rapid_env.registry import Registry


def _constant_args(arg: str) -> tuple[float, float]:
    """``<Mbps>:<rtt_ms>`` -> (Mbps, rtt_ms) as checked floats: the link's identity too."""
    spec = f"constant:{arg}"
    parts = arg.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        mbps, rtt_ms = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(
            f"malformed link {spec!r}; expected constant:<Mbps>:<rtt_ms>, e.g. constant:20:40"
        ) from None
    if not (math.isfinite(mbps) and mbps > 0 and math.isfinite(rtt_ms) and rtt_ms >= 0):
        raise ValueError(f"link {spec!r}: Mbps must be > 0 and rtt_ms >= 0")
    return mbps, rtt_ms


def _constant(arg: str) -> Link:
    mbps, rtt_ms = _constant_args(arg)
    return ConstantLink(mbps * 1e6, rtt_ms / 1e3, name=f"constant:{arg}")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _trace_args(arg: str) -> tuple[str, float, float]:
    """``<path>[:scale[:rtt_ms]]`` -> (path, scale, rtt_ms), without reading the file.

    Numbers are peeled off the end, since paths may hold ':'.
    """
    spec = f"trace:{arg}"
    path = arg
    numbers: list[float] = []
    while len(numbers) < 2:
        head, sep, tail = path.rpartition(":")
        value = _number(tail) if sep else None
        if value is None:
            break
        numbers.insert(0, value)
        path = head
    scale = numbers[0] if numbers else 1.0
    rtt_ms = numbers[1] if len(numbers) > 1 else 40.0
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"link {spec!r}: scale must be a finite number > 0, got {scale!r}")
    if not (math.isfinite(rtt_ms) and rtt_ms >= 0):
        raise ValueError(f"link {spec!r}: rtt_ms must be a finite number >= 0, got {rtt_ms!r}")
    return path, scale, rtt_ms


def _trace_identity(arg: str) -> tuple[str, float, float]:
    """The trace file's real path (``./a.tsv`` and ``a.tsv`` are one), scale and RTT."""
    path, scale, rtt_ms = _trace_args(arg)
    return os.path.realpath(os.path.expanduser(path)), scale, rtt_ms


def _trace(arg: str) -> Link:
    """``trace:<path>[:scale[:rtt_ms]]``: the trace file read, scaled, with its base RTT."""
    spec = f"trace:{arg}"
    path, scale, rtt_ms = _trace_args(arg)
    try:
        trace = load_trace(path).scaled(scale)
    except ValueError as exc:
        raise ValueError(f"link {spec!r}: {exc}") from None
    return TraceLink(trace, latency=Latency(rtt_ms / 1e3), name=spec)


LINKS: Registry[Link] = Registry("link")
LINKS.register("ideal", IdealLink)
LINKS.register_prefix("constant:", _constant, form="constant:<Mbps>:<rtt_ms>",
                      identity=_constant_args)
for _name, _preset in PRESETS.items():
    LINKS.register(_name, _preset.build)
LINKS.register_prefix("trace:", _trace, form="trace:<path>[:scale[:rtt_ms]]",
                      identity=_trace_identity)

LINK_FORMS = tuple(LINKS.names())
"""The forms of the links the core simulates (``LINKS.names()`` adds registered transports')."""


@dataclass(frozen=True)
class LinkTransport:
    """The hooks of a link that runs over a transport the core does not simulate.

    Attributes:
        check: ``check(spec)`` raises ValueError for a malformed spec, before anything loads.
        preflight: ``preflight(spec, policy, chunk_size, token_file)``, once before a sweep with
            the built policy (e.g. asks the server what it runs); ValueError when it cannot work.
        controller: ``controller(cfg, needs_image, token_file)`` builds the episode controller
            whose requests go over this transport.
    """

    check: Callable[[str], Any]
    preflight: Callable[[str, Any, int, Any], None]
    controller: Callable[[Any, bool, Any], Any]


def register_transport_link(prefix: str, transport: LinkTransport, form: str) -> None:
    """Register the ``prefix`` family of links served by ``transport`` (e.g. ``remote:``)."""

    def not_simulated(arg: str) -> Link:
        raise ValueError(f"link {prefix}{arg!s} is not simulated: it runs over its transport "
                         "(rapid-eval runs it; see docs/serve.md)")

    LINKS.register_prefix(prefix, not_simulated, form=form, transport=transport)


def link_transport(spec: str) -> LinkTransport | None:
    """The transport hooks of ``spec``'s registry entry (None: a simulated link).

    Raises:
        UnknownNameError: the spec names no registered link.
    """
    transport: LinkTransport | None = LINKS.extra(spec, "transport")
    return transport


def check_link(spec: str) -> None:
    """Raise ValueError unless ``spec`` builds.

    A simulated link is built (a trace file is read); a transport's link has its form checked by
    its ``check`` hook, without connecting anywhere.
    """
    transport = link_transport(spec)
    if transport is None:
        parse_link(spec)
    else:
        transport.check(spec)


def parse_link(spec: str, episode_s: float | None = None) -> Link:
    """Build a link from its spec string; a bad spec raises naming it and the allowed forms.

    A ``trace:`` link whose trace is almost surely a unit mistake (spans more than a year, an
    absurd mean rate, or, given ``episode_s``, less than one packet per episode) is built, but
    warns with a :class:`~rapid_env.link.traces.TraceWarning` naming it: run as it is, such a
    link is dead and its episodes only stall.
    """
    link = LINKS.create(spec)
    if spec.startswith("trace:") and isinstance(link, TraceLink):
        warn_if_implausible(link.down, spec, episode_s)
    return link
