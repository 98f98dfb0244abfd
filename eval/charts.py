"""Chart definitions from summary rows: what to plot, independent of any plotting library.

A :class:`Chart` is plain data: a kind (``bar``, ``stacked_bar``, ``scatter``, ``line``,
``heatmap``), axis labels with units and a list of :class:`Series` (``x``, ``y`` and, where the
rows carry one, the 95 % interval as absolute bounds ``low`` / ``high``). :func:`sweep_charts`
builds the charts a researcher opens first from the rows of
:func:`rapid_env.eval.summary.summarize`; :mod:`rapid_env.eval.chart_render` draws them
(:func:`render_png`, re-exported here), and the W&B logger builds its own charts from the same
definitions. How cells are combined over tasks is :mod:`rapid_env.eval.chart_data`'s job; each
chart's title says which rule applies.

**Colour means agent, everywhere.** :func:`agent_colors` gives every agent one colour from the
sweep's agent order, and every chart of a sweep uses that one map (bars, lines, points, the
heatmap's column labels). Noise and link are never told apart by colour: bars get a hatch per
noise x link group, points a marker, and the success-vs-latency plot a facet per task.

A chart whose fields the rows lack (or hold only NaN/None for) is skipped; NaN and None values
are left out of means and never drawn.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rapid_env.eval.chart_data import (
    Row,
    SweepRows,
    bounds,
    has,
    mean,
    mean_with_interval,
    offload_rate,
    pooled_success,
)
from rapid_env.eval.chart_render import PALETTE, chart_size, render_png
from rapid_env.eval.pooling import as_float

__all__ = [
    "AGENT_COLORS",
    "Chart",
    "GROUP_HATCHES",
    "GROUP_MARKERS",
    "LATENCY_STAGES",
    "Series",
    "agent_colors",
    "chart_size",
    "render_png",
    "sweep_charts",
]

ChartKind = Literal["bar", "stacked_bar", "scatter", "line", "heatmap"]

AGENT_COLORS: tuple[str, ...] = PALETTE
"""Paul Tol's bright scheme plus a few: the n-th agent of the sweep gets the n-th colour (cycling
after twelve)."""

GROUP_HATCHES: tuple[str, ...] = ("", "///", "...", "xxx", "\\\\\\", "ooo", "---", "+++")
"""Hatch of the n-th noise x link group in bar charts (the first group plain)."""

GROUP_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
"""Marker of the n-th noise x link group in point charts, and of the n-th agent in lines."""

LATENCY_STAGES: tuple[tuple[str, str], ...] = (
    ("edge_ms_mean", "edge compute"),
    ("uplink_ms_mean", "uplink"),
    ("cloud_ms_mean", "cloud compute"),
    ("downlink_ms_mean", "downlink"),
)
"""The stages of one request's latency, in the order they happen, with their legend labels."""


@dataclass(frozen=True)
class Series:
    """One labelled sequence of points, with an optional interval (absolute bounds)."""

    label: str
    """What the series is: an agent, a noise x link group, a latency stage."""
    x: list[str | float]
    """Categories (bar, stacked_bar, heatmap rows, line over categories) or numbers."""
    y: list[float]
    low: list[float] | None = None
    """Lower bounds of the interval, same length as ``y`` (NaN where a point has none), or None."""
    high: list[float] | None = None
    """Upper bounds of the interval, same length as ``y``, or None."""
    color: str | None = None
    """The series' colour (its agent's); None: each point's entry of ``colors``."""
    colors: list[str] | None = None
    """One colour per point (bars whose categories are agents), or None."""
    marker: str | None = None
    """Point marker (the noise x link group's, or the agent's on a line)."""
    hatch: str | None = None
    """Bar hatch (the noise x link group's, or the latency stage's)."""
    group: str | None = None
    """The noise x link group a point series belongs to (legend of markers), or None."""
    facet: str | None = None
    """The panel the series is drawn in (a task), or None: the one panel."""
    x_low: list[float] | None = None
    """Lower bounds of a horizontal interval (scatter), or None."""
    x_high: list[float] | None = None
    """Upper bounds of a horizontal interval (scatter), or None."""
    texts: list[str] | None = None
    """A label per point (the heatmap's cell text), or None."""


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
    palette: dict[str, str] = field(default_factory=dict)
    """Agent -> colour of the agents drawn (the colour legend); {} for hand-made charts."""


def agent_colors(agents: Sequence[str]) -> dict[str, str]:
    """Agent -> colour from the sweep's agent order (the n-th agent, the n-th colour)."""
    names = list(dict.fromkeys(str(a) for a in agents))
    return {a: AGENT_COLORS[i % len(AGENT_COLORS)] for i, a in enumerate(names)}


class _Defs:
    """The sweep's rows with its fixed colour map: what every chart definition reads."""

    def __init__(self, rows: Sequence[Row], agents: Sequence[str] | None) -> None:
        self.sweep = SweepRows(rows, agents)
        self.colors = agent_colors(self.sweep.palette_order)
        self.palette = {a: self.colors[a] for a in self.sweep.agents}
        self.markers = {a: GROUP_MARKERS[i % len(GROUP_MARKERS)]
                        for i, a in enumerate(self.sweep.palette_order)}

    def per_agent_bars(
        self, aggregate: Callable[[Sequence[Row]], tuple[float, float, float]]
    ) -> list[Series]:
        """One series per noise x link group (a hatch), x = agents (their colours)."""
        series = []
        agents = self.sweep.agents
        for i, (noise, link, label) in enumerate(self.sweep.groups()):
            values = [aggregate(self.sweep.select(agent=a, noise=noise, link=link))
                      for a in agents]
            low, high = bounds(values)
            series.append(Series(label, list(agents), [v[0] for v in values], low, high,
                                 colors=[self.colors[a] for a in agents],
                                 hatch=GROUP_HATCHES[i % len(GROUP_HATCHES)], group=label))
        return series


def _metric_bar(d: _Defs, key: str, name: str, what: str, y_label: str) -> Chart | None:
    if not has(d.sweep.rows, key):
        return None
    return Chart(name=name, title=f"{what} by agent ({d.sweep.over_tasks}; bars: 95 % CI)",
                 kind="bar", x_label="agent", y_label=y_label,
                 series=d.per_agent_bars(lambda rs: mean_with_interval(rs, key)),
                 palette=d.palette)


def _success_by_agent(d: _Defs) -> Chart | None:
    sweep = d.sweep
    if not has(sweep.rows, "success_rate"):
        return None
    where = (f"task {sweep.tasks[0]}; " if len(sweep.tasks) == 1
             else f"pooled over {len(sweep.tasks)} tasks; ")
    return Chart(name="success_by_agent",
                 title=f"Success rate by agent ({where}bars: Wilson 95 % CI)",
                 kind="bar", x_label="agent", y_label="success rate (fraction of episodes)",
                 series=d.per_agent_bars(pooled_success), palette=d.palette)


def _success_heatmap(d: _Defs) -> Chart | None:
    """Task x agent grid of success, pooled over noise x link; each cell says k / n."""
    sweep = d.sweep
    if not has(sweep.rows, "success_rate"):
        return None
    series = []
    for agent in sweep.agents:
        values, texts = [], []
        for task in sweep.tasks:
            rows = sweep.select(agent=agent, task=task)
            rate, low, high = pooled_success(rows) if rows else (math.nan,) * 3
            values.append((rate, low, high))
            k, n = (sum(as_float(r.get(f)) for r in rows) for f in ("successes", "episodes"))
            count = f"\n{k:.0f}/{n:.0f}" if math.isfinite(k) and math.isfinite(n) else ""
            texts.append(f"{rate:.2f}{count}" if math.isfinite(rate) else "–")
        low_b, high_b = bounds(values)
        series.append(Series(agent, list(sweep.tasks), [v[0] for v in values], low_b, high_b,
                             color=d.colors[agent], texts=texts))
    groups = len(sweep.groups())
    over = f"pooled over {groups} noise × link settings" if groups > 1 else (
        f"{sweep.noises[0]}, link {sweep.links[0]}")
    return Chart(name="success_heatmap", kind="heatmap", x_label="agent", y_label="task",
                 title=f"Success rate by task and agent ({over}; cell: rate, successes / "
                       "episodes)", series=series, palette=d.palette)


def _latency_breakdown(d: _Defs) -> Chart | None:
    sweep = d.sweep
    stages = [(key, label) for key, label in LATENCY_STAGES if has(sweep.rows, key)]
    if not stages:
        return None
    by_link = len(sweep.links) > 1
    cats: list[tuple[str, str, list[Row]]] = []
    for agent in sweep.agents:
        for link in sweep.links if by_link else [None]:
            rows = sweep.select(agent=agent, link=link) if link else sweep.select(agent=agent)
            if rows:
                cats.append((f"{agent} · {link}" if link else agent, agent, rows))
    x: list[str | float] = [c[0] for c in cats]
    series = [Series(label, x, [mean([as_float(r.get(key)) for r in rows]) for *_, rows in cats],
                     colors=[d.colors[c[1]] for c in cats],
                     hatch=GROUP_HATCHES[i % len(GROUP_HATCHES)])
              for i, (key, label) in enumerate(stages)]
    over = "tasks and noises" if len(sweep.noises) > 1 else "tasks"
    if not by_link and len(sweep.links) == 1:
        over += f"; link {sweep.links[0]}"
    return Chart(name="latency_breakdown_by_agent",
                 title=f"Latency of a request by stage (mean of cell means over {over})",
                 kind="stacked_bar", x_label="agent · link" if by_link else "agent",
                 y_label="mean latency per request (ms)", series=series, palette=d.palette)


def _offload_rate_by_noise(d: _Defs) -> list[Chart]:
    sweep = d.sweep
    if not (has(sweep.rows, "offloads") and has(sweep.rows, "sim_time_s")):
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
                    y.append(offload_rate(rows))
            if x and any(math.isfinite(v) for v in y):
                series.append(Series(agent, x, y, color=d.colors[agent],
                                     marker=d.markers[agent]))
        if not series:
            continue
        suffix = "" if len(sweep.links) == 1 else f"__{_slug(link)}"
        pooled = "" if len(sweep.tasks) == 1 else f", pooled over {len(sweep.tasks)} tasks"
        charts.append(Chart(
            name=f"offload_rate_by_noise{suffix}",
            title=f"Offloads per simulated second against the noise (link {link}{pooled})",
            kind="line", x_label="noise (scene class / severity, sweep order)",
            y_label="offloads / simulated s (from cell means)", series=series,
            palette=d.palette))
    return charts


def _success_vs_latency(d: _Defs) -> Chart | None:
    """A panel per task (one panel for one task); a point per agent and noise x link group."""
    sweep = d.sweep
    if not (has(sweep.rows, "success_rate") and has(sweep.rows, "latency_ms_mean")):
        return None
    groups = sweep.groups()
    series = []
    for task in sweep.tasks:
        for agent in sweep.agents:
            for i, (noise, link, label) in enumerate(groups):
                for r in sweep.select(task=task, agent=agent, noise=noise, link=link):
                    series.extend(_latency_point(d, r, agent, label, i,
                                                 task if len(sweep.tasks) > 1 else None))
    if not series:
        return None
    marks = "" if len(groups) == 1 else "; marker: noise × link"
    return Chart(name="success_vs_latency", kind="scatter",
                 title="Success against mean chunk latency (a point per agent and cell; "
                       f"whiskers: 95 % CIs; points that coincide are spread apart{marks})",
                 x_label="mean chunk latency (ms)", y_label="success rate (Wilson 95 % CI)",
                 series=series, palette=d.palette)


def _latency_point(d: _Defs, row: Row, agent: str, group: str, index: int,
                   facet: str | None) -> list[Series]:
    lat, rate = as_float(row.get("latency_ms_mean")), as_float(row.get("success_rate"))
    if not (math.isfinite(lat) and math.isfinite(rate)):
        return []
    half = as_float(row.get("latency_ms_mean_ci95"))
    x_low, x_high = ([lat - half], [lat + half]) if math.isfinite(half) else (None, None)
    return [Series(agent, [lat], [rate], [as_float(row.get("success_ci_low"))],
                   [as_float(row.get("success_ci_high"))], color=d.colors[agent],
                   marker=GROUP_MARKERS[index % len(GROUP_MARKERS)], group=group, facet=facet,
                   x_low=x_low, x_high=x_high)]


def sweep_charts(
    rows: Sequence[Mapping[str, Any]], agents: Sequence[str] | None = None
) -> list[Chart]:
    """The charts of a sweep from its summary rows, in the order a reader wants them.

    ``success_by_agent``, ``success_heatmap`` (task x agent), ``latency_breakdown_by_agent``,
    ``latency_p95_by_agent``, ``offload_rate_by_noise`` (one per link,
    ``offload_rate_by_noise__<link>``, when the sweep has several), ``rms_jerk_by_agent``,
    ``stalls_by_agent``, ``success_vs_latency``. Categories keep the rows' first-seen order (the
    sweep's order for rows of ``summarize``). A chart whose fields the rows lack is left out; rows
    may hold NaN or None anywhere.

    Args:
        rows: summary rows.
        agents: the sweep's agent order, which fixes each agent's colour (:func:`agent_colors`)
            and the agents' order; None: the rows' first-seen order.
    """
    d = _Defs(rows, agents)
    if not d.sweep.rows:
        return []
    candidates: list[Chart | None] = [
        _success_by_agent(d),
        _success_heatmap(d),
        _latency_breakdown(d),
        _metric_bar(d, "latency_ms_p95", "latency_p95_by_agent",
                    "95th-percentile chunk latency", "p95 chunk latency (ms)"),
        *_offload_rate_by_noise(d),
        _metric_bar(d, "rms_jerk", "rms_jerk_by_agent", "RMS jerk of the end effector",
                    "RMS jerk (m/s³)"),
        _metric_bar(d, "stall_steps", "stalls_by_agent", "Stall ticks per episode",
                    "stall ticks per episode (control ticks)"),
        _success_vs_latency(d),
    ]
    return [c for c in candidates if c is not None and c.series]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "link"
