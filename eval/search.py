"""The bisection the capacity searches share: between a size that passes and one that fails.

Robots per GPU (:mod:`rapid_env.eval.capacity`) look for the largest passing size, GPUs needed
(:mod:`rapid_env.eval.fleet_replay`) for the smallest; both first bracket the answer by doubling,
then narrow the bracket the same way, probing only what they have not probed.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["narrow"]


def narrow(good: int, bad: int, ok: Callable[[int], bool]) -> int:
    """Bisect between ``good`` (passes) and ``bad`` (fails) to the passing end of the boundary.

    Works in either direction: ``good < bad`` gives the largest passing value, ``good > bad``
    the smallest. ``ok`` is trusted to be monotone between them.
    """
    while abs(good - bad) > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good
