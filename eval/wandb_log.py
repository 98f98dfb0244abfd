"""Weights & Biases logging for a sweep: one W&B run per ``rapid-eval`` invocation.

What a run holds (docs/wandb.md has the full list):

* **config**: the manifest's sweep (every task, agent, noise, link, the episode count, the first
  seed, the full environment), the backend and the worker count;
* **history**: one step per episode, every numeric field under ``episode/`` (success as 0/1);
* **summary**: sweep aggregates under ``sweep/`` (episodes, cells, success rate, mean latency,
  faults, episode errors), the mean of every ``episode/`` metric (``define_metric``, not the last
  episode's value) and each cell's success rate under ``success_rate/<task>/<agent>/...``;
* at the end: an ``episodes`` and a ``summary`` table, every chart of
  :func:`rapid_env.eval.charts.sweep_charts` twice (a native W&B chart on a table under
  ``charts/<name>``, the same chart as an image under ``figures/<name>``), and the store's files
  (manifest, episodes, summary, report.html) as one ``sweep-results`` artifact.

Offline is the default whenever no API key is configured, so a sweep on a laptop, a CI runner or
an air-gapped cluster never blocks on a login prompt or a network timeout; the run folder can be
uploaded later with ``wandb sync OUT/wandb/offline-run-*`` (the command is printed when the run
closes). ``disabled`` writes nothing at all. The mode is decided by :mod:`rapid_env.wandb_mode`
(re-exported here), which the trainers in ``agents/`` share.

``wandb`` is imported lazily, inside the logger, because importing it costs about a second and
pulls in a lot; nothing that does not log should pay for it. ``WANDB_SILENT`` is set so that
wandb's banners do not interleave with the harness's own progress output.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rapid_env.eval.execute import is_episode_error
from rapid_env.eval.summary import CELL_KEYS, union_columns
from rapid_env.wandb_mode import (
    MODES,
    Mode,
    api_key_configured,
    resolve_mode,
    start_run,
    sync_hint,
)

if TYPE_CHECKING:
    from rapid_env.eval.charts import Chart

__all__ = [
    "ARTIFACT_FILES",
    "ARTIFACT_TYPE",
    "CONFIG_FILE",
    "MODES",
    "WandbLogger",
    "api_key_configured",
    "artifact_name",
    "chart_table",
    "resolve_mode",
]

CONFIG_FILE = "rapid_env_config.json"
"""Name of the plain-JSON copy of the run config written into the run's ``files/`` folder."""

ARTIFACT_TYPE = "sweep-results"
"""W&B artifact type of the results store's files, logged when a sweep finishes."""

ARTIFACT_FILES: tuple[str, ...] = (
    "manifest.json", "episodes.jsonl", "summary.json", "summary.csv", "report.html"
)
"""Files of the results store that go into the artifact (those that exist when it closes)."""


def _scalar(value: Any) -> float | int | None:
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
    return _scalar(item) if isinstance(item, bool | int | float) else None


def _cell(value: Any) -> Any:
    """Table cells: keep numbers, text and None; anything else becomes its JSON text."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    scalar = _scalar(value)
    if scalar is not None:
        return scalar
    return json.dumps(value, default=str)


def _finite(value: Any) -> float | None:
    """A finite float, or None for None, NaN, infinities and anything that is not a number."""
    scalar = _scalar(value)
    if scalar is None or isinstance(value, bool):
        return None
    number = float(scalar)
    return number if math.isfinite(number) else None


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
            [_cell(xv), s.label, _finite(yv), str(xv)]
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
                data.append([_cell(xv), s.label, _finite(yv), _bound(s.low, i),
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
            [s.label, _cell(xv), float(xv) if numeric else order[str(xv)], _finite(yv),
             _bound(s.low, i), _bound(s.high, i)]
            for s in chart.series
            for i, (xv, yv) in enumerate(zip(s.x, s.y, strict=False))
        ]
        return columns, data, {"x": x, "y": y, "series": "series", "step": "step"}
    # scatter (and anything newer: points with their series)
    x, y = _column_names(chart, ("series", "low", "high"))
    columns = ["series", x, y, "low", "high"]
    data = [
        [s.label, _cell(xv), _finite(yv), _bound(s.low, i), _bound(s.high, i)]
        for s in chart.series
        for i, (xv, yv) in enumerate(zip(s.x, s.y, strict=False))
    ]
    return columns, data, {"x": x, "y": y, "series": "series"}


def _bound(values: Sequence[float] | None, i: int) -> float | None:
    return _finite(values[i]) if values is not None and i < len(values) else None


def _warn(message: str) -> None:
    print(f"rapid-eval: W&B: {message}", file=sys.stderr)


class WandbLogger:
    """One W&B run for one sweep: a scalar point per episode; tables, charts, artifact at the end.

    Per episode (:meth:`log_episode`): every numeric field (success as 0/1) under ``episode/``,
    with the episode index as the W&B step, so curves over a sweep are readable live online; the
    run summary keeps each one's mean over the sweep. At the end (:meth:`finish`): an
    ``episodes`` table (one row per record, every field), a ``summary`` table (one row per task x
    agent x noise x link cell), the sweep's charts (``charts/<name>`` and ``figures/<name>``),
    the sweep aggregates in the summary and the store's files as an artifact; then the run
    closes and the line to find it (its URL, or the ``wandb sync`` command) goes to stderr.

    Runs land in ``out_dir/wandb/`` (``dir=out_dir``), next to episodes.jsonl and summary.*, so a
    results folder is self-contained. A plain-JSON copy of the config is also written to the run's
    ``files/`` folder, because offline runs keep the config only inside the binary ``.wandb`` log.
    In 'disabled' mode wandb is not even imported and nothing is written.

    Usable as a context manager: leaving the block on an exception closes the run marked failed
    (exit code 1), so a crashed sweep still leaves a readable, syncable run.
    """

    def __init__(
        self,
        mode: Mode | str | None,
        project: str,
        config: Mapping[str, Any],
        out_dir: Path,
        name: str | None = None,
        run_id: str | None = None,
        group: str | None = None,
        tags: Sequence[str] = (),
        job_type: str | None = "eval",
    ) -> None:
        self.mode: str = resolve_mode(mode)
        self.project = project
        self.config: dict[str, Any] = dict(config)
        self.out_dir = Path(out_dir)
        self.name = name
        self._records: list[dict[str, Any]] = []
        self._run: Any = None
        self._wandb: Any = None
        self._finished = False
        self.url: str | None = None
        """The run's web page (online runs only)."""
        if self.mode == "disabled":
            return
        self._run = start_run(self.mode, self.out_dir, job_type=job_type, config=self.config,
                              name=name, group=group, tags=tags, run_id=run_id, project=project)
        import wandb  # already imported by start_run

        self._wandb = wandb
        self.url = self._run.url if self.mode == "online" else None
        # the summary holds each episode metric's mean over the sweep, not the last episode's
        self._run.define_metric("episode/*", summary="mean")
        self._write_config_copy()

    @property
    def run_id(self) -> str | None:
        """The W&B run id (kept in the store's manifest so a resumed sweep logs into it)."""
        return None if self._run is None else str(self._run.id)

    def preload(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Records a resumed sweep already holds: in the final tables, not logged again."""
        if self._records:
            raise RuntimeError("preload() before the first log_episode()")
        self._records.extend(dict(r) for r in records)

    @property
    def run_dir(self) -> Path | None:
        """Run folder (``out_dir/wandb/<offline-|>run-...``), or None when disabled."""
        if self._run is None:
            return None
        return Path(self._run.dir).parent

    def _write_config_copy(self) -> None:
        """Write the config as plain JSON under files/, readable without any wandb tooling."""
        files_dir = Path(self._run.dir)
        files_dir.mkdir(parents=True, exist_ok=True)
        path = files_dir / CONFIG_FILE
        # Files written into run.dir are uploaded at the end of an online run and by `wandb sync`.
        path.write_text(json.dumps(self.config, indent=2, sort_keys=True, default=str) + "\n")

    def log_episode(
        self, record: Mapping[str, Any], media: Mapping[str, Path] | None = None
    ) -> None:
        """Remember the record for the final table and log its numeric fields as one step.

        ``media`` (from :func:`rapid_env.eval.media.media_for`) adds the recorded episode's video
        (``media/video``), still (``media/still``) and per-tick series: a table and a line plot
        keyed by simulated time (``series/<cell>/seed<k>``).
        """
        if self._finished:
            raise RuntimeError("log_episode() after finish(): the W&B run is already closed")
        self._records.append(dict(record))
        if self._run is None:
            return
        scalars: dict[str, Any] = {}
        for key, value in record.items():
            scalar = _scalar(value)
            if scalar is not None:
                scalars[f"episode/{key}"] = scalar
        scalars["episode/faulted"] = int(record.get("fault") is not None)
        if media:
            try:
                scalars.update(self._media_items(record, media))
            except Exception as exc:  # noqa: BLE001 - a broken media file must not end a sweep
                print(f"rapid-env: W&B media for one episode skipped ({exc})", file=sys.stderr)
        self._run.log(scalars, step=len(self._records) - 1)

    def _media_items(
        self, record: Mapping[str, Any], media: Mapping[str, Path]
    ) -> dict[str, Any]:
        """W&B objects for one recorded episode's files."""
        wandb = self._wandb
        label = "/".join(str(record.get(k)) for k in CELL_KEYS) + f"/seed{record.get('seed')}"
        caption = f"{label}: success {bool(record.get('success'))}"
        items: dict[str, Any] = {}
        if "video" in media:
            fmt = "gif" if media["video"].suffix == ".gif" else "mp4"
            items["media/video"] = wandb.Video(str(media["video"]), caption=caption, format=fmt)
        if "still" in media:
            items["media/still"] = wandb.Image(str(media["still"]), caption=caption)
        if "series" in media:
            from rapid_env.eval.media import load_series

            series = load_series(media["series"])["series"]
            t = [float(v) for v in series.get("t", [])]
            numeric = [k for k, vs in series.items() if k != "t" and len(vs) == len(t)
                       and all(v is None or isinstance(v, int | float) for v in vs)]
            rows = [[t[i], *[series[k][i] for k in numeric]] for i in range(len(t))]
            table = wandb.Table(columns=["t", *numeric], data=rows, allow_mixed_types=True)
            items[f"series_table/{label}"] = table
            shown = [k for k in ("score", "chunk_remaining", "in_flight", "latency_ms",
                                 "est_bandwidth_mbps", "ee_speed") if k in numeric]
            if shown and t:
                ys = [[float(v) if v is not None else float("nan") for v in series[k]]
                      for k in shown]
                items[f"series/{label}"] = wandb.plot.line_series(
                    xs=t, ys=ys, keys=shown, title=f"per-tick series: {label}",
                    xname="simulated time (s)",
                )
        return items

    def _table(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        """Build a wandb.Table; mixed types allowed since a column may hold None and numbers."""
        columns = union_columns(rows)
        data = [[_cell(row.get(c)) for c in columns] for row in rows]
        return self._wandb.Table(columns=columns, data=data, allow_mixed_types=True)

    def _native_chart(self, chart: Chart) -> Any:
        """A W&B chart on a table of the chart's points (bar, scatter or line-series preset)."""
        wandb = self._wandb
        columns, data, role = chart_table(chart)
        table = wandb.Table(columns=columns, data=data, allow_mixed_types=True)
        if chart.kind in ("bar", "stacked_bar"):
            return wandb.plot.bar(table, role["label"], role["y"], title=chart.title)
        if chart.kind == "line":
            return wandb.plot_table(
                "wandb/lineseries/v0",
                table,
                {"step": role["step"], "lineKey": role["series"], "lineVal": role["y"]},
                {"title": chart.title, "xname": chart.x_label},
            )
        return wandb.plot.scatter(table, role["x"], role["y"], title=chart.title)

    def _image(self, png: bytes, caption: str) -> Any:
        from PIL import Image  # a wandb dependency

        return self._wandb.Image(Image.open(io.BytesIO(png)), caption=caption)

    def _charts(self, summary_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``charts/<name>`` (native) and ``figures/<name>`` (image) for every sweep chart.

        A chart that cannot be drawn is reported on stderr and left out: a sweep that has run for
        hours must not lose its W&B run over a figure.
        """
        try:
            from rapid_env.eval.charts import render_png, sweep_charts

            charts = sweep_charts([dict(r) for r in summary_rows])
        except Exception as exc:  # any failure: log the rest of the run
            _warn(f"no charts ({type(exc).__name__}: {exc})")
            return {}
        logged: dict[str, Any] = {}
        image_error: str | None = None
        for chart in charts:
            try:
                logged[f"charts/{chart.name}"] = self._native_chart(chart)
            except Exception as exc:
                _warn(f"chart {chart.name!r} left out ({type(exc).__name__}: {exc})")
            try:
                logged[f"figures/{chart.name}"] = self._image(render_png(chart), chart.title)
            except Exception as exc:
                image_error = image_error or f"{type(exc).__name__}: {exc}"
        if image_error is not None:
            _warn(f"some chart images left out ({image_error})")
        return logged

    def _aggregates(self, summary_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Sweep-level numbers for the run summary, over every record (resumed ones included)."""
        records = self._records
        ran = [r for r in records if not is_episode_error(r)]
        latencies = [v for r in ran if (v := _finite(r.get("latency_ms_mean"))) is not None]
        aggregates: dict[str, Any] = {
            "sweep/episodes": len(records),
            "sweep/cells": len(summary_rows),
            "sweep/success_rate": (
                sum(bool(r.get("success")) for r in ran) / len(ran) if ran else None
            ),
            "sweep/latency_ms_mean": math.fsum(latencies) / len(latencies) if latencies else None,
            "sweep/faults": sum(1 for r in records if r.get("fault") is not None),
            "sweep/episode_errors": len(records) - len(ran),
        }
        for row in summary_rows:
            rate = _finite(row.get("success_rate"))
            if rate is not None:
                cell = "/".join(str(row.get(k)) for k in CELL_KEYS)
                aggregates[f"success_rate/{cell}"] = rate
        return aggregates

    def _artifact(self) -> Any:
        """The store's files (those present) as one ``sweep-results`` artifact, or None."""
        files = [self.out_dir / f for f in ARTIFACT_FILES if (self.out_dir / f).is_file()]
        if not files:
            return None
        artifact = self._wandb.Artifact(
            artifact_name(self.out_dir),
            type=ARTIFACT_TYPE,
            description=f"rapid-eval results store {self.out_dir}",
            metadata={"episodes": len(self._records), "out": str(self.out_dir)},
        )
        for path in files:
            artifact.add_file(str(path), name=path.name)
        return artifact

    def finish(
        self,
        summary_rows: Sequence[Mapping[str, Any]],
        exit_code: int = 0,
        teardown: bool = True,
    ) -> None:
        """Log tables, charts, sweep aggregates and the results artifact; close the run.

        Charts and the artifact are logged only for a sweep that ended normally (``exit_code``
        0); an interrupted one is resumed later and logs them then. Safe to call twice (the
        second call does nothing) and in 'disabled' mode.

        ``teardown`` (default True) also shuts down wandb's background service, and that is what
        makes the run folder complete when this returns: with wandb 0.31, ``run.finish()`` alone
        can return before the offline ``.wandb`` log is written (seen as a 7-byte file, for the
        first run of a process). It finishes *every* wandb run of the process, so pass False if
        other code in the same process keeps a run open; the log is then complete at exit.
        """
        if self._finished:
            return
        self._finished = True
        if self._run is None:
            return
        try:
            logged: dict[str, Any] = {}
            if self._records:
                logged["episodes"] = self._table(self._records)
            if summary_rows:
                logged["summary"] = self._table(summary_rows)
                if exit_code == 0:
                    logged.update(self._charts(summary_rows))
            if logged:
                self._run.log(logged)
            if self._records or summary_rows:
                self._run.summary.update(self._aggregates(summary_rows))
            if exit_code == 0 and self._records:
                artifact = self._artifact()
                if artifact is not None:
                    self._run.log_artifact(artifact)
        finally:
            self._close(exit_code, teardown)

    def _close(self, exit_code: int, teardown: bool) -> None:
        """Finish the run and, if asked, wait for wandb's service to write everything out."""
        run_dir = self.run_dir
        self._run.finish(exit_code=exit_code)
        if teardown:
            self._wandb.teardown()
        hint = sync_hint(self.mode, run_dir, self.url)
        if hint:
            print(f"rapid-eval: {hint}", file=sys.stderr)

    def __enter__(self) -> WandbLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the run if finish() was not reached; mark it failed when leaving on an error."""
        if not self._finished:
            if exc_type is None:
                self.finish([])
            else:
                self._finished = True
                if self._run is not None:
                    self._close(1, teardown=True)
