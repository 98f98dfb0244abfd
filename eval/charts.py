"""Chart definitions from summary rows, independent of any plotting library, and a PNG renderer.

A :class:`Chart` is plain data: a kind (``bar``, ``stacked_bar``, ``scatter``, ``line``), axis
labels with units and a list of :class:`Series` (``x``, ``y`` and, where the rows carry one, the
95 % interval as absolute bounds ``low`` / ``high``). :func:`sweep_charts` builds the charts a
researcher opens first from the rows of :func:`rapid_env.eval.summary.summarize`; the HTML report
renders them with :func:`render_png` (matplotlib, Agg, no pyplot state), and the W&B logger builds
its own charts from the same definitions.

How cells are aggregated (each chart's title or axis label says which applies):

* Per-agent bars are grouped by noise x link; over tasks they show the **mean of the cell
  means**. The interval of that mean combines the cells' 95 % half-widths as independent
  estimates, ``sqrt(sum h_i^2) / k`` (the cell's own half-width when there is one task; none when
  a cell has no interval, e.g. one episode).
* Success is **pooled** over tasks: total successes / total episodes with the Wilson 95 %
  interval of the pooled counts (equal to the mean of the cell rates when cells have equal
  episodes); rows without ``successes`` / ``episodes`` fall back to the mean of the rates.
* Offloads per simulated second are total offloads over total simulated seconds over the tasks
  of a cell, rebuilt from the row means and counts
  (:func:`rapid_env.record_metrics.offload_rate_of_rows`, the one definition the report and
  ``benchmarks/compare_report.py`` use too).

A chart whose fields the rows lack (or hold only NaN/None for) is skipped; NaN and None values
are left out of means and never drawn.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rapid_env.eval.pooling import as_float
from rapid_env.eval.summary import wilson_interval
from rapid_env.record_metrics import offload_rate_of_rows

__all__ = [
    "Chart",
    "LATENCY_STAGES",
    "Series",
    "chart_size",
    "render_png",
    "sweep_charts",
]

ChartKind = Literal["bar", "stacked_bar", "scatter", "line"]


@dataclass(frozen=True)
class Series:
    """One labelled sequence of points, with an optional interval (absolute bounds)."""

    label: str
    """What the series is: an agent, a noise x link group, a latency stage."""
    x: list[str | float]
    """Categories (bar, stacked_bar, line over categories) or numbers (scatter, line)."""
    y: list[float]
    low: list[float] | None = None
    """Lower bounds of the interval, same length as ``y`` (NaN where a point has none), or None."""
    high: list[float] | None = None
    """Upper bounds of the interval, same length as ``y``, or None."""


@dataclass(frozen=True)
class Chart:
    """One chart: what to draw, independent of the library that draws it."""

    name: str
    """File name stem and W&B key, e.g. ``success_by_agent``."""
    title: str
    kind: ChartKind
    x_label: str
    y_label: str
    series: list[Series]


LATENCY_STAGES: tuple[tuple[str, str], ...] = (
    ("edge_ms_mean", "edge compute"),
    ("uplink_ms_mean", "uplink"),
    ("cloud_ms_mean", "cloud compute"),
    ("downlink_ms_mean", "downlink"),
)
"""The stages of one request's latency, in the order they happen, with their legend labels."""

Row = Mapping[str, Any]


# ------------------------------------------------------------------------------- reading rows
def _has(rows: Sequence[Row], key: str) -> bool:
    """True when at least one row holds a finite number under ``key``."""
    return any(math.isfinite(as_float(row.get(key))) for row in rows)


def _order(rows: Sequence[Row], key: str) -> list[str]:
    """Distinct values of a cell key in first-seen order (the sweep's order for sweep rows)."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.setdefault(str(row.get(key)), None)
    return list(seen)


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _mean(values: Sequence[float]) -> float:
    finite = _finite(values)
    return math.fsum(finite) / len(finite) if finite else math.nan


def _mean_with_interval(rows: Sequence[Row], key: str) -> tuple[float, float, float]:
    """Mean of the cell means of ``key`` and the combined 95 % bounds (NaN when unknown)."""
    pairs = [(as_float(r.get(key)), as_float(r.get(f"{key}_ci95"))) for r in rows]
    pairs = [(m, h) for m, h in pairs if math.isfinite(m)]
    if not pairs:
        return (math.nan, math.nan, math.nan)
    mean = math.fsum(m for m, _ in pairs) / len(pairs)
    halves = [h for _, h in pairs]
    if not all(math.isfinite(h) for h in halves):
        return (mean, math.nan, math.nan)
    half = math.sqrt(math.fsum(h * h for h in halves)) / len(halves)
    return (mean, mean - half, mean + half)


def _pooled_success(rows: Sequence[Row]) -> tuple[float, float, float]:
    """Success pooled over the rows with its Wilson 95 % interval (see the module docstring)."""
    counts = [(as_float(r.get("successes")), as_float(r.get("episodes"))) for r in rows]
    if rows and all(math.isfinite(k) and math.isfinite(n) and n > 0 for k, n in counts):
        k = int(sum(c[0] for c in counts))
        n = int(sum(c[1] for c in counts))
        if 0 <= k <= n:
            low, high = wilson_interval(k, n)
            return (k / n, low, high)
    rate = _mean([as_float(r.get("success_rate")) for r in rows])
    if len(rows) == 1:
        row = rows[0]
        return (rate, as_float(row.get("success_ci_low")), as_float(row.get("success_ci_high")))
    return (rate, math.nan, math.nan)


def _offload_rate(rows: Sequence[Row]) -> float:
    """Total offloads over total simulated seconds (:func:`offload_rate_of_rows`), NaN if none."""
    return as_float(offload_rate_of_rows(rows))


def _bounds(values: list[tuple[float, float, float]]) -> tuple[list[float] | None, ...]:
    """Split (y, low, high) triples; the bounds are None when no point has an interval."""
    low = [v[1] for v in values]
    high = [v[2] for v in values]
    if not any(math.isfinite(v) for v in low + high):
        return (None, None)
    return (low, high)


# ---------------------------------------------------------------------------- chart builders
class _Sweep:
    """The rows indexed by cell, with the sweep's orders and the wording of the aggregation."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = [r for r in rows if all(k in r for k in ("task", "agent", "noise", "link"))]
        self.tasks = _order(self.rows, "task")
        self.agents = _order(self.rows, "agent")
        self.noises = _order(self.rows, "noise")
        self.links = _order(self.rows, "link")

    def select(self, **where: str) -> list[Row]:
        return [r for r in self.rows if all(str(r.get(k)) == v for k, v in where.items())]

    @property
    def over_tasks(self) -> str:
        """How a per-agent value was aggregated over tasks, for a title."""
        if len(self.tasks) == 1:
            return f"task {self.tasks[0]}"
        return f"mean of cell means over {len(self.tasks)} tasks"

    def groups(self) -> list[tuple[str, str, str]]:
        """(noise, link, label) for every noise x link that has rows, in sweep order."""
        out = []
        for link in self.links:
            for noise in self.noises:
                if not self.select(noise=noise, link=link):
                    continue
                if len(self.links) == 1:
                    label = noise
                elif len(self.noises) == 1:
                    label = link
                else:
                    label = f"{noise} · {link}"
                out.append((noise, link, label))
        return out

    def per_agent_bars(
        self, aggregate: Callable[[Sequence[Row]], tuple[float, float, float]]
    ) -> list[Series]:
        """One series per noise x link group, x = agents, y and bounds from ``aggregate``."""
        series = []
        for noise, link, label in self.groups():
            values = [aggregate(self.select(agent=a, noise=noise, link=link)) for a in self.agents]
            low, high = _bounds(values)
            x: list[str | float] = list(self.agents)
            series.append(Series(label, x, [v[0] for v in values], low, high))
        return series


def _metric_bar(sweep: _Sweep, key: str, name: str, what: str, y_label: str) -> Chart | None:
    if not _has(sweep.rows, key):
        return None
    return Chart(
        name=name,
        title=f"{what} by agent ({sweep.over_tasks}; bars: 95 % CI)",
        kind="bar",
        x_label="agent",
        y_label=y_label,
        series=sweep.per_agent_bars(lambda rs: _mean_with_interval(rs, key)),
    )


def _success_by_agent(sweep: _Sweep) -> Chart | None:
    if not _has(sweep.rows, "success_rate"):
        return None
    pooled = "" if len(sweep.tasks) == 1 else f"pooled over {len(sweep.tasks)} tasks; "
    where = f"task {sweep.tasks[0]}; " if len(sweep.tasks) == 1 else pooled
    return Chart(
        name="success_by_agent",
        title=f"Success rate by agent ({where}bars: Wilson 95 % CI)",
        kind="bar",
        x_label="agent",
        y_label="success rate (fraction of episodes)",
        series=sweep.per_agent_bars(_pooled_success),
    )


def _latency_breakdown(sweep: _Sweep) -> Chart | None:
    stages = [(key, label) for key, label in LATENCY_STAGES if _has(sweep.rows, key)]
    if not stages:
        return None
    by_link = len(sweep.links) > 1
    cats: list[tuple[str, list[Row]]] = []
    for agent in sweep.agents:
        for link in sweep.links if by_link else [None]:
            rows = sweep.select(agent=agent, link=link) if link else sweep.select(agent=agent)
            if rows:
                cats.append((f"{agent} · {link}" if link else agent, rows))
    x: list[str | float] = [c[0] for c in cats]
    series = [Series(label, x, [_mean([as_float(r.get(key)) for r in rows]) for _, rows in cats])
              for key, label in stages]
    over = "tasks and noises" if len(sweep.noises) > 1 else "tasks"
    if not by_link and len(sweep.links) == 1:
        over += f"; link {sweep.links[0]}"
    return Chart(
        name="latency_breakdown_by_agent",
        title=f"Latency of a request by stage (mean of cell means over {over})",
        kind="stacked_bar",
        x_label="agent · link" if by_link else "agent",
        y_label="mean latency per request (ms)",
        series=series,
    )


def _offload_rate_by_noise(sweep: _Sweep) -> list[Chart]:
    if not (_has(sweep.rows, "offloads") and _has(sweep.rows, "sim_time_s")):
        return []
    charts = []
    for link in sweep.links:
        series = []
        for agent in sweep.agents:
            x: list[str | float] = []
            y: list[float] = []
            for noise in sweep.noises:
                rows = sweep.select(agent=agent, noise=noise, link=link)
                if rows:
                    x.append(noise)
                    y.append(_offload_rate(rows))
            if x and any(math.isfinite(v) for v in y):
                series.append(Series(agent, x, y))
        if not series:
            continue
        suffix = "" if len(sweep.links) == 1 else f"__{_slug(link)}"
        pooled = "" if len(sweep.tasks) == 1 else f", pooled over {len(sweep.tasks)} tasks"
        charts.append(Chart(
            name=f"offload_rate_by_noise{suffix}",
            title=f"Offloads per simulated second against the noise (link {link}{pooled})",
            kind="line",
            x_label="noise (scene class / severity, sweep order)",
            y_label="offloads / simulated s (from cell means)",
            series=series,
        ))
    return charts


def _success_vs_latency(sweep: _Sweep) -> Chart | None:
    if not (_has(sweep.rows, "success_rate") and _has(sweep.rows, "latency_ms_mean")):
        return None
    series = []
    for agent in sweep.agents:
        points = [(as_float(r.get("latency_ms_mean")), as_float(r.get("success_rate")),
                   as_float(r.get("success_ci_low")), as_float(r.get("success_ci_high")))
                  for r in sweep.select(agent=agent)]
        points = [p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])]
        if not points:
            continue
        low, high = _bounds([(p[1], p[2], p[3]) for p in points])
        series.append(Series(agent, [p[0] for p in points], [p[1] for p in points], low, high))
    if not series:
        return None
    return Chart(
        name="success_vs_latency",
        title="Success against mean latency (one point per task x noise x link cell)",
        kind="scatter",
        x_label="mean chunk latency (ms)",
        y_label="success rate (Wilson 95 % CI)",
        series=series,
    )


def sweep_charts(rows: Sequence[Mapping[str, Any]]) -> list[Chart]:
    """The charts of a sweep from its summary rows, in the order a reader wants them.

    ``success_by_agent``, ``latency_breakdown_by_agent``, ``latency_p95_by_agent``,
    ``offload_rate_by_noise`` (one per link, ``offload_rate_by_noise__<link>``, when the sweep
    has several), ``rms_jerk_by_agent``, ``stalls_by_agent``, ``success_vs_latency``. Categories
    keep the rows' first-seen order (the sweep's order for rows of ``summarize``). A chart whose
    fields the rows lack is left out; rows may hold NaN or None anywhere.
    """
    sweep = _Sweep(rows)
    if not sweep.rows:
        return []
    candidates: list[Chart | None] = [
        _success_by_agent(sweep),
        _latency_breakdown(sweep),
        _metric_bar(sweep, "latency_ms_p95", "latency_p95_by_agent",
                    "95th-percentile chunk latency", "p95 chunk latency (ms)"),
        *_offload_rate_by_noise(sweep),
        _metric_bar(sweep, "rms_jerk", "rms_jerk_by_agent", "RMS jerk of the end effector",
                    "RMS jerk (m/s³)"),
        _metric_bar(sweep, "stall_steps", "stalls_by_agent", "Stall ticks per episode",
                    "stall ticks per episode (control ticks)"),
        _success_vs_latency(sweep),
    ]
    return [c for c in candidates if c is not None and c.series]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "link"


# --------------------------------------------------------------------------------- rendering
_COLORS = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB",
           "#000000", "#EE7733", "#009988", "#33BBEE", "#CC3311")
"""Paul Tol's bright scheme plus a few: distinguishable, also in grey print."""
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def _wrap(label: str, width: int = 16) -> str:
    """Break a long category label at ``(``, ``,`` and ``·`` (never inside a word).

    ``rapid(high_threshold=6,cooldown_s=0.1)`` becomes ``rapid(high_threshold=6,`` /
    ``cooldown_s=0.1)``; ``rapid · 5g-driving`` becomes ``rapid ·`` / ``5g-driving``.
    """
    if len(label) <= width:
        return label
    lines: list[str] = []
    for part in re.split(r"(?<=[(,·])", label):
        if lines and len(lines[-1]) + len(part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return "\n".join(line.strip() for line in lines if line.strip())


_CHAR_IN = 0.068
"""Width of an average 8 pt tick-label character, in inches (DejaVu Sans)."""
_MARGIN_IN = 0.8
"""Width the y axis' labels take beside the axes, in inches (for slot widths)."""
_LEGEND_ENTRY_IN = 1.7
"""Width of one legend entry in the legend under the axes, in inches."""


def _categories(chart: Chart) -> list[str]:
    seen: dict[str, None] = {}
    for s in chart.series:
        for x in s.x:
            seen.setdefault(str(x), None)
    return list(seen)


def chart_size(chart: Chart, width_in: float = 7.0, height_in: float = 4.0) -> tuple[float, float]:
    """A figure size that fits the chart: wider for many bars, taller for labels and legend.

    Bars get a slot of at least 0.45 in per category (up to 16 in wide); when the category
    labels do not fit their slot upright, :func:`render_png` slants them and the figure grows by
    the height they take; each legend row beyond the first adds its height.
    """
    if chart.kind in ("bar", "stacked_bar") or (chart.kind == "line" and not _numeric_x(chart)):
        cats = _categories(chart)
        if chart.kind != "line":
            per_cat = 0.35 if chart.kind == "stacked_bar" else 0.18 * max(1, len(chart.series))
            width_in = max(width_in, min(16.0, _MARGIN_IN + len(cats) * max(per_cat, 0.45)))
        if _slanted(cats, width_in):
            longest = max(len(line) for c in cats for line in _wrap(c, 26).split("\n"))
            height_in += min(1.5, max(0.0, longest * _CHAR_IN * 0.7 - 0.3))
    rows = math.ceil(len(chart.series) / _legend_columns(chart, width_in))
    return (width_in, height_in + 0.2 * max(0, rows - 1))


def _legend_columns(chart: Chart, width_in: float) -> int:
    return max(1, min(len(chart.series), int(width_in / _LEGEND_ENTRY_IN)))


def _slanted(cats: Sequence[str], width_in: float) -> bool:
    """True when the category labels do not fit their slots upright."""
    slot_in = (width_in - _MARGIN_IN) / max(1, len(cats))
    longest = max((len(line) for c in cats for line in _wrap(c).split("\n")), default=0)
    return longest * _CHAR_IN > slot_in * 0.95


def _err(s: Series, idx: int) -> tuple[float, float]:
    if s.low is None or s.high is None:
        return (0.0, 0.0)
    y, lo, hi = s.y[idx], as_float(s.low[idx]), as_float(s.high[idx])
    return (max(0.0, y - lo) if math.isfinite(lo) else 0.0,
            max(0.0, hi - y) if math.isfinite(hi) else 0.0)


def render_png(chart: Chart, width_in: float = 7.0, height_in: float = 4.0) -> bytes:
    """Draw a chart with matplotlib's Agg backend (no display, no pyplot state); PNG bytes.

    ``width_in`` x ``height_in`` is the smallest size: a chart with many bars or slanted labels
    grows to :func:`chart_size` so that nothing overlaps. 100 dpi.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width_in, height_in = chart_size(chart, width_in, height_in)
    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if chart.kind in ("bar", "stacked_bar") or (chart.kind == "line" and not _numeric_x(chart)):
        cats = _categories(chart)
        pos = {c: i for i, c in enumerate(cats)}
        if chart.kind == "bar":
            _draw_bars(ax, chart, pos)
        elif chart.kind == "stacked_bar":
            _draw_stacked(ax, chart, pos)
        else:
            _draw_lines(ax, chart, pos)
        # Upright when every label fits its slot; else at 45 degrees, where a slot of >= 0.45 in
        # (chart_size) leaves 0.32 in between neighbouring labels: room for two lines.
        crowded = _slanted(cats, fig.get_figwidth())
        labels = [_wrap(c, 26 if crowded else 16) for c in cats]
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(labels, rotation=45 if crowded else 0,
                           ha="right" if crowded else "center", rotation_mode="anchor",
                           fontsize=8)
        ax.set_xlim(-0.6, len(cats) - 0.4)
    else:
        _draw_numeric(ax, chart)
    # A figure title over the whole width; the legend goes under the axes.
    width_chars = int((fig.get_figwidth() - 0.3) / 0.085)
    fig.suptitle("\n".join(textwrap.wrap(chart.title, max(30, width_chars))), fontsize=10,
                 x=0.02, ha="left")
    ax.set_xlabel(chart.x_label, fontsize=9)
    ax.set_ylabel(chart.y_label, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if "success rate" in chart.y_label:
        ax.set_ylim(0, 1.05)
    elif chart.kind in ("bar", "stacked_bar"):
        ax.set_ylim(0, ax.get_ylim()[1] * 1.05)  # headroom above the tallest bar
    handles, _ = ax.get_legend_handles_labels()
    if handles and (len(chart.series) > 1 or chart.kind != "scatter"):
        fig.legend(loc="outside lower center", fontsize=8, frameon=False,
                   ncols=_legend_columns(chart, fig.get_figwidth()))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _numeric_x(chart: Chart) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool)
               for s in chart.series for x in s.x)


def _draw_bars(ax: Any, chart: Chart, pos: dict[str, int]) -> None:
    n = max(1, len(chart.series))
    width = 0.8 / n
    for i, s in enumerate(chart.series):
        xs, ys, errs = [], [], []
        for j, (x, y) in enumerate(zip(s.x, s.y, strict=True)):
            if math.isfinite(as_float(y)):
                xs.append(pos[str(x)] - 0.4 + width * (i + 0.5))
                ys.append(float(y))
                errs.append(_err(s, j))
        color = _COLORS[i % len(_COLORS)]
        ax.bar(xs, ys, width=width * 0.95, label=s.label, color=color)
        if s.low is not None and any(e != (0.0, 0.0) for e in errs):
            ax.errorbar(xs, ys, yerr=[[e[0] for e in errs], [e[1] for e in errs]], fmt="none",
                        ecolor="#333333", elinewidth=0.8, capsize=2)


def _draw_stacked(ax: Any, chart: Chart, pos: dict[str, int]) -> None:
    bottom = [0.0] * len(pos)
    for i, s in enumerate(chart.series):
        xs, ys, bs = [], [], []
        for x, y in zip(s.x, s.y, strict=True):
            value = as_float(y)
            if math.isfinite(value):
                k = pos[str(x)]
                xs.append(k)
                ys.append(value)
                bs.append(bottom[k])
                bottom[k] += value
        ax.bar(xs, ys, bottom=bs, width=0.7, label=s.label, color=_COLORS[i % len(_COLORS)])


def _draw_lines(ax: Any, chart: Chart, pos: dict[str, int]) -> None:
    for i, s in enumerate(chart.series):
        pts = [(pos[str(x)], as_float(y), j) for j, (x, y) in enumerate(zip(s.x, s.y, strict=True))]
        pts = [p for p in pts if math.isfinite(p[1])]
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=_MARKERS[i % len(_MARKERS)],
                color=_COLORS[i % len(_COLORS)], label=s.label, linewidth=1.5, markersize=5)
        if s.low is not None:
            errs = [_err(s, p[2]) for p in pts]
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts],
                        yerr=[[e[0] for e in errs], [e[1] for e in errs]], fmt="none",
                        ecolor=_COLORS[i % len(_COLORS)], elinewidth=0.8, capsize=2)
    ax.set_ylim(bottom=0)


_MAX_ERRORBAR_POINTS = 60
"""Above this many points a scatter draws no error bars: they would hide the points."""


def _draw_numeric(ax: Any, chart: Chart) -> None:
    n_points = sum(len(s.y) for s in chart.series)
    for i, s in enumerate(chart.series):
        pts = [(as_float(x), as_float(y), j) for j, (x, y) in enumerate(zip(s.x, s.y, strict=True))]
        pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
        if not pts:
            continue
        color, marker = _COLORS[i % len(_COLORS)], _MARKERS[i % len(_MARKERS)]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        if chart.kind == "line":
            order = sorted(range(len(xs)), key=xs.__getitem__)
            xs, ys = [xs[k] for k in order], [ys[k] for k in order]
            pts = [pts[k] for k in order]
            ax.plot(xs, ys, marker=marker, color=color, label=s.label, linewidth=1.5)
        else:
            ax.scatter(xs, ys, marker=marker, color=color, label=s.label, s=28, alpha=0.85,
                       zorder=3)
        if s.low is not None and n_points <= _MAX_ERRORBAR_POINTS:
            errs = [_err(s, p[2]) for p in pts]
            ax.errorbar(xs, ys, yerr=[[e[0] for e in errs], [e[1] for e in errs]], fmt="none",
                        ecolor=color, elinewidth=0.7, alpha=0.45, capsize=2)
