"""The model's side: what a fresh link from the spec predicts for one request.

A request is a sequence of round trips (one for a single transfer, seven for a split inside the
decoding loop): each an upload, then a download. The model walks them with
:class:`~rapid_env.transport.SimulatedTransport` over a fresh link, exactly as the harness does,
and records the one-way delay the link drew for every transfer, so the delay line can apply the
same draws (jitter) to the real packets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rapid_env.transport import CostPlanner

JITTER_PREFIX = "jitter:"
"""Benchmark-only case ``jitter:<Mbit/s>:<base rtt ms>:<jitter ms>``: lab-wifi6's shape, no loss."""


def build_link(spec: str) -> Any:
    """The link of a case: a registry spec, or a ``jitter:`` case (constant rate, jittered RTT).

    ``jitter:300:8:1`` is ``lab-wifi6`` without its loss: 300 Mbit/s both ways, base RTT 8 ms plus
    exponential jitter of mean 1 ms per direction; it separates jitter from loss in the table.
    """
    from rapid_env.link import parse_link
    from rapid_env.link.latency import Latency
    from rapid_env.link.models import TraceLink
    from rapid_env.link.traces import BandwidthTrace

    if not spec.startswith(JITTER_PREFIX):
        return parse_link(spec)
    try:
        mbps, rtt_ms, jitter_ms = (float(x) for x in spec[len(JITTER_PREFIX):].split(":"))
    except ValueError:
        raise ValueError(f"bad case {spec!r}: expected jitter:<Mbit/s>:<rtt ms>:<jitter ms>, "
                         "e.g. jitter:300:8:1") from None
    if not (mbps > 0 and rtt_ms >= 0 and jitter_ms >= 0):
        raise ValueError(f"bad case {spec!r}: rate must be > 0, rtt and jitter >= 0")
    return TraceLink(BandwidthTrace.constant(mbps * 1e6, spec),
                     latency=Latency(rtt_ms / 1e3, jitter_ms / 1e3), random_start=False,
                     name=spec)


def fresh_link(spec: str, seed: int, offset: float) -> Any:
    """The model: a fresh link from ``spec``; a trace starts at ``offset`` and never times out."""
    import numpy as np

    from rapid_env.link.models import TraceLink

    link = build_link(spec)
    link.reset(np.random.default_rng(seed))
    if isinstance(link, TraceLink):
        link.offset_s = offset
        link.timeout_s = math.inf
    return link


@dataclass(frozen=True)
class _Steps:
    """A cost planner whose every plan is ``steps``: transfers only (no compute is compared)."""

    steps: tuple[tuple[str, int], ...]
    n_blocks: int = 1

    def plan(self, k: int) -> Any:
        from rapid_env.cost.model import InferencePlan, Stage

        return InferencePlan(k, tuple(Stage(kind, 0.0, n) for kind, n in self.steps))  # type: ignore[arg-type]


def round_trips(ups: Sequence[int], down: int) -> tuple[tuple[str, int], ...]:
    """The transfers of ``len(ups)`` sequential round trips: each upload, then ``down`` bytes."""
    return tuple(step for n in ups for step in (("up", n), ("down", down)))


def model_run(spec: str, steps: Sequence[tuple[str, int]], t: float, seed: int,
              offset: float) -> tuple[float, list[float]]:
    """``SimulatedTransport`` over a fresh link: (arrival - t, one-way delay of each transfer).

    The delays are what the link drew for each transfer (half the RTT, plus jitter if any): read
    by wrapping the link's own draw, so they are the model's values, not a second draw.
    """
    from rapid_env.link.models import ConstantLink
    from rapid_env.transport import SimulatedTransport

    link = fresh_link(spec, seed, offset)
    delays: list[float] = []
    if isinstance(link, ConstantLink):
        delays = [link.rtt_s / 2.0] * len(steps)
    else:
        draw = link._delay  # noqa: SLF001 - the benchmark reads the model's own draws

        def recorded(st: Any) -> float:
            d = float(draw(st))
            delays.append(d)
            return d

        link._delay = recorded  # noqa: SLF001
    # SimulatedTransport.send walks plan() only; the planner's other members are for deciders.
    planner = cast("CostPlanner", _Steps(tuple(steps)))
    result = SimulatedTransport(planner, link).send(0, t)
    if result.arrival is None:  # a trace without a timeout never loses a TCP transfer
        raise RuntimeError(f"the model lost a transfer on {spec}")
    return float(result.arrival - t), delays


def model_delays(spec: str, steps: Sequence[tuple[str, int]], seed: int,
                 offset: float) -> list[tuple[float, float]]:
    """Per round trip: the (up, down) delays the model draws (what the delay line applies)."""
    _, delays = model_run(spec, steps, 0.0, seed, offset)
    return [(delays[i], delays[i + 1]) for i in range(0, len(delays), 2)]


def modelled_s(spec: str, up_bytes: int, down_bytes: int, t: float, seed: int,
               offset: float) -> float:
    """``transfer(up)`` then ``transfer(down)`` on a fresh link: ``arrival - t``."""
    return model_run(spec, round_trips([up_bytes], down_bytes), t, seed, offset)[0]


def loss_params(spec: str) -> tuple[float, float, float, float] | None:
    """The link's Gilbert-Elliott parameters (p, r, loss_good, loss_bad), or None (no loss)."""
    link = build_link(spec)
    loss = getattr(link, "loss", None)
    if loss is None or loss.lossless:
        return None
    return (loss.p, loss.r, loss.loss_good, loss.loss_bad)
