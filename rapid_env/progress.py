"""Live progress for long commands: a tqdm bar on a terminal, throttled plain lines elsewhere.

``rapid-eval``, ``rapid-train`` and ``rapid-train-decider`` run for minutes to hours. A
:class:`Progress` shows how far they are, how fast they go and when they will finish:

* on a terminal (the stream's ``isatty()``), a tqdm bar: done/total, rate, elapsed, ETA and a
  postfix with the outcomes so far (``success=37 errors=2``: episodes that reached the task's
  goal, and episodes the harness could not run) and any values the caller adds;
* anywhere else (CI logs, ``| tee``, a file), plain lines with rounded numbers and no carriage
  returns, at most one per ``interval_s`` seconds plus a final one::

      rapid-eval: 37/120 episodes (30.8%), 0.52/s, elapsed 1m11s, ETA 2m40s, success 30, errors 2

* with ``quiet=True``, nothing at all.

Example::

    with Progress(total=120, desc="rapid-eval", initial=37, quiet=quiet) as bar:
        for record in results:
            bar.update(success=bool(record["success"]), error=is_error(record))

The bar goes to ``sys.stderr`` unless ``stream`` says otherwise; :meth:`Progress.write` prints a
result line to ``sys.stdout`` (or ``out``) without breaking the bar. A utility module: it imports
the standard library and tqdm only.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

__all__ = ["Progress", "format_duration", "format_rate"]


def format_duration(seconds: float | None) -> str:
    """``45s``, ``2m40s``, ``1h05m``; ``?`` when unknown (``None``, infinite or NaN)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def format_rate(rate: float | None) -> str:
    """Units per second, rounded: ``1234``, ``12.3``, ``1.23``, ``0.52``, ``0.052``."""
    if rate is None or not math.isfinite(rate):
        return "?"
    if rate >= 100:
        return f"{rate:.0f}"
    if rate >= 10:
        return f"{rate:.1f}"
    if rate >= 0.1:
        return f"{rate:.2f}"
    return f"{rate:.2g}"


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed or detached stream
        return False


def _columns(stream: Any) -> int | None:
    """The terminal's width, or ``None`` when unknown.

    A pty of size 0x0 (``script``, some ``docker -t`` sessions) reports 0, and tqdm would then
    draw nothing at all.
    """
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return None


class Progress:
    """Progress of ``total`` units of work (episodes, training steps, PPO ticks).

    Args:
        total: units in the whole run, including ``initial`` ones already done.
        desc: the command or phase, printed first (``rapid-eval``).
        unit: one unit's name; plain lines pluralise it with an ``s``.
        quiet: print nothing at all (neither the bar nor :meth:`write` lines, unless
            ``always=True`` is given to :meth:`write`).
        stream: where the bar or the progress lines go (default ``sys.stderr``, read when the
            object is built). A terminal gets a tqdm bar, anything else plain lines.
        interval_s: plain lines: at most one per this many seconds (plus the final one).
        initial: units already done by an earlier, resumed run; they count towards done/total
            but not towards the rate.
        clock: seconds, monotonic (tests inject a fake one); used for the plain lines' rate,
            elapsed time, ETA and throttling.
        out: where :meth:`write` prints (default ``sys.stdout`` at the time of the call).
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "episode",
        quiet: bool = False,
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        initial: int = 0,
        clock: Callable[[], float] = time.monotonic,
        out: TextIO | None = None,
    ) -> None:
        if total < 0 or initial < 0:
            raise ValueError(f"total and initial must be >= 0, got {total}, {initial}")
        if interval_s < 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s}")
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.quiet = quiet
        self.interval_s = float(interval_s)
        self.initial = int(initial)
        self.done = int(initial)
        self.successes = 0
        self.errors = 0
        self.postfix: dict[str, Any] = {}
        self._outcomes = False  # show success/errors once any outcome was reported
        self._clock = clock
        self._out = out
        self._stream: TextIO = stream if stream is not None else sys.stderr
        self._start = clock()
        self._last_line_t = self._start
        self._last_line_key: tuple[Any, ...] | None = None
        self._closed = False
        self._bar: Any = None
        if not quiet and _is_tty(self._stream):
            from tqdm import tqdm

            sized = _columns(self._stream) != 0  # follow resizes unless the width reads 0
            self._bar = tqdm(
                total=self.total,
                initial=self.initial,
                desc=desc,
                unit=unit,
                file=self._stream,
                leave=True,
                dynamic_ncols=sized,
                ncols=None if sized else 100,
                nrows=None if sized else 20,
            )

    # ------------------------------------------------------------------ state
    @property
    def is_tty(self) -> bool:
        """Whether a tqdm bar is shown (a terminal stream and not quiet)."""
        return self._bar is not None

    @property
    def elapsed_s(self) -> float:
        """Seconds since the object was built, on its clock."""
        return self._clock() - self._start

    @property
    def rate(self) -> float | None:
        """New units per second of this run (``initial`` excluded); ``None`` before any time."""
        elapsed = self.elapsed_s
        return (self.done - self.initial) / elapsed if elapsed > 0 else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate; ``None`` while the rate is unknown or zero."""
        rate = self.rate
        if self.done >= self.total:
            return 0.0
        return (self.total - self.done) / rate if rate else None

    # ---------------------------------------------------------------- updates
    def update(
        self, n: int = 1, *, success: bool | None = None, error: bool = False, **postfix: Any
    ) -> None:
        """``n`` more units done; ``success`` counts them as successes, ``error`` as errors.

        An *error* is a unit the harness could not run (an episode error), not a task failure: a
        task failure is simply not a success, so the two counts do not add up to the total.

        Extra keyword values (``loss=0.0123``, ``task="reach"``) replace the postfix entries of
        the same name and are shown after the outcomes.
        """
        self.done += n
        if success is not None or error:
            self._outcomes = True
            self.successes += n if success else 0
            self.errors += n if error else 0
        self.postfix.update(postfix)
        self._show(n)

    def record(self, successes: int = 0, errors: int = 0) -> None:
        """Count outcomes without advancing (a resumed run's earlier ones, PPO episodes)."""
        if successes < 0 or errors < 0:
            raise ValueError(f"successes and errors must be >= 0, got {successes}, {errors}")
        self._outcomes = True
        self.successes += successes
        self.errors += errors
        self._show(0)

    def set_postfix(self, **postfix: Any) -> None:
        """Replace postfix entries without advancing."""
        self.postfix.update(postfix)
        self._show(0)

    def set_total(self, total: int) -> None:
        """Change the total (an estimate that firms up, e.g. steps that fit a time budget)."""
        self.total = max(int(total), 0)
        if self._bar is not None and self._bar.total != self.total:
            self._bar.total = self.total
            self._bar.refresh()

    def write(self, msg: str, *, always: bool = False) -> None:
        """Print ``msg`` as a line of its own, above the bar on a terminal.

        Under ``quiet`` nothing is printed unless ``always`` (results that a quiet run still
        prints, as opposed to progress chatter).
        """
        if self.quiet and not always:
            return
        out = self._out if self._out is not None else sys.stdout
        if self._bar is not None and not self._closed:
            from tqdm import tqdm

            tqdm.write(msg, file=out)
        else:
            print(msg, file=out, flush=True)

    def close(self) -> None:
        """Finish: close the bar, or print the final plain line (once; idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix_text(" ", "="), refresh=False)
            self._bar.close()
        elif not self.quiet and (
            self._line_key() != self._last_line_key or self.done < self.total
        ):
            self._emit(final=True)  # not twice the same finished line

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---------------------------------------------------------------- display
    def line(self, final: bool = False) -> str:
        """The plain progress line for the current state (what a non-terminal stream gets)."""
        units = self.unit if self.total == 1 else f"{self.unit}s"
        parts = [f"{self.desc}: {self.done}/{self.total} {units}"]
        if self.total > 0:
            parts[0] += f" ({100.0 * self.done / self.total:.1f}%)"
        parts.append(f"{format_rate(self.rate)}/s")
        parts.append(f"elapsed {format_duration(self.elapsed_s)}")
        if not final and self.done < self.total:
            parts.append(f"ETA {format_duration(self.eta_s)}")
        text = self._postfix_text(", ", " ")
        return ", ".join(parts) + (f", {text}" if text else "")

    def _postfix_text(self, sep: str, kv: str) -> str:
        items: list[tuple[str, Any]] = []
        if self._outcomes:
            items += [("success", self.successes), ("errors", self.errors)]
        items += list(self.postfix.items())
        return sep.join(f"{k}{kv}{_format_value(v)}" for k, v in items)

    def _line_key(self) -> tuple[Any, ...]:
        return (self.done, self.total, self.successes, self.errors, tuple(self.postfix.items()))

    def _show(self, n: int) -> None:
        if self.quiet or self._closed:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix_text(" ", "="), refresh=False)
            self._bar.update(n)
            return
        now = self._clock()
        if now - self._last_line_t >= self.interval_s:
            self._last_line_t = now
            self._emit(final=False)

    def _emit(self, final: bool) -> None:
        self._last_line_key = self._line_key()
        try:
            self._stream.write(self.line(final=final) + "\n")
            self._stream.flush()
        except (ValueError, OSError):  # a closed stream must not kill a long run
            pass
