"""Bandwidth traces and RTT samples: loaders, validation and the piecewise-constant rate model.

A :class:`BandwidthTrace` is a piecewise-constant rate over one period ``[0, duration)``. The link
asks it one question, "``bits`` are ready at trace time ``tau``: when has the last bit left?", and
answers it in closed form from the cumulative-bits curve (a bisection into a Python list, no
per-packet loop), so a transfer that spans rate changes and outages takes exactly the right time.

Formats (see ``docs/network.md``):

* **TSV** ``time_s throughput_Mbps`` (whitespace separated): each row's throughput is what the link
  delivered over the interval that *ends* at that row; a row at time 0 covers nothing.
* **mahimahi** packet-delivery traces: one integer millisecond per line, one 1500-byte delivery
  opportunity at that time; a millisecond with no line delivers nothing (an outage). The trace
  repeats after its last timestamp, as mahimahi's ``mm-link`` does.
* **5Gophers** throughput CSVs: ``seq_num`` (one row per second) and either ``throughput_mbps``
  (optionally filtered by ``radio_type``) or one ``<Carrier>_throughput_mbps`` column per carrier.
  Rows are taken as consecutive seconds; missing ``seq_num`` values (gaps in the car traces) and
  the seams between filtered segments are closed up.
* **RTT samples**: 5Gophers ``ping-trace-*.log`` (``rtt_in_ms``, ``network_type``,
  ``target_server``) and ``round-trip-times.csv`` (``rtt_ms``, ``carrier``, ``server_location``).

Bad input (missing file, non-numeric, out-of-range or non-monotonic timestamps, negative
bandwidth, an empty or all-zero trace) raises :class:`ValueError` naming the file and the line
*number*. The messages never quote the file's text: a spec such as ``trace:/etc/shadow`` must not
print a line of a file that is not a trace.

A trace that loads but is almost surely a unit mistake (it spans more than a year, its mean rate
is below 1 kbit/s or above 1 Tbit/s, or an episode on it would on average get less than one
packet) is not an error, but :func:`warn_if_implausible` warns with a :class:`TraceWarning`
naming the trace, its span and its mean rate: run as it is, such a trace is a dead link whose
episodes stall from start to end with no other sign of why.
"""

from __future__ import annotations

import csv
import math
import os
import stat
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

MTU_BYTES = 1500
MAX_VALUE = 1e15
"""Largest number a trace file may hold (in its own unit: s, ms, Mbit/s): far beyond any real
trace, and small enough that sums and int64 milliseconds stay exact and finite."""
YEAR_S = 365.25 * 86400.0
MAX_PLAUSIBLE_SPAN_S = YEAR_S
"""A longer trace is almost surely in the wrong unit (e.g. microseconds read as milliseconds)."""
PLAUSIBLE_BPS = (1e3, 1e12)
"""Mean rates outside 1 kbit/s .. 1 Tbit/s are almost surely a unit mistake."""
TRACE_DIR = Path(__file__).resolve().parent.parent / "data" / "traces"  # rapid_env/data/traces
CARRIERS_5G = ("Sprint", "TMobile", "Verizon")


def bundled(name: str) -> Path:
    """Path of a trace bundled with the package (``rapid_env/data/traces/<name>``)."""
    path = TRACE_DIR / name
    if not path.is_file():
        have = sorted(str(p.relative_to(TRACE_DIR)) for p in TRACE_DIR.rglob("*") if p.is_file())
        raise ValueError(f"no bundled trace {name!r}; allowed: {', '.join(have)}")
    return path


@dataclass(frozen=True)
class BandwidthTrace:
    """A piecewise-constant rate, ``rates_bps[i]`` over ``[times_s[i], times_s[i + 1])``.

    Attributes:
        times_s: segment boundaries, ``times_s[0] == 0``, strictly increasing; the last is the
            period (duration).
        rates_bps: one rate per segment (>= 0; zero is an outage).
        name: where the trace came from (file name), for messages and records.
    """

    times_s: tuple[float, ...]
    rates_bps: tuple[float, ...]
    name: str = "trace"
    _cum: list[float] = field(init=False, repr=False, compare=False)
    _t: list[float] = field(init=False, repr=False, compare=False)
    _r: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        t = [float(x) for x in self.times_s]
        r = [float(x) for x in self.rates_bps]
        if len(t) != len(r) + 1 or not r:
            raise ValueError(
                f"{self.name}: need n+1 boundaries for n >= 1 rates, got {len(t)} and {len(r)}"
            )
        if t[0] != 0.0 or any(b <= a for a, b in zip(t, t[1:], strict=False)):
            raise ValueError(f"{self.name}: boundaries must start at 0 and strictly increase")
        if not all(math.isfinite(x) and x >= 0 for x in r):
            raise ValueError(f"{self.name}: rates must be finite and >= 0")
        cum = [0.0]
        for i, rate in enumerate(r):
            cum.append(cum[-1] + rate * (t[i + 1] - t[i]))
        if cum[-1] <= 0:
            raise ValueError(f"{self.name}: bandwidth is zero throughout; nothing can be sent")
        object.__setattr__(self, "_t", t)
        object.__setattr__(self, "_r", r)
        object.__setattr__(self, "_cum", cum)

    # ------------------------------------------------------------------ construction
    @classmethod
    def constant(cls, rate_bps: float, name: str = "constant") -> BandwidthTrace:
        """A one-segment trace (period 1 s; the period of a constant rate does not matter)."""
        return cls((0.0, 1.0), (float(rate_bps),), name)

    @classmethod
    def from_samples(
        cls, end_times_s: Sequence[float], rates_bps: Sequence[float], name: str = "trace"
    ) -> BandwidthTrace:
        """Build from rows whose rate covers the interval *ending* at the row's time.

        The first row covers ``[0, t_0]`` (nothing when ``t_0 == 0``, the usual case).
        """
        times = [0.0]
        rates: list[float] = []
        for t, r in zip(end_times_s, rates_bps, strict=True):
            if t == 0.0 and not rates and times == [0.0]:
                continue  # a first row at t=0 measured an empty interval
            times.append(float(t))
            rates.append(float(r))
        if not rates:
            raise ValueError(f"{name}: trace has no interval of positive length")
        return cls(tuple(times), tuple(rates), name)

    def scaled(self, factor: float) -> BandwidthTrace:
        """The same trace with every rate multiplied by ``factor`` (> 0)."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"scale must be a finite number > 0, got {factor!r}")
        if factor == 1.0:
            return self
        return BandwidthTrace(
            self.times_s, tuple(r * factor for r in self._r), f"{self.name}*{factor:g}"
        )

    # ------------------------------------------------------------------ queries
    @property
    def duration_s(self) -> float:
        """The period."""
        return self._t[-1]

    @property
    def bits_per_period(self) -> float:
        """Bits the trace delivers in one period."""
        return self._cum[-1]

    @property
    def mean_bps(self) -> float:
        """Time-averaged rate (what a static planner would be configured with)."""
        return self._cum[-1] / self._t[-1]

    def rate_at(self, tau: float, loop: bool = True) -> float:
        """The rate at trace time ``tau`` (0 past the end when not looping)."""
        if tau < 0:
            raise ValueError(f"trace time must be >= 0, got {tau}")
        if loop:
            tau = tau % self._t[-1]
        elif tau >= self._t[-1]:
            return 0.0
        return self._r[bisect_right(self._t, tau) - 1]

    def bits_until(self, tau: float, loop: bool = True) -> float:
        """Cumulative bits deliverable from trace time 0 to ``tau``."""
        t, cum = self._t, self._cum
        period = t[-1]
        k = 0.0
        if tau >= period:
            if not loop:
                return cum[-1]
            k, tau = divmod(tau, period)
        i = bisect_right(t, tau) - 1
        if i >= len(self._r):
            i = len(self._r) - 1
        return k * cum[-1] + cum[i] + self._r[i] * (tau - t[i])

    def finish_time(self, tau: float, bits: float, loop: bool = True) -> float:
        """Earliest trace time by which ``bits`` ready at ``tau`` have all been serialised.

        Closed form: invert the cumulative curve with a bisection. Zero-rate stretches (outages)
        are waited out; without looping, bits left at the end of the trace never finish (inf).
        """
        if bits <= 0:
            return tau
        t, cum, r = self._t, self._cum, self._r
        per_period = cum[-1]
        target = self.bits_until(tau, loop) + bits
        k = 0.0
        if loop:
            k, rem = divmod(target, per_period)
            if rem <= 0.0:  # exactly at a period boundary: finish at the previous period's end
                k -= 1.0
                rem = per_period
        else:
            if target > per_period:
                return math.inf
            rem = target
        i = bisect_left(cum, rem)  # cum[i-1] < rem <= cum[i], so segment i-1 has a rate > 0
        seg = i - 1
        return k * t[-1] + t[seg] + (rem - cum[seg]) / r[seg]


# ---------------------------------------------------------------------- plausibility
class TraceWarning(UserWarning):
    """A trace that loads but is almost surely not what its author meant (a unit mistake).

    A category of its own, so that a user can silence it or make it an error
    (``warnings.simplefilter("error", TraceWarning)``).
    """


def _span(seconds: float) -> str:
    if seconds >= YEAR_S:
        return f"{seconds / YEAR_S:.3g} years"
    if seconds >= 86400.0:
        return f"{seconds / 86400.0:.3g} days"
    return f"{seconds:.6g} s"


def _rate(bps: float) -> str:
    for unit, scale in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.3g} {unit}"
    return f"{bps:.3g} bit/s"


def implausibility(trace: BandwidthTrace, episode_s: float | None = None) -> str | None:
    """Why ``trace`` is almost surely a unit mistake, in a few words; None when it looks sane.

    Args:
        trace: the trace as the link will use it (scaled).
        episode_s: the episode length the link serves, if known: a trace that delivers on
            average less than one packet in that long is a dead link for the episode. Said only
            when the trace itself looks sane, so that a trace gets the same words with and
            without an episode length (and is warned about once).
    """
    reasons = []
    if trace.duration_s > MAX_PLAUSIBLE_SPAN_S:
        reasons.append("more than a year")
    low, high = PLAUSIBLE_BPS
    if not low <= trace.mean_bps <= high:
        reasons.append(f"a mean rate outside {_rate(low)} .. {_rate(high)}")
    if not reasons and episode_s is not None and trace.mean_bps * episode_s < MTU_BYTES * 8:
        reasons.append(f"less than one {MTU_BYTES}-byte packet per {episode_s:g} s episode")
    return "; ".join(reasons) or None


_warned: set[str] = set()
"""Sources warned about in this process. Python's own once-per-location filter is not enough:
every ``warnings.catch_warnings`` block (the scripted experts have one) resets it."""


def warn_if_implausible(
    trace: BandwidthTrace, source: str, episode_s: float | None = None
) -> str | None:
    """Warn (:class:`TraceWarning`) when ``trace`` looks like a unit mistake; return the message.

    The one line names ``source`` (the file or link spec), the trace's span and mean rate, and
    why. The trace is used anyway (it is valid); without this line its episodes would only show
    up as stalls. Once per ``source`` and process, however many episodes build the link. None
    when the trace looks sane or was warned about already.
    """
    why = implausibility(trace, episode_s)
    if why is None or source in _warned:
        return None
    _warned.add(source)
    message = (
        f"trace {source!r} spans {_span(trace.duration_s)} at a mean rate of "
        f"{_rate(trace.mean_bps)} ({why}): almost surely a unit mistake; check the file's time "
        "and rate units"
    )
    warnings.warn(message, TraceWarning, stacklevel=2)
    return message


# ---------------------------------------------------------------------- file loaders
MAX_TRACE_BYTES = 256 * 2**20
"""Largest trace file read (256 MiB, far above any published trace): a bound on memory."""


def check_trace_file(path: str | Path) -> os.stat_result:
    """Stat ``path`` and refuse anything but a regular file, saying what it is instead.

    Only ``os.stat``: nothing is opened, so a FIFO (which would block) or ``/dev/zero`` (which
    never ends) is refused before a read, and a directory is not reported as missing.

    Raises:
        ValueError: one line naming the path: missing, a directory, or not a regular file.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"trace file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ValueError(f"trace file {str(path)!r} cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"trace file {str(path)!r} is a directory; give a trace file in it")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"trace file {str(path)!r} is not a regular file (a device, FIFO or "
                         "socket); give a trace file")
    return st


def _read_lines(path: Path) -> list[str]:
    size = check_trace_file(path).st_size
    if size > MAX_TRACE_BYTES:
        raise ValueError(
            f"trace file {str(path)!r} is {size / 2**20:.0f} MiB; allowed: at most "
            f"{MAX_TRACE_BYTES // 2**20} MiB"
        )
    try:
        return path.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"trace file {str(path)!r} is not text ({exc.reason})") from None


def _num(path: Path, lineno: int, token: str, what: str) -> float:
    """The number in ``token``; the error names the line, never the token (file content)."""
    try:
        x = float(token)
    except ValueError:
        raise ValueError(f"{path}: line {lineno}: {what} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{path}: line {lineno}: {what} is not finite")
    if abs(x) > MAX_VALUE:
        raise ValueError(
            f"{path}: line {lineno}: {what} out of range; allowed: at most {MAX_VALUE:g}"
        )
    return x


def load_tsv(path: str | Path) -> BandwidthTrace:
    """Load a ``time_s throughput_Mbps`` trace (Pensieve / MERINA pre-processing)."""
    path = Path(path)
    times: list[float] = []
    rates: list[float] = []
    last_line = 0
    for lineno, line in enumerate(_read_lines(path), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) != 2:
            raise ValueError(
                f"{path}: line {lineno}: expected 2 columns 'time_s throughput_Mbps', "
                f"got {len(tokens)}"
            )
        t = _num(path, lineno, tokens[0], "time")
        mbps = _num(path, lineno, tokens[1], "throughput")
        if t < 0:
            raise ValueError(f"{path}: line {lineno}: time is negative")
        if times and t <= times[-1]:
            raise ValueError(
                f"{path}: line {lineno}: time is not after the previous row's (line "
                f"{last_line}); timestamps must increase"
            )
        if mbps < 0:
            raise ValueError(f"{path}: line {lineno}: bandwidth is negative")
        times.append(t)
        rates.append(mbps * 1e6)
        last_line = lineno
    if not times:
        raise ValueError(f"{path}: empty trace (no data rows)")
    try:
        return BandwidthTrace.from_samples(times, rates, path.name)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_mahimahi(path: str | Path) -> BandwidthTrace:
    """Load a mahimahi packet-delivery trace (one 1500-byte opportunity per line, in ms).

    A packet at millisecond ``m`` is delivered during ``[m - 1, m)`` (``[0, 1)`` for ``m = 0``);
    milliseconds without a line deliver nothing. The period is the last timestamp.
    """
    path = Path(path)
    stamps: list[int] = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        tok = line.strip()
        if not tok:
            continue
        try:
            ms = int(tok)
        except ValueError:  # also a number of more digits than int() reads
            raise ValueError(
                f"{path}: line {lineno}: timestamp is not an integer number of milliseconds"
            ) from None
        if ms < 0:
            raise ValueError(f"{path}: line {lineno}: timestamp is negative")
        if ms > MAX_VALUE:
            raise ValueError(
                f"{path}: line {lineno}: timestamp out of range; allowed: at most "
                f"{MAX_VALUE:g} ms"
            )
        if stamps and ms < stamps[-1]:
            raise ValueError(
                f"{path}: line {lineno}: timestamp is before the previous line's; timestamps "
                "must not decrease"
            )
        stamps.append(ms)
    if not stamps:
        raise ValueError(f"{path}: empty trace (no timestamps)")
    period_ms = max(stamps[-1], 1)
    # Sparse: one segment per millisecond that delivers, zero-rate gaps between them, so memory
    # follows the number of lines, never the span (a lone line "10000000000000" is 317 years).
    slots, counts = np.unique(np.maximum(np.asarray(stamps, dtype=np.int64) - 1, 0),
                              return_counts=True)
    edges = np.stack([slots, slots + 1], axis=1).ravel()
    levels = np.stack([counts * MTU_BYTES * 8 * 1000.0, np.zeros(len(slots))], axis=1).ravel()
    if slots[0] > 0:  # nothing delivered before the first packet's millisecond
        edges, levels = np.concatenate(([0], edges)), np.concatenate(([0.0], levels))
    # drop empty gaps (a packet in the very next millisecond) and what starts at the period's end
    following = np.append(edges[1:], period_ms)
    keep = (edges < following) & (edges < period_ms)
    edges, levels = edges[keep], levels[keep]
    # merge runs of equal rate so the bisection list stays short
    change = np.flatnonzero(np.diff(levels)) + 1
    starts = np.concatenate(([0], change))
    bounds = np.concatenate((edges[starts], [period_ms])) / 1000.0
    return BandwidthTrace(tuple(bounds.tolist()), tuple(levels[starts].tolist()), path.name)


def _csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    lines = _read_lines(path)
    if not lines or not lines[0].strip():
        raise ValueError(f"{path}: empty file (no header)")
    reader = csv.DictReader(lines)
    header = list(reader.fieldnames or [])
    rows = [
        (reader.line_num, row)
        for row in reader
        if any(str(v or "").strip() for v in row.values())  # skip blank lines
    ]
    if not rows:
        raise ValueError(f"{path}: empty trace (header only)")
    return header, rows


def load_5gophers(
    path: str | Path, carrier: str | None = None, radio: str | None = None
) -> BandwidthTrace:
    """Load a 5Gophers per-second throughput CSV.

    Args:
        path: the CSV file.
        carrier: for files with one ``<Carrier>_throughput_mbps`` column per carrier (the car
            traces): which one (``Sprint``, ``TMobile``, ``Verizon``).
        radio: for files with a ``radio_type`` column (the walking trace): keep only rows of this
            radio (``4G`` / ``5G``); the kept segments are joined.
    """
    path = Path(path)
    header, rows = _csv_rows(path)
    if "seq_num" not in header:
        raise ValueError(f"{path}: not a 5Gophers throughput CSV (no seq_num column)")
    carriers = [h[: -len("_throughput_mbps")] for h in header if h.endswith("_throughput_mbps")]
    if "throughput_mbps" in header:
        if carrier is not None:
            raise ValueError(f"{path}: has one throughput column; carrier={carrier!r} not allowed")
        column = "throughput_mbps"
    elif carriers:
        if carrier not in carriers:
            raise ValueError(
                f"{path}: carrier={carrier!r}; allowed: {', '.join(carriers)}"
            )
        column = f"{carrier}_throughput_mbps"
    else:
        raise ValueError(f"{path}: no throughput column (throughput_mbps or <Carrier>_...)")
    if radio is not None and "radio_type" not in header:
        raise ValueError(f"{path}: radio={radio!r} given but the file has no radio_type column")
    rates: list[float] = []
    last_seq = -math.inf
    radios_seen: set[str] = set()
    for lineno, row in rows:
        seq = _num(path, lineno, row.get("seq_num") or "", "seq_num")
        if seq <= last_seq:
            raise ValueError(
                f"{path}: line {lineno}: seq_num is not after the previous row's; it must increase"
            )
        last_seq = seq
        mbps = _num(path, lineno, (row.get(column) or "").strip(), column)
        if mbps < 0:
            raise ValueError(f"{path}: line {lineno}: bandwidth is negative")
        if radio is not None:
            radios_seen.add(row["radio_type"])
            if row["radio_type"] != radio:
                continue
        rates.append(mbps * 1e6)
    if not rates:
        raise ValueError(
            f"{path}: no rows with radio_type={radio!r}; present: {', '.join(sorted(radios_seen))}"
        )
    name = path.name + (f"[{carrier}]" if carrier else "") + (f"[{radio}]" if radio else "")
    return BandwidthTrace(tuple(float(i) for i in range(len(rates) + 1)), tuple(rates), name)


def load_rtt_samples(path: str | Path, **filters: str) -> np.ndarray:
    """RTT samples in seconds from a 5Gophers ping log or ``round-trip-times.csv``.

    ``filters`` keep rows whose column equals the value, e.g.
    ``load_rtt_samples(p, carrier="VERIZON", server_location="US-East")``.
    """
    path = Path(path)
    header, rows = _csv_rows(path)
    column = next((c for c in ("rtt_in_ms", "rtt_ms") if c in header), None)
    if column is None:
        raise ValueError(f"{path}: no RTT column; expected rtt_in_ms or rtt_ms")
    for key in filters:
        if key not in header:
            raise ValueError(f"{path}: filter column {key!r}; allowed: {', '.join(header)}")
    out: list[float] = []
    for lineno, row in rows:
        if any(row[k] != v for k, v in filters.items()):
            continue
        ms = _num(path, lineno, (row[column] or "").strip(), column)
        if ms <= 0:
            raise ValueError(f"{path}: line {lineno}: RTT must be > 0 ms")
        out.append(ms / 1e3)
    if not out:
        raise ValueError(f"{path}: no RTT samples match {filters}")
    return np.asarray(out)


def sniff_format(path: str | Path) -> str:
    """Guess a bandwidth trace's format: ``tsv``, ``mahimahi`` or ``5gophers``."""
    path = Path(path)
    lines = [ln for ln in _read_lines(path) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: empty trace")
    first = lines[0]
    if "," in first:
        if "rtt_in_ms" in first or "rtt_ms" in first:
            raise ValueError(f"{path}: is an RTT log, not a bandwidth trace")
        return "5gophers"
    if len(first.split()) == 1:
        return "mahimahi"
    return "tsv"


@lru_cache(maxsize=64)
def _load_cached(
    path: str, stamp: tuple[int, int], fmt: str, carrier: str | None, radio: str | None
) -> BandwidthTrace:
    # ``stamp`` (mtime, size) is only part of the key, so an edited file is re-read.
    if fmt == "tsv":
        return load_tsv(path)
    if fmt == "mahimahi":
        return load_mahimahi(path)
    return load_5gophers(path, carrier=carrier, radio=radio)


def load_trace(
    path: str | Path, fmt: str | None = None, carrier: str | None = None, radio: str | None = None
) -> BandwidthTrace:
    """Load a bandwidth trace of any supported format (cached: traces are immutable)."""
    formats = ("tsv", "mahimahi", "5gophers")
    check_trace_file(path)  # before sniffing: nothing is read from a FIFO or a device
    if fmt is None:
        fmt = sniff_format(path)
    if fmt not in formats:
        raise ValueError(f"trace format {fmt!r}; allowed: {', '.join(formats)}")
    p = Path(path)
    st = check_trace_file(p)
    return _load_cached(str(p.resolve()), (st.st_mtime_ns, st.st_size), fmt, carrier, radio)
