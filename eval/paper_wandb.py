"""``rapid-paper``'s tables in W&B: one run beside the five sweeps' runs, in the same group.

Each table (``table1`` ... ``trigger``) becomes a ``wandb.Table`` with one column per field
(``ours.latency_ms_mean``, ``paper.latency_ms_mean``, ``ratio.latency_ms_mean``, ...), the two
table files go up as a ``paper-tables`` artifact, and the headline numbers land in the run's
summary (``table3/RAPID/latency_ms_mean`` ...), so the comparison can be read where the sweeps are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rapid_env.eval.wandb_log import artifact_name
from rapid_env.wandb_mode import finish_run, resolve_mode, start_run

TABLE_KEYS: tuple[str, ...] = ("table1", "table2", "table3", "trigger")
HEADLINE_FIELDS: tuple[str, ...] = ("latency_ms_mean", "latency_ms_std", "success",
                                    "redundant_share", "precision", "recall")


def flatten(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns ``row``, ``ours.*``, ``paper.*``, ``ratio.*`` (first-seen order) and the data."""
    columns: dict[str, None] = {"row": None}
    for part in ("ours", "paper", "ratio"):
        for row in rows:
            for key in row.get(part, {}):
                columns[f"{part}.{key}"] = None
    names = list(columns)
    data = []
    for row in rows:
        values: list[Any] = [row["row"]]
        for name in names[1:]:
            part, key = name.split(".", 1)
            value = row.get(part, {}).get(key)
            values.append(value if value is None or isinstance(value, int | float | str)
                          else str(value))
        data.append(values)
    return names, data


def headline(tables: Mapping[str, Any]) -> dict[str, float]:
    """``<table>/<row>/<field>`` for the headline fields of every row (numbers only)."""
    out: dict[str, float] = {}
    for key in TABLE_KEYS:
        for row in tables.get(key, ()):
            for field in HEADLINE_FIELDS:
                value = row.get("ours", {}).get(field)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out[f"{key}/{row['row']}/{field}"] = float(value)
    return out


def log_tables(mode: str | None, out: Path, tables: Mapping[str, Any], group: str) -> str | None:
    """Log the tables as one W&B run; print and return where to see it (None when disabled).

    The run goes to ``$WANDB_PROJECT`` / ``$WANDB_ENTITY`` when set (through
    :func:`~rapid_env.wandb_mode.start_run`, like the five sweeps' runs), else to ``rapid-env``.
    """
    resolved = resolve_mode(mode)
    run = start_run(resolved, out, job_type="paper-tables", config=dict(tables.get("meta", {})),
                    name=f"{out.name}-tables", group=group)
    if run is None:
        return None
    import wandb  # already imported by start_run

    try:
        logged = {}
        for key in TABLE_KEYS:
            columns, data = flatten(tables.get(key, []))
            logged[key] = wandb.Table(columns=list[str | int](columns), data=data)
        run.log(logged)
        run.summary.update(headline(tables))
        _log_files(run, out, "paper-tables", ("paper_tables.md", "paper_tables.json"))
    except BaseException:
        finish_run(run, resolved, "rapid-paper", exit_code=1)
        raise
    return finish_run(run, resolved, "rapid-paper")


def log_sensitivity(mode: str | None, out: Path, result: Mapping[str, Any],
                    group: str) -> str | None:
    """Log ``rapid-paper --readings``' result as one W&B run beside its sweeps' runs.

    The rows (one per claim and reading: the reading's axes, ``ours``, ``paper``, ``holds``) as
    a ``wandb.Table``, each claim's count of readings where it holds in the summary
    (``claims/<claim>/holds_in``), and both files as a ``sensitivity`` artifact.
    """
    resolved = resolve_mode(mode)
    run = start_run(resolved, out, job_type="sensitivity", config=dict(result.get("meta", {})),
                    name=f"{out.name}-sensitivity", group=group)
    if run is None:
        return None
    import wandb  # already imported by start_run

    try:
        rows = result.get("rows", [])
        columns = list(dict.fromkeys(k for row in rows for k in row))
        data = [[row.get(c) for c in columns] for row in rows]
        run.log({"sensitivity": wandb.Table(columns=list[str | int](columns), data=data)})
        summary: dict[str, Any] = {}
        for claim in result.get("claims", []):
            summary[f"claims/{claim['claim']}/holds_in"] = len(claim["holds_in"])
            summary[f"claims/{claim['claim']}/fails_in"] = len(claim["fails_in"])
        best = result.get("best_match")
        if best:
            summary["best_match/reading"] = best["reading"]
            summary["best_match/table3_distance"] = best["table3_distance"]
        run.summary.update(summary)
        _log_files(run, out, "sensitivity", ("sensitivity.md", "sensitivity.json"))
    except BaseException:
        finish_run(run, resolved, "rapid-paper", exit_code=1)
        raise
    return finish_run(run, resolved, "rapid-paper")


def _log_files(run: Any, out: Path, kind: str, names: Sequence[str]) -> None:
    """The files of ``out`` that exist, as one artifact of type ``kind`` named after ``out``."""
    import wandb  # already imported by start_run

    artifact = wandb.Artifact(f"{artifact_name(out)}-{kind}", type=kind)
    for name in names:
        if (out / name).exists():
            artifact.add_file(str(out / name))
    run.log_artifact(artifact)
