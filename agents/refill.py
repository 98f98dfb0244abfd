"""The refill rule every decider shares: ask for a new chunk before the current one runs out.

A request is due when nothing is in flight and the cached actions would run out before a new chunk
could arrive, judged from the last observed latency (before the first chunk: when the buffer is
empty). Deciders differ in what they add on top of this (RAPID: preemption at critical moments) and
in where the model is split, not in whether the robot is kept fed.
"""

from __future__ import annotations

import math

from rapid_env.decision import DeciderObservation


def lead_ticks(obs: DeciderObservation) -> int:
    """Ticks of cached actions needed to cover the last observed latency."""
    if math.isnan(obs.last_latency_s):
        return 0
    return int(math.ceil(obs.last_latency_s / obs.tick_dt - 1e-9))


def refill_due(obs: DeciderObservation) -> bool:
    """Whether a refill request should be sent now."""
    return obs.in_flight == 0 and obs.chunk_remaining <= lead_ticks(obs)
