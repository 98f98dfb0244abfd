"""The network link between robot (edge) and cloud, in simulated time.

A :class:`Link` answers one question: a transfer of ``nbytes`` that is ready at ``t_start`` in one
direction, when does it arrive -- or is it lost? Kernel shaping (tc netem) is not available, so
this package is a model of one bottleneck per direction: bandwidth traces serialised exactly,
jittered propagation, bursty packet loss with TCP repair, and timeouts (see ``docs/network.md``).
All randomness comes from the generator passed to ``Link.reset``. It is part of the core: it
imports only the standard library, numpy, :mod:`rapid_env.registry` and its own modules.

Modules, one job each:

* :mod:`~rapid_env.link.base` -- the seam the control loop calls: :class:`Link` (a protocol),
  :class:`TransferResult`, :data:`Direction` / :data:`DIRECTIONS`;
* :mod:`~rapid_env.link.latency` -- :class:`Latency`, the RTT model (base + jitter, or measured);
* :mod:`~rapid_env.link.loss` -- :class:`GilbertElliott`, bursty packet loss;
* :mod:`~rapid_env.link.traces` -- :class:`BandwidthTrace` and the trace / RTT-log loaders;
* :mod:`~rapid_env.link.models` -- :class:`IdealLink`, :class:`ConstantLink`, :class:`TraceLink`;
* :mod:`~rapid_env.link.presets` -- :class:`LinkPreset` and :data:`PRESETS` (``wifi``, ``4g``, ...);
* :mod:`~rapid_env.link.spec` -- spec strings: :data:`LINKS`, :data:`LINK_FORMS`,
  :func:`parse_link` (``ideal``, ``constant:<Mbps>:<rtt_ms>``, presets, ``trace:<path>...``), and
  links over a transport the core does not simulate (:func:`register_transport_link`,
  :func:`link_transport`);
* :mod:`~rapid_env.link.estimator` -- :class:`LinkEstimator`, what a decider may know of the link.

Every public name is re-exported here: import from ``rapid_env.link``.
"""

from __future__ import annotations

from rapid_env.link.base import DIRECTIONS, Direction, Link, TransferResult
from rapid_env.link.estimator import LinkEstimator
from rapid_env.link.latency import Latency
from rapid_env.link.loss import GilbertElliott, GilbertElliottChannel
from rapid_env.link.models import ConstantLink, IdealLink, Reliability, TraceEnd, TraceLink
from rapid_env.link.presets import PRESETS, LinkPreset
from rapid_env.link.spec import (
    LINK_FORMS,
    LINKS,
    LinkTransport,
    check_link,
    link_transport,
    parse_link,
    register_transport_link,
)
from rapid_env.link.traces import (
    CARRIERS_5G,
    MTU_BYTES,
    TRACE_DIR,
    BandwidthTrace,
    TraceWarning,
    bundled,
    implausibility,
    load_5gophers,
    load_mahimahi,
    load_rtt_samples,
    load_trace,
    load_tsv,
    sniff_format,
    warn_if_implausible,
)

__all__ = [
    "CARRIERS_5G",
    "DIRECTIONS",
    "LINKS",
    "LINK_FORMS",
    "MTU_BYTES",
    "PRESETS",
    "TRACE_DIR",
    "BandwidthTrace",
    "ConstantLink",
    "Direction",
    "GilbertElliott",
    "GilbertElliottChannel",
    "IdealLink",
    "Latency",
    "Link",
    "LinkEstimator",
    "LinkPreset",
    "LinkTransport",
    "Reliability",
    "TraceEnd",
    "TraceLink",
    "TraceWarning",
    "TransferResult",
    "bundled",
    "check_link",
    "implausibility",
    "link_transport",
    "load_5gophers",
    "load_mahimahi",
    "load_rtt_samples",
    "load_trace",
    "load_tsv",
    "parse_link",
    "register_transport_link",
    "sniff_format",
    "warn_if_implausible",
]
