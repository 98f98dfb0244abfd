"""One direction's bottleneck queue, booked out of order: busy time and the idle gaps between.

A request's transfers are booked on the link when the request is made, at the future times its
plan reaches them (:class:`~rapid_env.transport.SimulatedTransport` walks the whole plan at once).
A queue that only remembers when the link is next free (the end of the last booked transfer) then
makes a second request, sent while the first is still running, wait behind the first request's
*later* transfers although the link is idle now: with a split inside OpenVLA's decoding loop a
request is a 2.3 MB upload followed by six 8 KB ones spread over 250 ms, and a pipelined refill's
upload would wait for all of them. A real link carries it in the gaps.

:class:`GapQueue` keeps the busy intervals instead. A transfer ready at ``t`` uses the link's idle
capacity from ``t`` on, gap by gap, and finishes when the capacity it used covers its bits.
Transfers booked earlier keep their times: their results were already returned, so they have
priority, as packets already queued do. Booked in time order (each transfer ready after the
previous one finished or queued behind it), the result is exactly a FIFO's.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

PRUNE_S = 120.0
"""Intervals that ended this long before the latest transfer's start are forgotten: a request
is given up within a simulated minute (``ControlConfig.request_timeout_s`` <= 60 s), so no later
transfer can start that far back."""

Serialise = Callable[[float, float], float]
"""``(start, bits) -> finish``: when ``bits`` sent from ``start`` on an idle link are through."""
Capacity = Callable[[float, float], float]
"""``(t0, t1) -> bits`` the link carries between two times."""


class GapQueue:
    """Busy intervals of one direction (disjoint, sorted) and the transfers' arrivals."""

    __slots__ = ("_begins", "_ends", "_done", "_arrival", "_max_lag", "_latest")

    def __init__(self) -> None:
        self._begins: list[float] = []
        self._ends: list[float] = []
        self._done: list[float] = []  # per delivered transfer, sorted
        self._arrival: list[float] = []
        self._max_lag = 0.0
        self._latest = float("-inf")

    def place(self, t: float, bits: float, serialise: Serialise,
              capacity: Capacity) -> tuple[float, float, list[tuple[float, float]]]:
        """Where ``bits`` ready at ``t`` go in the idle time from ``t`` on (nothing is marked).

        Returns:
            ``(begin, done, pieces)``: when the transfer first got the link, when its last bit
            was through, and the idle pieces it used (for :meth:`commit`).
        """
        self._forget_before(t)
        cur, left = t, bits
        begin: float | None = None
        pieces: list[tuple[float, float]] = []
        i = bisect.bisect_right(self._ends, t)  # the first interval still busy after t
        while i < len(self._begins):
            b0, e0 = self._begins[i], self._ends[i]
            if b0 > cur:  # an idle gap [cur, b0)
                if begin is None:
                    begin = cur
                finish = serialise(cur, left)
                if finish <= b0:
                    pieces.append((cur, finish))
                    return begin, finish, pieces
                left -= capacity(cur, b0)
                pieces.append((cur, b0))
            cur = max(cur, e0)
            i += 1
        if begin is None:
            begin = cur
        finish = serialise(cur, left) if left > 0 else cur
        pieces.append((cur, finish))
        return begin, finish, pieces

    def commit(self, pieces: list[tuple[float, float]], until: float) -> None:
        """Mark the pieces busy up to ``until``, and the time after them up to ``until``.

        ``until`` past the last piece is a transfer still holding the link (loss repair
        rounds); before it, a transfer given up at its horizon.
        """
        for b, e in pieces:
            if b < until:
                self.occupy(b, min(e, until))
        if pieces and until > pieces[-1][1]:
            self.occupy(pieces[-1][1], until)

    def book(self, t: float, bits: float, serialise: Serialise,
             capacity: Capacity) -> tuple[float, float]:
        """:meth:`place` and :meth:`commit` in one: ``(begin, done)``."""
        begin, done, pieces = self.place(t, bits, serialise, capacity)
        self.commit(pieces, done)
        return begin, done

    def occupy(self, begin: float, end: float) -> None:
        """Mark ``[begin, end]`` busy, merging it with the intervals it touches."""
        if not end > begin:
            return
        i = bisect.bisect_left(self._ends, begin)
        j = bisect.bisect_right(self._begins, end)
        if i < j:
            begin = min(begin, self._begins[i])
            end = max(end, self._ends[j - 1])
        self._begins[i:j] = [begin]
        self._ends[i:j] = [end]

    def in_order(self, done: float, arrival: float) -> float:
        """``arrival``, no earlier than any delivered transfer whose last bit went out first.

        One bottleneck keeps its packets in order; a transfer that finished serialising later
        cannot overtake one that finished before it (the old rule compared with every earlier
        booking, which only equals this one when bookings come in time order).
        """
        j = bisect.bisect_right(self._done, done)
        best = arrival
        while j > 0:
            j -= 1
            if self._done[j] + self._max_lag <= best:
                break  # nothing earlier can arrive later than best
            best = max(best, self._arrival[j])
        return best

    def delivered(self, done: float, arrival: float) -> None:
        """Remember a delivered transfer for :meth:`in_order`."""
        j = bisect.bisect_right(self._done, done)
        self._done.insert(j, done)
        self._arrival.insert(j, arrival)
        self._max_lag = max(self._max_lag, arrival - done)

    def _forget_before(self, t: float) -> None:
        if t <= self._latest:
            return
        self._latest = t
        cut = t - PRUNE_S
        k = bisect.bisect_left(self._ends, cut)
        if k:
            del self._begins[:k], self._ends[:k]
        k = bisect.bisect_left(self._done, cut - self._max_lag)
        if k:
            del self._done[:k], self._arrival[:k]
