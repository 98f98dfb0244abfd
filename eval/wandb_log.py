"""Weights & Biases logging for a sweep: one W&B run per ``rapid-eval`` invocation.

Offline is the default whenever no API key is configured, so a sweep on a laptop, a CI runner or
an air-gapped cluster never blocks on a login prompt or a network timeout; the run folder can be
uploaded later with ``wandb sync OUT/wandb/offline-run-*``. ``disabled`` writes nothing at all.

``wandb`` is imported lazily, inside the logger, because importing it costs about a second and
pulls in a lot; nothing that does not log should pay for it. ``WANDB_SILENT`` is set so that
wandb's banners do not interleave with the harness's own progress output.
"""

from __future__ import annotations

import json
import math
import netrc
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from rapid_env.eval.summary import CELL_KEYS, union_columns

__all__ = ["MODES", "WandbLogger", "api_key_configured", "resolve_mode"]

CONFIG_FILE = "rapid_env_config.json"
"""Name of the plain-JSON copy of the run config written into the run's ``files/`` folder."""


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


class WandbLogger:
    """One W&B run for one sweep: a scalar point per episode, then two tables at the end.

    Per episode (:meth:`log_episode`): every numeric field (success as 0/1) under ``episode/``,
    with the episode index as the W&B step, so curves over a sweep are readable live online.
    At the end (:meth:`finish`): an ``episodes`` table (one row per record, every field) and a
    ``summary`` table (one row per task x agent x noise x link cell), then the run closes.

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
        if self.mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb  # slow import: only when a run is really made

        self._wandb = wandb
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            mode=self.mode,  # type: ignore[arg-type]
            project=project,
            config=self.config,
            dir=str(self.out_dir),
            name=name,
            id=run_id,
            resume="allow" if run_id else None,
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off"),
        )
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

    def log_episode(self, record: Mapping[str, Any]) -> None:
        """Remember the record for the final table and log its numeric fields as one step."""
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
        self._run.log(scalars, step=len(self._records) - 1)

    def _table(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        """Build a wandb.Table; mixed types allowed since a column may hold None and numbers."""
        columns = union_columns(rows)
        data = [[_cell(row.get(c)) for c in columns] for row in rows]
        return self._wandb.Table(columns=columns, data=data, allow_mixed_types=True)

    def finish(
        self,
        summary_rows: Sequence[Mapping[str, Any]],
        exit_code: int = 0,
        teardown: bool = True,
    ) -> None:
        """Log the episodes and per-cell summary tables, put the cells in the run summary, close.

        Safe to call twice (the second call does nothing) and in 'disabled' mode.

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
            tables: dict[str, Any] = {}
            if self._records:
                tables["episodes"] = self._table(self._records)
            if summary_rows:
                tables["summary"] = self._table(summary_rows)
            if tables:
                self._run.log(tables)
            self._run.summary["episodes_logged"] = len(self._records)
            self._run.summary["cells"] = len(summary_rows)
            for row in summary_rows:
                rate = row.get("success_rate")
                if isinstance(rate, float) and not math.isnan(rate):
                    cell = "/".join(str(row.get(k)) for k in CELL_KEYS)
                    self._run.summary[f"success_rate/{cell}"] = rate
        finally:
            self._close(exit_code, teardown)

    def _close(self, exit_code: int, teardown: bool) -> None:
        """Finish the run and, if asked, wait for wandb's service to write everything out."""
        self._run.finish(exit_code=exit_code)
        if teardown:
            self._wandb.teardown()

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
