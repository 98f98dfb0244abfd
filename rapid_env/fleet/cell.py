"""One wireless cell shared by a fleet: its airtime split equally among concurrent transfers.

Each robot's own link (a trace or a preset) still times each transfer as if the robot were
alone: its bandwidth, round trip, loss and repair. The cell adds what sharing costs on top. A
transfer of ``nbytes`` needs ``nbytes * 8 / capacity`` seconds of the cell's airtime (its
*work*); the cell serves every transfer in flight in one direction at once, each at an equal
share of its airtime (processor sharing, the fluid form of Wi-Fi's equal airtime per station),
so a transfer that shares the cell finishes later than its work alone would. That extra time is
added to the transfer's arrival on the robot's own link. A transfer that had the cell to itself
gets nothing added: a fleet of one on a cell is the robot alone. Uplink and downlink are
separate channels, each with its capacity.

Like the cloud queue, the cell is simulated in time order as far as the fleet loop says every
transfer is known (:class:`~rapid_env.fleet.shared.SharedResources`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CellSpec", "WirelessCell", "parse_cell"]

_EPS = 1e-12


@dataclass(frozen=True)
class CellSpec:
    """A cell's capacity per direction, in bits per second."""

    up_bps: float
    down_bps: float

    def __post_init__(self) -> None:
        for name in ("up_bps", "down_bps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"cell {name}={value!r}; allowed: a positive finite number")

    @property
    def name(self) -> str:
        """``<up Mbit/s>:<down Mbit/s>``, the spec it parses from."""
        return f"{self.up_bps / 1e6:g}:{self.down_bps / 1e6:g}"


def parse_cell(text: str, link_bandwidth_bps: float | None = None) -> CellSpec:
    """The cell a spec names: ``UP:DOWN`` in Mbit/s, one number for both, or ``link``.

    ``link`` takes the fleet's link's mean bandwidth as the cell's capacity both ways (what one
    robot alone gets from it).
    """
    text = text.strip()
    if text == "link":
        if link_bandwidth_bps is None:
            raise ValueError("cell 'link' needs the fleet's link; allowed: UP:DOWN in Mbit/s")
        return CellSpec(link_bandwidth_bps, link_bandwidth_bps)
    parts = text.split(":")
    try:
        values = [float(p) * 1e6 for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise ValueError(
            f"cell {text!r}; allowed: 'link', a capacity in Mbit/s for both directions (300), "
            "or UP:DOWN in Mbit/s (100:300)"
        )
    return CellSpec(values[0], values[-1])


@dataclass
class _Transfer:
    work: float
    remaining: float
    start: float
    done: Callable[[float, float], None]
    order: int
    shared: bool = False


@dataclass
class _Channel:
    """One direction: transfers in flight, transfers not started yet, and its clock."""

    capacity_bps: float
    now: float = 0.0
    active: list[_Transfer] = field(default_factory=list)
    joins: list[tuple[float, int, _Transfer]] = field(default_factory=list)  # a heap

    def next_event(self) -> float:
        join = self.joins[0][0] if self.joins else math.inf
        if not self.active:
            return join
        least = min(t.remaining for t in self.active)
        return min(join, self.now + least * len(self.active))

    def step(self) -> None:
        when = self.next_event()
        n = len(self.active)
        if n:
            served = (when - self.now) / n
            for t in self.active:
                t.remaining -= served
        self.now = max(self.now, when)
        if self.joins and self.joins[0][0] <= when:
            _, _, new = heapq.heappop(self.joins)
            if self.active:
                new.shared = True
                for t in self.active:
                    t.shared = True
            self.active.append(new)
            return
        first = min(self.active, key=lambda t: (t.remaining, t.order))
        first.remaining = 0.0
        finished = [t for t in self.active if t.remaining <= _EPS]
        self.active = [t for t in self.active if t.remaining > _EPS]
        for t in sorted(finished, key=lambda t: t.order):
            extra = (self.now - t.start - t.work) if t.shared else 0.0
            t.done(max(0.0, extra), t.work)


class WirelessCell:
    """The fleet's cell: an uplink and a downlink channel (see the module docstring)."""

    def __init__(self, spec: CellSpec) -> None:
        self.spec = spec
        self._channels = {"up": _Channel(spec.up_bps), "down": _Channel(spec.down_bps)}
        self._order = 0

    def join(
        self, direction: str, start: float, nbytes: int, done: Callable[[float, float], None]
    ) -> None:
        """A transfer of ``nbytes`` starts at ``start``.

        ``done(extra seconds, work seconds)`` is called when it is through the cell.
        """
        channel = self._channels[direction]
        work = nbytes * 8.0 / channel.capacity_bps
        self._order += 1
        transfer = _Transfer(work, work, max(start, channel.now), done, self._order)
        heapq.heappush(channel.joins, (transfer.start, self._order, transfer))

    def next_event(self) -> float:
        """The time of the cell's next join or completion (inf: nothing in flight)."""
        return min(c.next_event() for c in self._channels.values())

    def step(self) -> None:
        """Process the cell's next event (a join or the completions at that time)."""
        channel = min(self._channels.values(), key=lambda c: c.next_event())
        channel.step()
