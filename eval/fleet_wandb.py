"""A fleet sweep's (or capacity search's) W&B run: its table, and latency p95 against N.

One run per ``rapid-fleet`` command, job type ``fleet`` (``fleet-capacity`` for a capacity
search), offline unless an API key is configured: the summary rows as a ``fleets`` table (the
capacity rows as ``capacity``, with ``robots_per_gpu`` per decider in the run summary), and a
``latency_p95_vs_robots`` line chart per decider and link.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rapid_env.wandb_mode import resolve_mode, start_run

__all__ = ["log_fleet"]


def log_fleet(
    out: Path,
    rows: Sequence[dict[str, Any]],
    *,
    capacity: bool,
    mode: str | None,
    project: str | None,
    command: str,
) -> str | None:
    """Log the rows; return the run's folder (None when W&B is disabled)."""
    resolved = resolve_mode(mode)
    job_type = "fleet-capacity" if capacity else "fleet"
    run = start_run(resolved, out, job_type=job_type, config={"command": command},
                    name=f"{out.name}-{job_type}", project=project)
    if run is None:
        return None
    import wandb  # already imported by start_run

    try:
        flat = [{k: v for k, v in row.items() if not isinstance(v, dict)} for row in rows]
        columns = list(dict.fromkeys(k for row in flat for k in row))
        table = wandb.Table(columns=list[str | int](columns),
                            data=[[row.get(c) for c in columns] for row in flat])
        run.log({"capacity" if capacity else "fleets": table})
        curves = _curves(rows, capacity)
        if curves:
            data = [[name, n, p95] for name, points in curves.items() for n, p95 in points]
            curve = wandb.Table(columns=["fleet", "robots", "latency_ms_p95"], data=data)
            run.log({"latency_p95_vs_robots": wandb.plot.line(
                curve, "robots", "latency_ms_p95", stroke="fleet",
                title="chunk latency p95 vs robots per cloud")})
        if capacity:
            run.summary.update({f"robots_per_gpu/{r['agent']}|{r['link']}": r["robots_per_gpu"]
                                for r in rows})
        return str(Path(run.dir).parent)
    finally:
        run.finish()


def _curves(rows: Sequence[dict[str, Any]], capacity: bool) -> dict[str, list[tuple[int, float]]]:
    """Per decider and link: (robots, latency p95) points, by robots."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        name = f"{row['agent']} | {row['link']}"
        if capacity:
            points = [(int(n), p["latency_ms_p95"]) for n, p in row["probes"].items()
                      if p["latency_ms_p95"] is not None]
        elif row.get("latency_ms_p95") is not None:
            points = [(int(row["robots"]), row["latency_ms_p95"])]
        else:
            points = []
        curves.setdefault(name, []).extend(points)
    return {k: sorted(v) for k, v in curves.items() if v}
