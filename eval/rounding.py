"""Numbers as a reader should see them: rounded to what their confidence interval supports.

``173.00000000000003 ± 0.00000000000056`` says nothing the reader can use; ``173`` says it all.
The rule (a common one in metrology): give the interval's half-width **2 significant digits**
and round the value to the same decimal place, so no digit is shown that the interval makes
meaningless. A half-width that is zero (or float noise around zero, below ``1e-9`` of the
value) or unknown adds nothing: the value alone is shown, to :func:`fmt`'s 3 significant digits.
"""

from __future__ import annotations

import math
from typing import Any

from rapid_env.eval.pooling import as_float

__all__ = ["ci_parts", "fmt", "round_to_ci", "signed"]

_NOISE = 1e-9
"""A half-width below this fraction of the value (or of 1) is float noise: equal episodes."""


def fmt(value: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant digits, trailing zeros kept; an en dash for NaN/None.

    ``4.00``, ``27.5``, ``143``, ``1234``: no decimals from ``10**(digits-1)`` up.
    """
    x = as_float(value)
    if not math.isfinite(x):
        return "–"
    if abs(x) >= 10 ** (digits - 1):
        return _no_minus_zero(f"{x:.0f}")
    x = float(f"{x:.{digits}g}")  # round first: 9.996 is 10.0, not 10.00
    if x == 0:
        return f"{0:.{digits - 1}f}"
    magnitude = math.floor(math.log10(abs(x)))
    return _no_minus_zero(f"{x:.{max(0, digits - 1 - magnitude)}f}")


def _no_minus_zero(text: str) -> str:
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def ci_parts(value: Any, half_width: Any) -> tuple[str, str | None]:
    """``(value, half-width)`` as texts rounded together (module docstring); half None if none.

    ``(173.0, 5.6e-13)`` -> ``("173", None)``; ``(173.24, 5.63)`` -> ``("173.2", "5.6")``;
    ``(1234.5, 560)`` -> ``("1230", "560")``; ``(0.01234, 0.00056)`` -> ``("0.01234", "0.00056")``.
    """
    x, h = as_float(value), abs(as_float(half_width))
    if not math.isfinite(x):
        return ("–", None)
    if not math.isfinite(h) or h <= _NOISE * max(1.0, abs(x)):
        return (fmt(x), None)
    h = float(f"{h:.2g}")  # 2 significant digits first: 9.96 becomes 10, one digit fewer
    decimals = 1 - math.floor(math.log10(h))
    if decimals > 0:
        return (_no_minus_zero(f"{x:.{decimals}f}"), f"{h:.{decimals}f}")
    step = 10 ** (-decimals)
    return (_no_minus_zero(f"{round(x / step) * step:.0f}"), f"{round(h / step) * step:.0f}")


def round_to_ci(value: Any, half_width: Any) -> str:
    """``"value ± half"`` rounded to the interval (:func:`ci_parts`); the value alone without one.

    ``round_to_ci(173.0, 5.6e-13)`` is ``"173"``; ``round_to_ci(173.24, 5.63)`` is
    ``"173.2 ± 5.6"``; ``round_to_ci(math.nan, 1.0)`` is ``"–"``.
    """
    text, half = ci_parts(value, half_width)
    return text if half is None else f"{text} ± {half}"


def signed(text: str) -> str:
    """A difference with its sign always shown: ``+0.25``, ``−3.1`` (a real minus), ``0``."""
    if text.startswith("-"):
        return "−" + text[1:]
    if text in ("–",) or not text.strip("0.") :
        return text
    return "+" + text
