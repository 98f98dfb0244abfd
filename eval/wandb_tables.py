"""Plain data for the W&B runs of a sweep: run names, flat configs, table rows, chart tables.

Nothing here imports wandb: these are the values :mod:`rapid_env.eval.wandb_log` hands to it, kept
apart so they can be read and tested without a run. A sweep's runs are one per cell (agent x task
x noise x link) plus one sweep-level run, all in one W&B group; their configs are *flat* (``agent``,
``task``, ``noise``, ``link``, ``policy``, ``control_hz``, ...) so W&B's Runs table can group and
filter on them, where a nested ``sweep.env.task`` names only the sweep's first task.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rapid_env.eval.charts import Chart

CELL_ORDER: tuple[str, ...] = ("agent", "task", "noise", "link")
"""The order of the cell's parts in a run name (``rapid|reach|clean|wifi``): agent first, since
runs are compared across agents."""

SWEEP_JOB_TYPE = "sweep-summary"
"""W&B job type of the sweep-level run (the cell runs take ``--job-type``, default ``eval``)."""


def cell_name(cell: Mapping[str, Any]) -> str:
    """A cell's run name, manifest key: ``agent|task|noise|link`` (``rapid|reach|clean|wifi``)."""
    return "|".join(str(cell[k]) for k in CELL_ORDER)


def _flat_env(env: Mapping[str, Any]) -> dict[str, Any]:
    """The environment one level deep: nested fields under their own names, prefixed if taken.

    ``control.hold_policy`` becomes ``hold_policy`` (the flag's name), so the config stays flat.
    """
    flat: dict[str, Any] = {}
    for key, value in env.items():
        if not isinstance(value, Mapping):
            flat[key] = value
    for key, value in env.items():
        if isinstance(value, Mapping):
            for inner, v in value.items():
                flat[inner if inner not in flat else f"{key}_{inner}"] = v
    return flat


def cell_config(
    manifest: Mapping[str, Any], cell: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The flat W&B config of one cell's run.

    ``agent``, ``task``, ``noise``, ``link``, then the cell's full environment (``policy``,
    ``profile``, ``edge``, ``cloud``, ``image_size``, ``control_hz``, ``chunk_size``,
    ``max_episode_s``, ``hold_policy``, ``align``, ...; from the manifest's ``cells``), then
    ``episodes`` (paired seeds per cell) and ``seed_first``, then ``extra`` (out, backend, ...).
    """
    sweep = manifest["sweep"]
    env: Mapping[str, Any] = sweep.get("env", {})
    for entry in manifest.get("cells", ()):
        task, noise, link, agent = entry["cell"]
        if (task, noise, link, agent) == tuple(str(cell[k]) for k in ("task", "noise", "link",
                                                                       "agent")):
            env = entry["env"]
            break
    config: dict[str, Any] = {k: cell[k] for k in CELL_ORDER}
    config.update({k: v for k, v in _flat_env(env).items() if k not in config})
    config.update(episodes=sweep["episodes"], seed_first=sweep["seed"], cell=cell_name(cell))
    config.update(extra or {})
    return config


def sweep_config(manifest: Mapping[str, Any], extra: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The flat W&B config of the sweep-level run.

    The sweep's lists (``tasks``, ``agents``, ``noises``, ``links``), ``cells``, ``episodes``,
    ``seed_first`` and the shared environment; ``task``, ``noise`` and ``link`` are left out of
    it because the base environment's values are only the sweep's first ones.
    """
    sweep = manifest["sweep"]
    config: dict[str, Any] = {
        "tasks": list(sweep["tasks"]), "agents": list(sweep["agents"]),
        "noises": list(sweep["noises"]), "links": list(sweep["links"]),
        "cells": len(manifest.get("cells", ())), "episodes": sweep["episodes"],
        "seed_first": sweep["seed"],
    }
    env = _flat_env(sweep.get("env", {}))
    config.update({k: v for k, v in env.items() if k not in ("task", "noise", "link")})
    config.update(extra or {})
    return config


def cell_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """A cell's summary row (:func:`rapid_env.eval.summary.summarize`) as run-summary values.

    The numbers, flat (``success_rate``, ``success_ci_low``, ``latency_ms_mean``,
    ``latency_ms_mean_ci95``, ...); non-finite ones and the ``<metric>_nan`` counts of missing
    values are left out, so the Runs table shows one column per metric and its interval.
    ``episodes``, ``valid`` and ``invalid`` are always there (a row from before ``invalid``
    existed: every episode valid), so a cell whose numbers rest on fewer episodes than it ran
    shows it beside them.
    """
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key.endswith("_nan"):
            continue
        number = scalar(value)
        if number is not None and math.isfinite(float(number)):
            out[key] = number
    counts = validity_counts(row)
    return {**out, **counts} if counts else out


def validity_counts(row: Mapping[str, Any]) -> dict[str, int]:
    """A summary row's ``episodes``, ``valid`` and ``invalid``; empty without ``episodes``."""
    episodes = row.get("episodes")
    if not isinstance(episodes, int) or isinstance(episodes, bool):
        return {}
    valid = row.get("valid")
    valid = valid if isinstance(valid, int) and not isinstance(valid, bool) else episodes
    return {"episodes": episodes, "valid": valid, "invalid": episodes - valid}


def table_row_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record for a table row: a mapping field (``media``) becomes one column per key.

    ``media.video`` holds the file's path relative to the results folder, never a JSON string.
    """
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def scalar(value: Any) -> float | int | None:
    """Return a loggable scalar (bools as 0/1) or None for text, lists and missing values."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value
    try:  # numpy scalars, without importing numpy here
        item = value.item()
    except AttributeError:
        return None
    return scalar(item) if isinstance(item, bool | int | float) else None


def table_cell(value: Any) -> Any:
    """Table cells: keep numbers, text and None; anything else becomes its JSON text."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    number = scalar(value)
    if number is not None:
        return number
    return json.dumps(value, default=str)


def finite(value: Any) -> float | None:
    """A finite float, or None for None, NaN, infinities and anything that is not a number."""
    number = scalar(value)
    if number is None or isinstance(value, bool):
        return None
    return float(number) if math.isfinite(float(number)) else None


def artifact_name(out_dir: Path) -> str:
    """The artifact's name: the out folder's name with characters W&B refuses replaced by '-'."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(out_dir).resolve().name).strip("-.")
    return (name or "sweep")[:128]


def _column_names(chart: Chart, fixed: Sequence[str]) -> tuple[str, str]:
    """Column names for x and y: the chart's axis labels (W&B titles axes by column name)."""
    x = chart.x_label.strip() or "x"
    y = chart.y_label.strip() or "y"
    if x in fixed:
        x = f"{x} (x)"
    if y in fixed or y == x:
        y = f"{y} (y)"
    return x, y


def chart_table(chart: Chart) -> tuple[list[str], list[list[Any]], dict[str, str]]:
    """The rows of one chart as a table: ``(columns, data, roles)``.

    Every point is one row, with its series and its interval, so the data is in the table even
    where W&B's preset cannot draw it (error bars, stacked stages). ``roles`` maps what the
    chart needs (``x``, ``y``, ``label``, ``series``, ``step``) to a column name:

    * ``bar``: ``x, series, y, low, high, label`` (label: ``x`` alone for one series, ``x | series``
      for several, so grouped bars stay apart in W&B's one-series bar preset);
    * ``stacked_bar``: ``x, stage, y, label`` (label ``x``: the stages of a bar stack up);
    * ``scatter``: ``series, x, y, low, high``;
    * ``line``: ``series, x, step, y, low, high`` (step: x itself when every x is a number, else
      the position of x among the categories, in first-seen order).
    """
    several = len(chart.series) > 1
    if chart.kind == "stacked_bar":
        x, y = _column_names(chart, ("stage", "label"))
        columns = [x, "stage", y, "label"]
        data = [
            [table_cell(xv), s.label, finite(yv), str(xv)]
            for s in chart.series
            for xv, yv in zip(s.x, s.y, strict=False)
        ]
        return columns, data, {"x": x, "y": y, "label": "label", "series": "stage"}
    if chart.kind == "bar":
        x, y = _column_names(chart, ("series", "low", "high", "label"))
        columns = [x, "series", y, "low", "high", "label"]
        data = []
        for s in chart.series:
            for i, (xv, yv) in enumerate(zip(s.x, s.y, strict=False)):
                label = f"{xv} | {s.label}" if several else str(xv)
                data.append([table_cell(xv), s.label, finite(yv), _bound(s.low, i),
                             _bound(s.high, i), label])
        return columns, data, {"x": x, "y": y, "label": "label", "series": "series"}
    if chart.kind == "line":
        x, y = _column_names(chart, ("series", "step", "low", "high"))
        points = [v for s in chart.series for v in s.x]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in points)
        order: dict[str, int] = {}
        for s in chart.series:
            for v in s.x:
                order.setdefault(str(v), len(order))
        columns = ["series", x, "step", y, "low", "high"]
        data = [
            [s.label, table_cell(xv), float(xv) if numeric else order[str(xv)], finite(yv),
             _bound(s.low, i), _bound(s.high, i)]
            for s in chart.series
            for i, (xv, yv) in enumerate(zip(s.x, s.y, strict=False))
        ]
        return columns, data, {"x": x, "y": y, "series": "series", "step": "step"}
    # scatter (and anything newer: points with their series)
    x, y = _column_names(chart, ("series", "low", "high"))
    columns = ["series", x, y, "low", "high"]
    data = [
        [s.label, table_cell(xv), finite(yv), _bound(s.low, i), _bound(s.high, i)]
        for s in chart.series
        for i, (xv, yv) in enumerate(zip(s.x, s.y, strict=False))
    ]
    return columns, data, {"x": x, "y": y, "series": "series"}


def _bound(values: Sequence[float] | None, i: int) -> float | None:
    return finite(values[i]) if values is not None and i < len(values) else None


