"""How many robots one cloud serves within a latency SLO: bisection on the fleet size.

For one decider and link, :func:`find_capacity` runs fleets of 1, 2, 4, ... robots until one
misses the SLO (chunk latency p95 over every delivered chunk, and optionally a success floor) or
the size reaches the bound, then bisects between the last size that met it and the first that did
not. Every probe is a whole fleet (closed loop: the robots react to the latency they get), and
every probe is kept, so the latency-p95-vs-N curve comes with the answer.

The bisection assumes that a larger fleet never does better, which holds for the queue but only
roughly for closed-loop robots (a different fleet size runs a different mix of tasks and seeds):
the probes are all reported so a non-monotone curve shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rapid_env.eval.fleet import meets
from rapid_env.eval.search import narrow

__all__ = ["Capacity", "find_capacity", "markdown_table"]


@dataclass
class Capacity:
    """The answer for one decider and link, and every probe that led to it.

    Attributes:
        agent: the decider.
        link: the link.
        robots: the most robots that met the SLO (0: not even one).
        bounded: True when the search stopped at the size bound, so the capacity is at least
            ``robots``.
        probes: the summary row of every fleet size probed, by size.
    """

    agent: str
    link: str
    robots: int
    bounded: bool
    probes: dict[int, dict[str, Any]] = field(default_factory=dict)

    def row(self, slo_p95_ms: float, min_success: float | None, gpus: int | None) -> dict[str, Any]:
        """The capacity table's row."""
        best = self.probes.get(self.robots, {})
        return {
            "agent": self.agent, "link": self.link, "gpus": gpus, "slo_p95_ms": slo_p95_ms,
            "min_success": min_success, "robots": self.robots,
            "robots_per_gpu": self.robots / gpus if gpus else None,
            "at_least": self.bounded,
            "latency_ms_p95": best.get("latency_ms_p95"), "success": best.get("success"),
            "gpu_util": best.get("gpu_util"),
            "probes": {n: {k: p.get(k) for k in ("latency_ms_p95", "success", "gpu_util",
                                                 "requests_per_s")}
                       for n, p in sorted(self.probes.items())},
        }


def find_capacity(
    agent: str,
    link: str,
    probe: Callable[[int], dict[str, Any]],
    slo_p95_ms: float,
    min_success: float | None = None,
    max_robots: int = 64,
) -> Capacity:
    """Double, then bisect, the fleet size (module docstring); ``probe(n)`` runs a fleet."""
    cap = Capacity(agent, link, 0, False)

    def ok(n: int) -> bool:
        if n not in cap.probes:
            cap.probes[n] = probe(n)
        return meets(cap.probes[n], slo_p95_ms, min_success)

    if not ok(1):
        return cap
    lo, hi = 1, None
    while hi is None:
        n = min(lo * 2, max_robots)
        if n == lo:  # the bound met the SLO
            cap.robots, cap.bounded = lo, True
            return cap
        if ok(n):
            lo = n
        else:
            hi = n
    cap.robots = narrow(lo, hi, ok)
    return cap


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Robots per GPU per decider and link, as a Markdown table."""
    head = ("| decider | link | GPUs | SLO p95 ms | robots | robots per GPU | p95 ms at that size "
            "| success | GPU util | probes (N: p95 ms) |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        probes = ", ".join(
            f"{n}: {p['latency_ms_p95']:.0f}" if p["latency_ms_p95"] is not None else f"{n}: -"
            for n, p in r["probes"].items()
        )
        per = "-" if r["robots_per_gpu"] is None else f"{r['robots_per_gpu']:g}"
        lines.append(
            f"| {r['agent']} | {r['link']} | {r['gpus'] or 'one per request'} "
            f"| {r['slo_p95_ms']:g} | {'>= ' if r['at_least'] else ''}{r['robots']} | {per} "
            f"| {_num(r['latency_ms_p95'], '.0f')} | {_num(r['success'], '.2f')} "
            f"| {_num(r['gpu_util'], '.2f')} | {probes} |"
        )
    return "\n".join(lines) + "\n"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)
