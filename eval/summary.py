"""Aggregate per-episode records into one row per task x agent x noise x link cell.

A *record* is the plain dict that ``rapid-eval`` appends to ``episodes.jsonl`` for each finished
episode. A *row* is one cell of the sweep with the episode count, the success rate and its Wilson
95 % interval, and for every numeric field the mean and a 95 % confidence half-width. Rows are
what ``summary.json`` / ``summary.csv`` hold, what the terminal table prints and what W&B logs.

Choices and why:

- Success uses the Wilson score interval, not mean +/- t * s: it stays inside [0, 1] and is not
  degenerate at 0/n or n/n, which is the common case for easy or broken cells.
- Other metrics use the Student-t half-width ``t_{0.975, n-1} * s / sqrt(n)`` because a cell
  usually has few seeds (5-20), where the normal 1.96 would overstate confidence.
- Non-finite values (NaN smoothness from a too-short path, a None latency from an episode that
  never inferred) are left out of the mean and CI *and counted* in ``<metric>_nan``; they are
  never silently dropped.
- Invalid episodes (an infrastructure fault: the server gone, a worker dead, a broken
  checkpoint; :data:`rapid_env.record.FAULT_KINDS_NOTE`) are counted in ``invalid`` and left out
  of everything else: comparing deciders on episodes the infrastructure failed compares nothing.
- Output is deterministic: cells keep first-seen order, columns keep first-seen order, and sums
  use :func:`math.fsum` (exactly rounded), so the numbers do not depend on the order in which
  parallel workers finished their episodes. Wall-clock fields are aggregated like any other
  metric but play no part in ordering.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from rapid_env.eval.pooling import oracle_stats, time_and_stalls
from rapid_env.record import JOB_FIELDS, REQUIRED_FIELDS, invalid_reason

__all__ = [
    "CELL_KEYS",
    "CONFIDENCE",
    "IDENTITY_FIELDS",
    "EPISODE_FIELDS",
    "dedupe",
    "parse_records",
    "scan_records",
    "episode_identity",
    "summarize",
    "t_half_width",
    "wilson_interval",
    "write_summary",
]

CELL_KEYS: tuple[str, ...] = ("task", "agent", "noise", "link")
"""Fields that identify a cell of the sweep; one summary row per distinct combination."""

EPISODE_FIELDS: tuple[str, ...] = REQUIRED_FIELDS
"""Fields every record of an episode that ran carries (the evaluation contract, declared in
:mod:`rapid_env.record`, listed in docs/records.md); records may add the optional ones."""

CONFIDENCE = 0.95
"""Two-sided confidence level of every interval in a summary row."""

# Fields that are not averaged: the job's identity (the seed is an id, not a measurement), success
# (summarised as a proportion), fault (a message, counted) and invalid (a reason, counted).
_NOT_METRICS = frozenset((*JOB_FIELDS, "success", "fault", "invalid"))


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; ``(nan, nan)`` when ``n == 0``.

    Preferred over the normal (Wald) interval because it never leaves [0, 1] and has a sensible
    width at 0 % and 100 % success, which small evaluation cells hit all the time.
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At p = 0 (p = 1) the exact lower (upper) bound is 0 (1); pin it against rounding noise.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def t_half_width(values: Sequence[float], confidence: float = CONFIDENCE) -> float:
    """Half-width of the Student-t confidence interval of the mean; nan for fewer than 2 values."""
    n = len(values)
    if n < 2:
        return math.nan
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    return t * math.sqrt(var) / math.sqrt(n)


def _is_number(value: object) -> bool:
    """Return True for int/float (numpy scalars included) but not bool, which is a flag."""
    if isinstance(value, bool | np.bool_):
        return False
    return isinstance(value, int | float | np.integer | np.floating)


def _as_bool(value: object, index: int) -> bool:
    """Read the success flag strictly: a missing or non-boolean success is a recording bug."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ValueError(f"record {index}: 'success' must be a bool, got {value!r}")


def _metric_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every field that holds a number in at least one record, in first-seen order."""
    keys: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key not in _NOT_METRICS and key not in keys and _is_number(value):
                keys[key] = None
    return list(keys)


def summarize(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate episode records into one row per ``CELL_KEYS`` cell, in first-seen order.

    Each row holds, in this order: the four cell keys; ``episodes`` (records in the cell, valid
    or not); ``valid`` and ``invalid`` (episodes with an infrastructure fault,
    :func:`~rapid_env.record.invalid_reason`); ``seeds`` (distinct seeds, so a duplicated episode
    shows up as ``seeds < episodes``); over the **valid** episodes only: ``successes``,
    ``success_rate``, ``success_ci_low``, ``success_ci_high`` (Wilson 95 %; NaN without a valid
    episode), ``faults`` (valid episodes whose ``fault`` is not None: policy faults), then for
    every numeric field ``m`` found in any record: ``m`` (mean over the finite values), ``m_ci95``
    (t half-width, nan below 2 finite values) and ``m_nan`` (episodes whose value was left out:
    invalid, or missing, None or non-finite; so ``episodes - m_nan`` values make the mean).
    ``time_to_success_s`` is so the mean over the successful episodes, ``time_to_success_n`` of
    them; ``stall_share`` pools stall ticks over ticks. With the oracle, its ratios pooled from
    their counts (``pooled_...``).

    Raises ``ValueError`` naming the record and the field when a cell key or ``success`` is
    missing or malformed, because a mis-recorded episode would otherwise land in a wrong cell,
    and when one episode appears twice (:func:`dedupe`), because it would be counted twice.
    """
    records = list(records)
    _refuse_duplicates(records)
    cells: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for index, record in enumerate(records):
        missing = [key for key in (*CELL_KEYS, "success") if key not in record]
        if missing:
            raise ValueError(
                f"record {index} lacks {missing}; every episode record needs "
                f"{', '.join((*CELL_KEYS, 'success'))}"
            )
        _as_bool(record["success"], index)
        cell = tuple(str(record[key]) for key in CELL_KEYS)
        cells.setdefault(cell, []).append(record)

    metrics = _metric_keys(records)
    rows: list[dict[str, Any]] = []
    for cell, everyone in cells.items():
        members = [r for r in everyone if invalid_reason(r) is None]
        n = len(members)
        successes = sum(_as_bool(r["success"], i) for i, r in enumerate(members))
        low, high = wilson_interval(successes, n)
        row: dict[str, Any] = dict(zip(CELL_KEYS, cell, strict=True))
        row["episodes"] = len(everyone)
        row["valid"] = n
        row["invalid"] = len(everyone) - n
        row["seeds"] = len({repr(r.get("seed")) for r in everyone})
        row["successes"] = successes
        row["success_rate"] = successes / n if n else math.nan
        row["success_ci_low"] = low
        row["success_ci_high"] = high
        row["faults"] = sum(1 for r in members if r.get("fault") is not None)
        for key in metrics:
            finite: list[float] = []
            for record in members:
                value: Any = record.get(key)
                if _is_number(value) and math.isfinite(float(value)):
                    finite.append(float(value))
            row[key] = math.fsum(finite) / len(finite) if finite else math.nan
            row[f"{key}_ci95"] = t_half_width(finite)
            row[f"{key}_nan"] = len(everyone) - len(finite)  # invalid ones are left out too
        row.update(_pooled_time(members))
        row.update(_pooled_oracle(members))
        rows.append(row)
    return rows


_NONREDUNDANT = "oracle_nonredundant_"


def _pooled_time(members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How many successes ``time_to_success_s`` is a mean over, and the pooled stall share.

    ``time_to_success_s`` above is already the mean over the successful episodes (a failed one
    has None); ``time_to_success_n`` says how many. ``stall_share`` is the cell's stall ticks
    over its ticks (NaN when a record lacks them), not a mean of per-episode shares.
    """
    pooled = time_and_stalls(members)
    share = pooled["stall_share"]
    return {"time_to_success_n": pooled["time_to_success_n"],
            "stall_share": math.nan if share is None else share}


def _pooled_oracle(members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The oracle's ratios pooled from their counts over the cell (empty without the oracle).

    The per-episode means above weigh a 20-tick episode like a 200-tick one; these pool the
    counts, so ``pooled_trigger_precision_<tol>`` is the cell's hits over its requests.
    """
    tols = sorted(
        {k[len(_NONREDUNDANT):] for r in members for k in r if k.startswith(_NONREDUNDANT)}
    )
    out: dict[str, Any] = {}
    for name in tols:
        st = oracle_stats(members, float(name))
        out[f"pooled_redundant_share_{name}"] = st["redundant_share"]
        out[f"pooled_trigger_precision_{name}"] = st["precision"]
        out[f"pooled_trigger_recall_{name}"] = st["recall"]
        for key in ("redundant_of_cached", "precision_eligible", "chance_eligible",
                    "event_recall", "event_lead_ticks"):
            value = st[key]
            out[f"pooled_{key}_{name}"] = math.nan if value is None else value
    if tols:
        st = oracle_stats(members, float(tols[0]))
        for key in ("cached_ticks", "stall_ticks", "noise_floor", "drift_median"):
            out[f"pooled_oracle_{key}"] = math.nan if st[key] is None else st[key]
    return out


LineProblem = tuple[int, str]
"""A line of ``episodes.jsonl`` that holds no usable record: its 1-based number and why."""


def scan_records(
    data: str | bytes,
) -> tuple[list[tuple[int, dict[str, Any]]], list[LineProblem]]:
    """The JSON object lines of ``episodes.jsonl`` with their line numbers, and the bad lines.

    The one tolerant reader of a store's records, for the store itself
    (:class:`~rapid_env.eval.store.ResultsStore`) and for the readers that must not touch it
    (the report, ``rapid-paper``), so all of them skip and name the same lines. It never raises:
    a line that is not valid UTF-8, not JSON, or JSON but not an object (an array, a number) is
    a problem with its line number, and so is a torn last line (no newline, not parseable: a
    crash mid-write, which the store cuts when it reopens). A complete object on an unterminated
    last line is a record (a file written by hand, or shipped without its final newline).

    Args:
        data: the file's bytes (decoded line by line, so one bad byte costs one line) or text.
    """
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    lines = raw.split(b"\n")
    terminated = len(lines) - 1  # the part after the last newline is not a terminated line
    records: list[tuple[int, dict[str, Any]]] = []
    problems: list[LineProblem] = []
    for index, chunk in enumerate(lines):
        number = index + 1
        if not chunk.strip():
            continue
        torn = index >= terminated
        try:
            record = json.loads(chunk.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problems.append((number, f"not UTF-8 text (byte {exc.start + 1})"))
            continue
        except json.JSONDecodeError as exc:
            problems.append((number, "torn last line (a crash mid-write)" if torn
                             else f"not JSON ({exc.msg}, column {exc.colno})"))
            continue
        if not isinstance(record, dict):
            problems.append((number, f"a JSON {_json_kind(record)}, not a record (an object)"))
            continue
        records.append((number, record))
    return records, problems


def _json_kind(value: Any) -> str:
    kinds = ((list, "array"), (str, "string"), (bool, "boolean"), (int | float, "number"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def parse_records(data: str | bytes) -> tuple[list[dict[str, Any]], int]:
    """The JSON object lines of ``episodes.jsonl`` in file order, and the lines skipped.

    For readers that must not touch the store (the report, ``rapid-paper``): every line
    :func:`scan_records` finds no record in is skipped and counted, never repaired
    (:class:`~rapid_env.eval.store.ResultsStore` cuts a torn line when it reopens the store).
    """
    records, problems = scan_records(data)
    return [record for _, record in records], len(problems)


IDENTITY_FIELDS: tuple[str, ...] = tuple(k for k in JOB_FIELDS if k != "episode_key")
"""What identifies an episode in records that predate ``episode_key`` (older stores)."""


def episode_identity(record: Mapping[str, Any]) -> str:
    """The record's ``episode_key``, or for older records its cell, seed and model setup."""
    key = record.get("episode_key")
    if isinstance(key, str):
        return key
    return json.dumps([record.get(k) for k in IDENTITY_FIELDS], default=str)


def dedupe(records: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """The records with each episode once, and how many duplicates were dropped.

    Which copy counts: a valid one over an invalid one (a rerun replaces an episode the
    infrastructure failed), the first of several valid ones, the last of invalid ones (the
    latest try says why it is still invalid); only copies of a valid record count as dropped,
    since a rerun is meant to leave invalid tries behind. The kept copy takes the place of the
    episode's first record, so cells and rows keep their first-seen order.
    """
    slot: dict[str, int] = {}
    unique: list[Mapping[str, Any]] = []
    dropped = 0
    for record in records:
        key = episode_identity(record)
        if key not in slot:
            slot[key] = len(unique)
            unique.append(record)
            continue
        if invalid_reason(unique[slot[key]]) is not None:
            unique[slot[key]] = record  # a rerun of an invalid episode: expected, not counted
        else:
            dropped += 1
    return unique, dropped


def _refuse_duplicates(records: Sequence[Mapping[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        key = episode_identity(record)
        if key in seen:
            cell = "/".join(str(record.get(k)) for k in CELL_KEYS)
            raise ValueError(
                f"records {seen[key]} and {index} are the same episode ({cell}, seed "
                f"{record.get('seed')}); it would be counted twice: dedupe the records first"
            )
        seen[key] = index


def union_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Union of the rows' keys in first-seen order (a stable CSV header)."""
    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, None)
    return list(columns)


def _json_safe(value: Any) -> Any:
    """Map non-finite floats to None so that summary.json is strict JSON (NaN is not JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic_write(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a crash never leaves half a summary."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a summary is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_summary(rows: Sequence[Mapping[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """Write ``out_dir/summary.json`` and ``out_dir/summary.csv``; return their paths.

    JSON: the list of rows, indent 2, NaN written as ``null`` (strict JSON, loads anywhere).
    CSV: header is the union of the rows' keys in first-seen order; NaN and missing values are
    empty cells (what pandas and spreadsheets read as missing). Both files are replaced
    atomically, and ``out_dir`` is created if needed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    safe_rows = [{key: _json_safe(value) for key, value in row.items()} for row in rows]

    json_path = out_dir / "summary.json"
    _atomic_write(json_path, json.dumps(safe_rows, indent=2, allow_nan=False) + "\n")

    columns = union_columns(rows)
    csv_path = out_dir / "summary.csv"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in safe_rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    _atomic_write(csv_path, buffer.getvalue())
    return json_path, csv_path
