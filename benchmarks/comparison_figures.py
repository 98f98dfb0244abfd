"""Draw the figures of docs/comparison.md from the shipped records (docs/results/).

The records are summarised with ``rapid_env.eval.summary.summarize`` (one row per task x agent x
noise x link cell) and drawn with the charts ``rapid-eval`` puts in every sweep's report
(``rapid_env.eval.charts``), so a figure here and the same chart of a new sweep read alike:

* ``offload_rate_by_noise.png``: offloads per simulated second against the scene class on
  ``wifi``, for the agents of the doc's offload table (RAPID's first claim at a glance);
* ``success_rapid_vs_cloud.png``: success of RAPID and cloud-only, by scene class and link;
* ``latency_breakdown.png``: where a request's time goes (edge, uplink, cloud, downlink), per
  agent and link.

Example:
    .venv/bin/python benchmarks/comparison_figures.py   # writes docs/figures/*.png
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compare_report import load

from rapid_env.eval.charts import Chart, render_png, sweep_charts
from rapid_env.eval.summary import summarize

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "docs" / "results" / "comparison_episodes.jsonl.gz"
OUT = ROOT / "docs" / "figures"

AGENTS = ("rapid", "cloud-only", "static-split", "bandwidth-adaptive", "chunk-threshold",
          "periodic", "learned", "vision-entropy", "edge-only")
"""The doc's order: RAPID, the cloud refillers, the learned decider, the edge-bound ones."""
NOISES = ("clean", "visual-noise", "interference")
LINKS = ("wifi", "5g-driving")


def _ordered(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows in the doc's order (agents, noises, links as above), tasks as recorded."""
    def rank(values: Sequence[str], value: Any) -> int:
        return values.index(value) if value in values else len(values)

    return sorted(rows, key=lambda r: (rank(AGENTS, r["agent"]), rank(NOISES, r["noise"]),
                                       rank(LINKS, r["link"])))


def _chart(rows: Sequence[Mapping[str, Any]], name: str) -> Chart:
    for chart in sweep_charts(rows):
        if chart.name == name:
            return chart
    raise SystemExit(f"comparison_figures: the records give no {name} chart")


def figures(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[Chart, float, float]]:
    """The figures by file name, each with its smallest size in inches."""
    rows = _ordered(summarize(records))

    offload_agents = ("rapid", "cloud-only", "learned", "vision-entropy", "edge-only")
    offload = _chart([r for r in rows if r["link"] == "wifi" and r["agent"] in offload_agents],
                     "offload_rate_by_noise")
    offload = dataclasses.replace(
        offload, title="Offloads per simulated second by scene class (link wifi, pooled over "
        "10 tasks): RAPID stays flat, the vision trigger follows the noise")

    success = _chart([r for r in rows if r["agent"] in ("rapid", "cloud-only")],
                     "success_by_agent")
    success = dataclasses.replace(
        success, title="Success of RAPID and cloud-only by scene class and link (pooled over "
        "10 tasks, 160 episodes a bar; whiskers: Wilson 95 % CI)")

    latency = _chart(rows, "latency_breakdown_by_agent")
    return {
        "offload_rate_by_noise.png": (offload, 7.0, 4.0),
        "success_rapid_vs_cloud.png": (success, 7.0, 4.0),
        "latency_breakdown.png": (latency, 7.0, 4.2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the figures and print their paths and sizes."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--records", type=Path, nargs="+", default=[RECORDS],
                   help="episodes.jsonl files (.gz allowed; default the shipped comparison)")
    p.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs (docs/figures)")
    args = p.parse_args(argv)
    missing = [str(f) for f in args.records if not f.is_file()]
    if missing:
        p.error(f"no such file: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (chart, width, height) in figures(load(args.records)).items():
        path = args.out / name
        path.write_bytes(render_png(chart, width, height))
        print(f"{path} ({path.stat().st_size / 1024:.0f} KB)", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
