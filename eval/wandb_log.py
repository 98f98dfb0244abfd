"""Weights & Biases logging for a sweep: one run per cell, one sweep-level run, in one group.

What a sweep leaves (docs/wandb.md has the full list):

* **a run per cell** (agent x task x noise x link), named ``agent|task|noise|link``, job type
  ``--job-type`` (default ``eval``): a *flat* config (``agent``, ``task``, ``noise``, ``link``,
  ``policy``, ``control_hz``, ..., :func:`~rapid_env.eval.wandb_tables.cell_config`), so W&B's
  Runs table groups by agent and filters by task; a history of that cell's episodes only (every
  numeric field under ``episode/``, against ``episode``, the episode's index in the cell); a
  summary holding the cell's summary row (``success_rate``, ``latency_ms_mean``, ..., from
  :func:`rapid_env.eval.summary.summarize`, the function behind the printed table); and, for
  recorded episodes, one ``videos`` table (a ``wandb.Video`` per episode) and one ``series`` table
  (every tick of every recorded episode), so the run's keys stay bounded however many episodes
  are recorded;
* **a sweep-level run** (job type ``sweep-summary``): the sweep's lists in a flat config, the
  ``episodes`` and ``summary`` tables, the comparison charts (``charts/<name>`` native,
  ``figures/<name>`` images), ``report.html`` (as W&B HTML) and the results store's files as one
  ``sweep-results`` artifact, and the ``sweep/*`` aggregates.

A cell's run opens with the cell's first new episode and closes as soon as the cell holds all its
seeds, so only a few runs are open at once even in an MT10 sweep. Run ids live in the store's
manifest (``wandb_runs``: one per cell, ``wandb_run_id``: the sweep run), so a resumed sweep logs
into the runs it started.

Offline is the default whenever no API key is configured (:mod:`rapid_env.wandb_mode`), so a sweep
never blocks on a login prompt; ``wandb sync OUT/wandb/offline-run-*`` uploads every run later.
``disabled`` writes nothing and never imports wandb, which is imported lazily because it costs
about a second.
"""

from __future__ import annotations

import io
import json
import math
import secrets
import string
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rapid_env.eval.execute import is_episode_error
from rapid_env.eval.media import load_series, media_for
from rapid_env.eval.summary import CELL_KEYS, summarize, union_columns
from rapid_env.eval.wandb_tables import (
    SWEEP_JOB_TYPE,
    artifact_name,
    cell_config,
    cell_name,
    cell_summary,
    chart_table,
    finite,
    scalar,
    sweep_config,
    table_cell,
    table_row_fields,
)
from rapid_env.record import invalid_reason
from rapid_env.wandb_mode import (
    MODES,
    Mode,
    api_key_configured,
    resolve_entity,
    resolve_mode,
    resolve_project,
    start_run,
    sync_hint,
)

if TYPE_CHECKING:
    from rapid_env.eval.charts import Chart

__all__ = [
    "ARTIFACT_FILES",
    "ARTIFACT_TYPE",
    "CELL_RUNS_KEY",
    "CONFIG_FILE",
    "MODES",
    "SWEEP_JOB_TYPE",
    "SWEEP_RUN_KEY",
    "SweepLogger",
    "api_key_configured",
    "artifact_name",
    "chart_table",
    "resolve_mode",
]

CONFIG_FILE = "rapid_env_config.json"
"""Name of the plain-JSON copy of a run's config written into the run's ``files/`` folder."""

ARTIFACT_TYPE = "sweep-results"
"""W&B artifact type of the results store's files, logged by the sweep run when a sweep ends."""

ARTIFACT_FILES: tuple[str, ...] = (
    "manifest.json", "episodes.jsonl", "summary.json", "summary.csv", "report.html"
)
"""Files of the results store that go into the artifact (those that exist when it closes)."""

REPORT_FILE = "report.html"
"""The sweep's HTML report, logged as ``report`` (W&B HTML) on the sweep run when present."""

CELL_RUNS_KEY = "wandb_runs"
"""Manifest key: ``{"agent|task|noise|link": run id}``, one W&B run per cell."""

SWEEP_RUN_KEY = "wandb_run_id"
"""Manifest key of the sweep-level run's id (the key the single run of a sweep used before)."""

VIDEO_COLUMNS: tuple[str, ...] = ("task", "agent", "noise", "link", "seed", "success", "video",
                                  "still")
"""Columns of a cell run's ``videos`` table."""

_ID_CHARS = string.ascii_lowercase + string.digits


def new_run_id() -> str:
    """A fresh W&B run id (8 lowercase letters and digits, the form wandb makes itself)."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(8))


def _warn(message: str) -> None:
    print(f"rapid-eval: W&B: {message}", file=sys.stderr)


@dataclass
class _Cell:
    """One cell's records and, while it is open, its W&B run."""

    name: str
    parts: dict[str, str]
    expected: int
    records: list[dict[str, Any]] = field(default_factory=list)
    run: Any = None


class SweepLogger:
    """The W&B runs of one sweep: a run per cell and a sweep-level run, in one group.

    Use: :meth:`open` with the store's manifest (assigns and keeps the run ids, opens the sweep
    run), :meth:`preload` the records a resumed store holds, :meth:`log_episode` each new record
    (opens its cell's run, logs it, closes the run once the cell is complete), :meth:`finish` with
    the sweep's summary rows (closes what is open, logs the sweep-level tables, charts, report and
    artifact). Runs land in ``out_dir/wandb/``, next to the store, so a results folder is
    self-contained. In 'disabled' mode wandb is not imported and nothing is written.

    Usable as a context manager: leaving the block on an exception closes every run marked failed
    (exit code 1), so a crashed sweep still leaves readable, syncable runs.
    """

    def __init__(
        self,
        mode: Mode | str | None,
        out_dir: Path,
        *,
        project: str | None = None,
        entity: str | None = None,
        group: str | None = None,
        tags: Sequence[str] = (),
        job_type: str | None = "eval",
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.mode: str = resolve_mode(mode)
        self.project = resolve_project(project)
        self.entity = resolve_entity(entity)
        self.out_dir = Path(out_dir)
        self.group = group or self.out_dir.resolve().name
        """The W&B group of every run of the sweep (default: the results folder's name)."""
        self.tags = tuple(tags)
        self.job_type = job_type
        self.extra_config = dict(extra_config or {})
        self.manifest: dict[str, Any] = {}
        self._cells: dict[str, _Cell] = {}
        self._records: list[dict[str, Any]] = []
        self._run: Any = None
        self._wandb: Any = None
        self._opened = False
        self._finished = False
        self.url: str | None = None
        """The sweep run's web page (online runs only)."""

    # ------------------------------------------------------------------ opening
    @property
    def enabled(self) -> bool:
        """False in 'disabled' mode: nothing is logged, no id is assigned."""
        return self.mode != "disabled"

    def open(self, manifest: dict[str, Any]) -> bool:
        """Set up the sweep's cells from its manifest and open the sweep-level run.

        Gives every cell without a run id one (``manifest["wandb_runs"]``) and the sweep run one
        (``manifest["wandb_run_id"]``), in ``manifest`` itself; returns True when it added any, so
        the caller writes the manifest before an episode runs and a crash still resumes into the
        same runs. Ids are assigned up front, so no manifest write is needed while episodes run.
        """
        if self._opened:
            raise RuntimeError("open() twice")
        self._opened = True
        self.manifest = manifest
        episodes = int(manifest["sweep"]["episodes"])
        for entry in manifest.get("cells", ()):
            task, noise, link, agent = entry["cell"]
            parts = {"task": task, "agent": agent, "noise": noise, "link": link}
            name = cell_name(parts)
            self._cells[name] = _Cell(name, parts, episodes)
        if not self.enabled:
            return False
        changed = False
        ids = manifest.setdefault(CELL_RUNS_KEY, {})
        for name in self._cells:
            if not ids.get(name):
                ids[name] = new_run_id()
                changed = True
        if not manifest.get(SWEEP_RUN_KEY):
            manifest[SWEEP_RUN_KEY] = new_run_id()
            changed = True
        self._run = self._start(
            SWEEP_JOB_TYPE, sweep_config(manifest, self.extra_config),
            f"sweep|{self.out_dir.resolve().name}", manifest[SWEEP_RUN_KEY],
        )
        import wandb  # already imported by start_run

        self._wandb = wandb
        self.url = self._run.url if self.mode == "online" else None
        return changed

    def _start(self, job_type: str | None, config: dict[str, Any], name: str,
               run_id: str) -> Any:
        run = start_run(self.mode, self.out_dir, job_type=job_type, config=config, name=name,
                        group=self.group, tags=self.tags, run_id=run_id, project=self.project,
                        entity=self.entity)
        # a plain-JSON copy of the config: offline runs keep it only inside the binary log
        files_dir = Path(run.dir)
        files_dir.mkdir(parents=True, exist_ok=True)
        (files_dir / CONFIG_FILE).write_text(
            json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
        return run

    @property
    def run_id(self) -> str | None:
        """The sweep-level run's id (None when disabled or not open)."""
        return None if self._run is None else str(self._run.id)

    @property
    def run_ids(self) -> dict[str, str]:
        """Every cell's run id, by ``agent|task|noise|link`` (from the manifest)."""
        return dict(self.manifest.get(CELL_RUNS_KEY, {})) if self.enabled else {}

    @property
    def run_dir(self) -> Path | None:
        """The sweep run's folder (``out_dir/wandb/<offline-|>run-...``), or None when disabled."""
        return None if self._run is None else Path(self._run.dir).parent

    def preload(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Take the records a resumed store holds (summaries and tables, not history again)."""
        if self._records:
            raise RuntimeError("preload() before the first log_episode()")
        for record in records:
            rec = dict(record)
            self._records.append(rec)
            self._cell_of(rec).records.append(rec)

    def _cell_of(self, record: Mapping[str, Any]) -> _Cell:
        name = cell_name(record)
        cell = self._cells.get(name)
        if cell is None:  # a record of a cell the manifest does not list: give it a run too
            parts = {k: str(record[k]) for k in CELL_KEYS}
            episodes = int(self.manifest.get("sweep", {}).get("episodes", 1))
            cell = self._cells[name] = _Cell(name, parts, episodes)
            if self.enabled:
                self.manifest.setdefault(CELL_RUNS_KEY, {}).setdefault(name, new_run_id())
        return cell

    # ------------------------------------------------------------------ episodes
    def log_episode(self, record: Mapping[str, Any]) -> None:
        """Log one new record in its cell's run; close that run once the cell is complete."""
        if self._finished:
            raise RuntimeError("log_episode() after finish(): the W&B runs are already closed")
        rec = dict(record)
        self._records.append(rec)
        cell = self._cell_of(rec)
        cell.records.append(rec)
        if not self.enabled:
            return
        if cell.run is None:
            cell.run = self._open_cell(cell)
        values: dict[str, Any] = {"episode": len(cell.records) - 1}
        for key, value in rec.items():
            number = scalar(value)
            if number is not None:
                values[f"episode/{key}"] = number
        values["episode/faulted"] = int(rec.get("fault") is not None)
        cell.run.log(values)
        if len(cell.records) >= cell.expected:
            self._close_cell(cell, 0)

    def _open_cell(self, cell: _Cell) -> Any:
        run = self._start(self.job_type, cell_config(self.manifest, cell.parts, self.extra_config),
                          cell.name, self.manifest[CELL_RUNS_KEY][cell.name])
        # history against the episode's index in the cell; no per-episode means in the summary:
        # the summary holds the cell's summary row instead
        run.define_metric("episode", summary="none")
        run.define_metric("episode/*", step_metric="episode", summary="none")
        return run

    def _close_cell(self, cell: _Cell, exit_code: int) -> None:
        """Summary row, videos and series tables of the cell; finish its run."""
        run, cell.run = cell.run, None
        try:
            rows = summarize(cell.records)
            if rows:
                values = cell_summary(rows[0])
                values["episode_errors"] = sum(is_episode_error(r) for r in cell.records)
                run.summary.update(values)
            logged = self._media_tables(cell.records)
            if logged:
                run.log(logged)
        except Exception as exc:  # noqa: BLE001 - the cell's history is logged: keep it
            _warn(f"summary or media of {cell.name} left out ({type(exc).__name__}: {exc})")
        finally:
            run.finish(exit_code=exit_code)

    def _media_tables(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``videos`` (a row per recorded episode) and ``series`` (a row per tick) tables."""
        wandb = self._wandb
        videos: list[list[Any]] = []
        series_rows: list[dict[str, Any]] = []
        for record in records:
            media = media_for(record, self.out_dir) if record.get("media") else {}
            if not media:
                continue
            try:
                caption = f"{cell_name(record)} seed {record.get('seed')}"
                video = still = None
                if "video" in media:
                    fmt = "gif" if media["video"].suffix == ".gif" else "mp4"
                    video = wandb.Video(str(media["video"]), caption=caption, format=fmt)
                if "still" in media:
                    still = wandb.Image(str(media["still"]), caption=caption)
                videos.append([record.get(k) for k in VIDEO_COLUMNS[:4]]
                              + [record.get("seed"), bool(record.get("success")), video, still])
                if "series" in media:
                    series_rows.extend(_series_rows(record, media["series"]))
            except Exception as exc:  # noqa: BLE001 - a broken media file must not end a sweep
                _warn(f"media of one episode left out ({type(exc).__name__}: {exc})")
        logged: dict[str, Any] = {}
        if videos:
            logged["videos"] = wandb.Table(columns=list(VIDEO_COLUMNS), data=videos,
                                           allow_mixed_types=True)
        if series_rows:
            logged["series"] = self._table(series_rows)
        return logged

    # ------------------------------------------------------------------ the end
    def _table(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        """A wandb.Table; mixed types allowed since a column may hold None and numbers."""
        flat = [table_row_fields(r) for r in rows]
        columns = union_columns(flat)
        data = [[table_cell(row.get(c)) for c in columns] for row in flat]
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
        """Sweep-level numbers for the sweep run's summary, over every record (resumed too)."""
        records = self._records
        ran = [r for r in records if invalid_reason(r) is None]  # valid: what results rest on
        latencies = [v for r in ran if (v := finite(r.get("latency_ms_mean"))) is not None]
        aggregates: dict[str, Any] = {
            "sweep/episodes": len(records),
            "sweep/cells": len(summary_rows),
            "sweep/success_rate": (
                sum(bool(r.get("success")) for r in ran) / len(ran) if ran else None
            ),
            "sweep/latency_ms_mean": math.fsum(latencies) / len(latencies) if latencies else None,
            "sweep/faults": sum(1 for r in ran if r.get("fault") is not None),
            "sweep/episode_errors": sum(is_episode_error(r) for r in records),
            "sweep/valid": len(ran),
            "sweep/invalid": len(records) - len(ran),
        }
        for row in summary_rows:
            rate = finite(row.get("success_rate"))
            if rate is not None:
                aggregates[f"success_rate/{cell_name(row)}"] = rate
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
            metadata={"episodes": len(self._records), "out": str(self.out_dir),
                      "runs": self.run_ids},
        )
        for path in files:
            artifact.add_file(str(path), name=path.name)
        return artifact

    def _report(self) -> Any:
        path = self.out_dir / REPORT_FILE
        if not path.is_file():
            return None
        return self._wandb.Html(path.read_text(encoding="utf-8"), inject=False)

    def finish(
        self,
        summary_rows: Sequence[Mapping[str, Any]],
        exit_code: int = 0,
        teardown: bool = True,
        paired_rows: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Close the open cell runs; log the sweep run's tables, charts, report and artifact.

        ``paired_rows`` (:func:`rapid_env.eval.paired.paired_rows`, what ``paired.csv`` holds)
        become the sweep run's ``paired`` table: Δ success with its CI per cell against the
        baseline, on the same seeds.

        Charts, the report and the artifact are logged only for a sweep that ended normally
        (``exit_code`` 0); an interrupted one closes its runs as failed and logs them when it is
        resumed. Safe to call twice (the second call does nothing) and in 'disabled' mode.

        ``teardown`` (default True) also shuts down wandb's background service, which is what
        makes the run folders complete when this returns (with wandb 0.31, ``run.finish()`` alone
        can return before the offline ``.wandb`` log is written). It finishes *every* wandb run
        of the process, so pass False if other code in the same process keeps a run open.
        """
        if self._finished:
            return
        self._finished = True
        if not self.enabled:
            return
        try:
            for cell in self._cells.values():
                if cell.run is not None:
                    self._close_cell(cell, exit_code)
            if self._run is None:
                return
            logged: dict[str, Any] = {}
            if self._records:
                logged["episodes"] = self._table(self._records)
            if summary_rows:
                logged["summary"] = self._table(summary_rows)
                if exit_code == 0:
                    logged.update(self._charts(summary_rows))
            if paired_rows:
                logged["paired"] = self._table(paired_rows)
            if exit_code == 0 and (report := self._report()) is not None:
                logged["report"] = report
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
        """Finish every open run and, if asked, wait for wandb's service to write everything."""
        for cell in self._cells.values():  # open only when finish() failed or never ran
            if cell.run is not None:
                cell.run.finish(exit_code=exit_code or 1)
                cell.run = None
        if self._run is None:
            return
        run_dir, url = self.run_dir, self.url
        self._run.finish(exit_code=exit_code)
        if teardown:
            self._wandb.teardown()
        if self.mode == "offline" and run_dir is not None:
            print(f"rapid-eval: W&B runs of group {self.group!r} saved offline; upload them with: "
                  f"wandb sync {run_dir.parent}/offline-run-*", file=sys.stderr)
        elif (hint := sync_hint(self.mode, run_dir, url)) is not None:
            print(f"rapid-eval: {hint} (group {self.group!r})", file=sys.stderr)

    def __enter__(self) -> SweepLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the runs if finish() was not reached; mark them failed on an error."""
        if self._finished:
            return
        if exc_type is None:
            self.finish([])
        else:  # close only: logging more could fail the same way and hide the error
            self._finished = True
            if self.enabled:
                self._close(1, teardown=True)


def _series_rows(record: Mapping[str, Any], path: Path) -> list[dict[str, Any]]:
    """One row per tick of a recorded episode: its seed, ``t`` and every numeric series."""
    series = load_series(path)["series"]
    t = series.get("t", [])
    numeric = [k for k, vs in series.items() if k != "t" and len(vs) == len(t)
               and all(v is None or isinstance(v, int | float) for v in vs)]
    return [{"seed": record.get("seed"), "t": t[i], **{k: series[k][i] for k in numeric}}
            for i in range(len(t))]
