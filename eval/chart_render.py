"""Drawing a :class:`~rapid_env.eval.charts.Chart` to PNG bytes with matplotlib (Agg, no pyplot).

The chart definitions (:mod:`rapid_env.eval.charts`) decide what is drawn and in which colour;
this module decides how: figure size, bar positions, hatches, legends, panels, and three
readability rules the definitions cannot know about:

* a bar of height 0 gets a short line at 0 in its colour and the label ``0``, so "nothing" is
  told apart from "not measured" (which draws nothing);
* points of a scatter that coincide (same latency and success, e.g. two agents that never
  offload differently on a task) are spread apart horizontally by a small fixed step, in series
  order, so none hides another; the chart's title says so;
* a chart whose series name a ``facet`` is drawn as small multiples, one panel per facet, with
  shared axes.

matplotlib loads only inside :func:`render_png`, so importing this module is cheap.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rapid_env.eval.pooling import as_float

if TYPE_CHECKING:
    from rapid_env.eval.charts import Chart, Series

__all__ = ["PALETTE", "chart_size", "render_png"]

PALETTE: tuple[str, ...] = (
    "#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB",
    "#000000", "#EE7733", "#009988", "#33BBEE", "#CC3311",
)
"""Paul Tol's bright scheme plus a few: distinguishable, also in grey print."""
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
_EDGE = "#333333"
_STAGE_TINT = (0.0, 0.3, 0.55, 0.75, 0.85)
"""How much white is mixed into the agent's colour for each stacked stage (hatch tells too)."""

_CHAR_IN = 0.068
"""Width of an average 8 pt tick-label character, in inches (DejaVu Sans)."""
_MARGIN_IN = 0.8
"""Width the y axis' labels take beside the axes, in inches (for slot widths)."""
_LEGEND_ENTRY_IN = 1.7
"""Width of one legend entry in the legend under the axes, in inches."""
_MAX_ERRORBAR_POINTS = 60
"""Above this many points a scatter draws no error bars: they would hide the points."""


# ------------------------------------------------------------------------------------ layout
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


def _categories(chart: Chart) -> list[str]:
    seen: dict[str, None] = {}
    for s in chart.series:
        for x in s.x:
            seen.setdefault(str(x), None)
    return list(seen)


def _facets(chart: Chart) -> list[str]:
    return list(dict.fromkeys(s.facet for s in chart.series if s.facet is not None))


def _grid(n: int) -> tuple[int, int]:
    """(rows, columns) of the panels: at most four across."""
    cols = min(4, max(1, n))
    return (math.ceil(n / cols), cols)


def _numeric_x(chart: Chart) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool)
               for s in chart.series for x in s.x)


def _categorical(chart: Chart) -> bool:
    return chart.kind in ("bar", "stacked_bar") or (chart.kind == "line"
                                                    and not _numeric_x(chart))


def chart_size(chart: Chart, width_in: float = 7.0, height_in: float = 4.0) -> tuple[float, float]:
    """A figure size that fits the chart: wider for many bars, taller for labels and legend.

    Bars get a slot of at least 0.45 in per category (up to 16 in wide); when the category
    labels do not fit their slot upright, :func:`render_png` slants them and the figure grows by
    the height they take; each legend row beyond the first adds its height. A heatmap gets about
    1 in per column and 0.45 in per row, small multiples about 2.9 x 2.4 in per panel.
    """
    if chart.kind == "heatmap":
        cols, rows = len(chart.series), len(_categories(chart))
        longest = max((len(line) for s in chart.series for line in _wrap(s.label).split("\n")),
                      default=0)
        per_col = max(1.1, 0.25 + longest * _CHAR_IN * 1.1)  # bold labels are wider
        return (max(width_in, min(16.0, 2.4 + per_col * cols)), max(height_in, 1.6 + 0.45 * rows))
    facets = _facets(chart)
    if len(facets) > 1:
        rows, cols = _grid(len(facets))
        width_in, height_in = max(width_in, 0.8 + 2.9 * cols), max(height_in, 1.6 + 2.4 * rows)
    elif _categorical(chart):
        cats = _categories(chart)
        if chart.kind != "line":
            per_cat = 0.35 if chart.kind == "stacked_bar" else 0.18 * max(1, len(chart.series))
            width_in = max(width_in, min(16.0, _MARGIN_IN + len(cats) * max(per_cat, 0.45)))
        if _slanted(cats, width_in):
            longest = max(len(line) for c in cats for line in _wrap(c, 26).split("\n"))
            height_in += min(1.5, max(0.0, longest * _CHAR_IN * 0.7 - 0.3))
    entries = _legend_entries(chart)
    rows_needed = math.ceil(len(entries) / _legend_columns(entries, width_in)) if entries else 0
    return (width_in, height_in + 0.2 * max(0, rows_needed - 1))


def _legend_columns(handles: Sequence[Any], width_in: float) -> int:
    """As many legend columns as the longest entry leaves room for."""
    longest = max((len(str(h.get_label())) for h in handles), default=0)
    entry_in = max(_LEGEND_ENTRY_IN, 0.5 + longest * _CHAR_IN)
    return max(1, min(len(handles), int(width_in / entry_in)))


def _slanted(cats: Sequence[str], width_in: float) -> bool:
    """True when the category labels do not fit their slots upright."""
    slot_in = (width_in - _MARGIN_IN) / max(1, len(cats))
    longest = max((len(line) for c in cats for line in _wrap(c).split("\n")), default=0)
    return longest * _CHAR_IN > slot_in * 0.95


# ------------------------------------------------------------------------------- the figure
def render_png(chart: Chart, width_in: float = 7.0, height_in: float = 4.0) -> bytes:
    """Draw a chart with matplotlib's Agg backend (no display, no pyplot state); PNG bytes.

    ``width_in`` x ``height_in`` is the smallest size: a chart with many bars, panels or slanted
    labels grows to :func:`chart_size` so that nothing overlaps. 100 dpi.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width_in, height_in = chart_size(chart, width_in, height_in)
    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    facets = _facets(chart)
    if chart.kind == "heatmap":
        _draw_heatmap(fig, fig.add_subplot(), chart)
    elif len(facets) > 1:
        _draw_facets(fig, chart, facets)
    else:
        ax = fig.add_subplot()
        if _categorical(chart):
            _draw_categorical(fig, ax, chart)
        else:
            _draw_points(ax, chart.series, chart.kind)
            _pad_flat_x(ax, chart)
        _style_axes(ax, chart, chart.x_label, chart.y_label)
    width_chars = int((fig.get_figwidth() - 0.3) / 0.085)
    fig.suptitle("\n".join(textwrap.wrap(chart.title, max(30, width_chars))), fontsize=10,
                 x=0.02, ha="left")
    entries = _legend_entries(chart)
    if entries:
        fig.legend(handles=entries, loc="outside lower center", fontsize=8, frameon=False,
                   ncols=_legend_columns(entries, fig.get_figwidth()))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _style_axes(ax: Any, chart: Chart, x_label: str, y_label: str) -> None:
    ax.set_xlabel(x_label, fontsize=9)
    ax.set_ylabel(y_label, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if "success rate" in chart.y_label:
        ax.set_ylim(0, 1.05)
    elif chart.kind in ("bar", "stacked_bar"):
        ax.set_ylim(0, ax.get_ylim()[1] * 1.05)  # headroom above the tallest bar


def _color(s: Series, i: int, j: int | None = None) -> str:
    """A point's colour: its own, else the series', else the palette's by series index."""
    if j is not None and s.colors is not None and j < len(s.colors):
        return s.colors[j]
    return s.color or PALETTE[i % len(PALETTE)]


def _legend_entries(chart: Chart) -> list[Any]:
    """Legend handles: agents by colour (lines, points), groups and stages by hatch or marker.

    Bars need no colour legend: their categories are the agents, named under each bar.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if chart.kind == "heatmap":
        return []
    handles: list[Any] = []
    if chart.kind in ("line", "scatter"):
        agents = dict(chart.palette) or {s.label: _color(s, i)
                                         for i, s in enumerate(chart.series)}
        markers = {s.label: s.marker for s in chart.series} if chart.kind == "line" else {}
        handles += [Line2D([], [], color=c, marker=markers.get(a) or "o", markersize=6,
                           linestyle="-" if chart.kind == "line" else "none", label=a)
                    for a, c in agents.items()]
        groups = {s.group: s.marker for s in chart.series if s.group is not None}
        if len(groups) > 1:
            handles += [Line2D([], [], color="#555555", marker=m or "o", linestyle="none",
                               label=g) for g, m in groups.items()]
    elif chart.kind == "bar" and len(chart.series) > 1:
        handles += [Patch(facecolor="#f2f2f2", edgecolor=_EDGE, hatch=s.hatch or "",
                          label=s.label) for s in chart.series]
    elif chart.kind == "stacked_bar":
        handles += [Patch(facecolor=_tint("#777777", i), edgecolor=_EDGE, hatch=s.hatch or "",
                          label=s.label) for i, s in enumerate(chart.series)]
    if len(handles) == 1 and chart.kind == "scatter":
        return []
    return handles


def _tint(color: str, stage: int) -> tuple[float, float, float]:
    """``color`` mixed with white for the ``stage``-th stacked segment."""
    from matplotlib.colors import to_rgb

    k = _STAGE_TINT[min(stage, len(_STAGE_TINT) - 1)]
    r, g, b = to_rgb(color)
    return (r + (1 - r) * k, g + (1 - g) * k, b + (1 - b) * k)


def _shade(color: str) -> tuple[float, float, float]:
    """``color`` mixed with 35 % black: text in a light agent colour stays readable."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return (r * 0.65, g * 0.65, b * 0.65)


# ----------------------------------------------------------------------------- categorical
def _draw_categorical(fig: Any, ax: Any, chart: Chart) -> None:
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
    ax.set_xticklabels(labels, rotation=45 if crowded else 0, ha="right" if crowded else "center",
                       rotation_mode="anchor", fontsize=8)
    ax.set_xlim(-0.6, len(cats) - 0.4)


def _err(s: Series, idx: int) -> tuple[float, float]:
    if s.low is None or s.high is None:
        return (0.0, 0.0)
    y, lo, hi = s.y[idx], as_float(s.low[idx]), as_float(s.high[idx])
    return (max(0.0, y - lo) if math.isfinite(lo) else 0.0,
            max(0.0, hi - y) if math.isfinite(hi) else 0.0)


def _draw_bars(ax: Any, chart: Chart, pos: dict[str, int]) -> None:
    width = 0.8 / max(1, len(chart.series))
    for i, s in enumerate(chart.series):
        xs, ys, errs, colors = [], [], [], []
        for j, (x, y) in enumerate(zip(s.x, s.y, strict=True)):
            if math.isfinite(as_float(y)):
                xs.append(pos[str(x)] - 0.4 + width * (i + 0.5))
                ys.append(float(y))
                errs.append(_err(s, j))
                colors.append(_color(s, i, j))
        ax.bar(xs, ys, width=width * 0.95, label=s.label, color=colors, hatch=s.hatch or None,
               edgecolor=_EDGE, linewidth=0.6)
        _mark_zeros(ax, xs, ys, colors, width * 0.95)
        if s.low is not None and any(e != (0.0, 0.0) for e in errs):
            ax.errorbar(xs, ys, yerr=[[e[0] for e in errs], [e[1] for e in errs]], fmt="none",
                        ecolor=_EDGE, elinewidth=0.8, capsize=2)


def _mark_zeros(ax: Any, xs: Sequence[float], ys: Sequence[float], colors: Sequence[str],
                width: float) -> None:
    """A bar of height 0 is invisible: draw a short thick line at 0 and the label ``0``."""
    for x, y, color in zip(xs, ys, colors, strict=True):
        if y == 0:
            ax.hlines(0, x - width / 2, x + width / 2, colors=color, linewidth=3, zorder=5,
                      clip_on=False)
            ax.annotate("0", (x, 0), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", fontsize=7, color=_EDGE)


def _draw_stacked(ax: Any, chart: Chart, pos: dict[str, int]) -> None:
    bottom = [0.0] * len(pos)
    for i, s in enumerate(chart.series):
        xs, ys, bs, colors = [], [], [], []
        for j, (x, y) in enumerate(zip(s.x, s.y, strict=True)):
            value = as_float(y)
            if math.isfinite(value):
                k = pos[str(x)]
                xs.append(k)
                ys.append(value)
                bs.append(bottom[k])
                bottom[k] += value
                colors.append(_tint(_color(s, 0, j), i) if s.colors else _color(s, i))
        ax.bar(xs, ys, bottom=bs, width=0.7, label=s.label, color=colors, hatch=s.hatch or None,
               edgecolor=_EDGE, linewidth=0.5)
    tops = [(k, b) for k, b in enumerate(bottom) if b == 0]
    _mark_zeros(ax, [k for k, _ in tops], [0.0] * len(tops), [_EDGE] * len(tops), 0.7)


def _draw_lines(ax: Any, chart: Chart, pos: dict[str, int]) -> None:
    for i, s in enumerate(chart.series):
        pts = [(pos[str(x)], as_float(y), j) for j, (x, y) in enumerate(zip(s.x, s.y, strict=True))]
        pts = [p for p in pts if math.isfinite(p[1])]
        if not pts:
            continue
        color = _color(s, i)
        ax.plot([p[0] for p in pts], [p[1] for p in pts],
                marker=s.marker or _MARKERS[i % len(_MARKERS)], color=color, label=s.label,
                linewidth=1.5, markersize=5)
        if s.low is not None:
            errs = [_err(s, p[2]) for p in pts]
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts],
                        yerr=[[e[0] for e in errs], [e[1] for e in errs]], fmt="none",
                        ecolor=color, elinewidth=0.8, capsize=2)
    ax.set_ylim(bottom=0)


# ---------------------------------------------------------------------------------- points
def _spread(points: Sequence[tuple[float, float]]) -> list[float]:
    """Horizontal offsets that pull coinciding points apart (deterministic, in order).

    Points within 1 % of the x range and 0.02 in y of an earlier one join its cluster; a
    cluster of m points is spread symmetrically by steps of 2.5 % of the x range.
    """
    xs = [p[0] for p in points]
    span = (max(xs) - min(xs)) if xs else 0.0
    span = span if span > 0 else max(1.0, max((abs(x) for x in xs), default=1.0) * 0.2)
    clusters: list[list[int]] = []
    for i, (x, y) in enumerate(points):
        for cluster in clusters:
            x0, y0 = points[cluster[0]]
            if abs(x - x0) <= 0.01 * span and abs(y - y0) <= 0.02:
                cluster.append(i)
                break
        else:
            clusters.append([i])
    offsets = [0.0] * len(points)
    for cluster in clusters:
        for k, i in enumerate(cluster):
            offsets[i] = (k - (len(cluster) - 1) / 2) * 0.025 * span
    return offsets


def _xerr(s: Series, j: int, x: float) -> tuple[float, float]:
    if s.x_low is None or s.x_high is None:
        return (0.0, 0.0)
    lo, hi = as_float(s.x_low[j]), as_float(s.x_high[j])
    return (x - lo if math.isfinite(lo) else 0.0, hi - x if math.isfinite(hi) else 0.0)


def _draw_points(ax: Any, series: Sequence[Series], kind: str) -> None:
    """Scatter (spread where points coincide, x and y whiskers) or numeric lines.

    Points are drawn in one call per colour and marker, whiskers in one call per colour: a
    sweep of ten tasks and nine agents has hundreds of points.
    """
    if kind == "line":
        for i, s in enumerate(series):
            pts = sorted((as_float(x), as_float(y)) for x, y in zip(s.x, s.y, strict=True))
            pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=_color(s, i),
                    marker=s.marker or _MARKERS[i % len(_MARKERS)], linewidth=1.5)
        return
    flat = [(i, j, as_float(x), as_float(y)) for i, s in enumerate(series)
            for j, (x, y) in enumerate(zip(s.x, s.y, strict=True))]
    flat = [p for p in flat if math.isfinite(p[2]) and math.isfinite(p[3])]
    offsets = _spread([(p[2], p[3]) for p in flat])
    marks: dict[tuple[str, str], list[tuple[float, float]]] = {}
    bars: dict[str, list[tuple[float, float, tuple[float, float], tuple[float, float]]]] = {}
    for (i, j, x, y), dx in zip(flat, offsets, strict=True):
        s = series[i]
        color = _color(s, i)
        marks.setdefault((color, s.marker or _MARKERS[i % len(_MARKERS)]), []).append((x + dx, y))
        bars.setdefault(color, []).append((x + dx, y, _err(s, j), _xerr(s, j, x)))
    for (color, marker), pts in marks.items():
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=color, s=34,
                   zorder=3, edgecolors=_EDGE, linewidths=0.4)
    if len(flat) > _MAX_ERRORBAR_POINTS:
        return
    for color, whiskers in bars.items():
        ax.errorbar([w[0] for w in whiskers], [w[1] for w in whiskers],
                    yerr=[[w[2][0] for w in whiskers], [w[2][1] for w in whiskers]],
                    xerr=[[w[3][0] for w in whiskers], [w[3][1] for w in whiskers]],
                    fmt="none", ecolor=color, elinewidth=0.8, capsize=2,
                    alpha=0.6 if len(flat) <= 24 else 0.3)  # many points: the points first


def _pad_flat_x(ax: Any, chart: Chart) -> None:
    """A scatter whose points all share one x gets a +-10 % window: the spread stays small."""
    xs = [v for s in chart.series for v in (as_float(x) for x in s.x) if math.isfinite(v)]
    if chart.kind == "scatter" and xs and max(xs) - min(xs) <= 1e-9 * max(1.0, abs(xs[0])):
        pad = max(1.0, abs(xs[0])) * 0.1
        ax.set_xlim(xs[0] - pad, xs[0] + pad)


def _draw_facets(fig: Any, chart: Chart, facets: Sequence[str]) -> None:
    rows, cols = _grid(len(facets))
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(facets):
            ax.set_visible(False)
            continue
        _draw_points(ax, [s for s in chart.series if s.facet == facets[k]], chart.kind)
        ax.set_title(facets[k], fontsize=9)
        last_row = k + cols >= len(facets)  # no panel under this one
        _style_axes(ax, chart, chart.x_label if last_row else "",
                    chart.y_label if k % cols == 0 else "")
        ax.tick_params(labelbottom=True)
    _pad_flat_x(axes.flat[0], chart)  # the panels share x


# --------------------------------------------------------------------------------- heatmap
def _draw_heatmap(fig: Any, ax: Any, chart: Chart) -> None:
    """Rows: the categories (tasks); columns: the series (agents), labelled in their colour."""
    import numpy as np

    rows = _categories(chart)
    grid = np.full((len(rows), len(chart.series)), np.nan)
    for c, s in enumerate(chart.series):
        for x, y in zip(s.x, s.y, strict=True):
            grid[rows.index(str(x)), c] = as_float(y)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="Greys", vmin=0.0, vmax=1.0,
                      aspect="auto")
    for c, s in enumerate(chart.series):
        for r, x in enumerate(s.x):
            value = grid[rows.index(str(x)), c]
            text = s.texts[r] if s.texts else ("–" if math.isnan(value) else f"{value:.2f}")
            ax.text(c, rows.index(str(x)), text, ha="center", va="center", fontsize=8,
                    color="white" if value > 0.55 else "black")
    ax.set_xticks(range(len(chart.series)))
    ax.set_xticklabels([_wrap(s.label) for s in chart.series], fontsize=8)
    for label, s in zip(ax.get_xticklabels(), chart.series, strict=True):
        label.set_color(_shade(s.color or "#000000"))  # the agent's colour, dark enough to read
        label.set_fontweight("bold")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.set_xlabel(chart.x_label, fontsize=9)
    ax.set_ylabel(chart.y_label, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8, label="success rate").ax.tick_params(labelsize=7)
