"""A fleet sweep's folder: every robot's record, one row per fleet, resumable.

``OUT/episodes.jsonl`` holds every robot's record of every finished fleet (the single-robot
record plus the fleet fields), ``OUT/fleets.jsonl`` one summary row per finished fleet (its
``fleet_key`` digests the fleet's settings and the sweep's), and ``OUT/fleet_summary.json`` /
``.csv`` the rows of the fleets this command asked for. A fleet is appended as a whole when it
ends, so an interrupted sweep keeps every finished fleet, and the same command run again skips
them. ``OUT/requests.jsonl`` holds each fleet's per-robot request timelines (send time on the
fleet's clock, split, and the seconds of edge compute and transfer around each cloud stage, for
every request that reached the cloud): what a trace-driven replay (``rapid-fleet --replay OUT``)
or a real server's benchmark is driven with.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rapid_env.eval.fleet import FleetJob, fleet_key
from rapid_env.fleet.transport import RequestTrace

__all__ = ["FleetStore"]


class FleetStore:
    """The folder's files (see the module docstring)."""

    def __init__(self, out: Path, overwrite: bool = False) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.episodes = out / "episodes.jsonl"
        self.fleets = out / "fleets.jsonl"
        self.requests = out / "requests.jsonl"
        if overwrite:
            for path in (self.episodes, self.fleets, self.requests):
                path.unlink(missing_ok=True)
        self.rows: dict[str, dict[str, Any]] = {}
        if self.fleets.exists():
            for line in self.fleets.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[row["fleet_key"]] = row

    def done(self, job: FleetJob) -> dict[str, Any] | None:
        """The stored row of ``job``'s fleet, if it already ran."""
        return self.rows.get(fleet_key(job))

    def add(
        self,
        job: FleetJob,
        row: dict[str, Any],
        records: Sequence[dict[str, Any]],
        timelines: Sequence[Sequence[RequestTrace]] = (),
        horizon_s: float | None = None,
    ) -> dict[str, Any]:
        """Append a finished fleet: its records, its request timelines, then its row."""
        key = fleet_key(job)
        row = {"fleet_key": key, **row}
        with self.episodes.open("a") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
        if timelines:
            with self.requests.open("a") as f:
                f.write(json.dumps({
                    "fleet_key": key, **{k: row[k] for k in ("agent", "link", "robots", "gpus",
                                                             "cell") if k in row},
                    "horizon_s": horizon_s,
                    "model": {k: getattr(job.sweep.base, k) for k in (
                        "profile", "edge", "cloud", "placement", "loop_cost")},
                    "timelines": [[[r.t, r.split, list(r.gaps), r.back] for r in robot]
                                  for robot in timelines],
                }) + "\n")
        with self.fleets.open("a") as f:
            f.write(json.dumps(row) + "\n")
        self.rows[key] = row
        return row

    def write_summary(self, rows: Sequence[dict[str, Any]]) -> None:
        """``fleet_summary.json`` and ``.csv``: the rows given, in order."""
        (self.out / "fleet_summary.json").write_text(json.dumps(list(rows), indent=1) + "\n")
        columns = list(dict.fromkeys(k for row in rows for k in row))
        with (self.out / "fleet_summary.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
