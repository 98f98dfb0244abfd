"""The model's side: what a fresh link from the spec predicts for one request."""

from __future__ import annotations

import math
from typing import Any


def fresh_link(spec: str, seed: int, offset: float) -> Any:
    """The model: a fresh link from ``spec``; a trace starts at ``offset`` and never times out."""
    import numpy as np

    from rapid_env.link import parse_link
    from rapid_env.link.models import TraceLink

    link = parse_link(spec)
    link.reset(np.random.default_rng(seed))
    if isinstance(link, TraceLink):
        link.offset_s = offset
        link.timeout_s = math.inf
    return link


def model_delays(spec: str, seed: int, offset: float) -> tuple[float, float]:
    """The one-way delays the model draws for one request (what the delay line applies)."""
    link = fresh_link(spec, seed, offset)
    return link.transfer(0, 0.0, "up").arrival, link.transfer(0, 0.0, "down").arrival


def modelled_s(spec: str, up_bytes: int, down_bytes: int, t: float, seed: int,
               offset: float) -> float:
    """``transfer(up)`` then ``transfer(down)`` on a fresh link: ``arrival - t``."""
    link = fresh_link(spec, seed, offset)
    up = link.transfer(up_bytes, t, "up")
    down = link.transfer(down_bytes, up.arrival, "down")
    return float(down.arrival - t)
