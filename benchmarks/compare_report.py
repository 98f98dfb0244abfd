"""Turn decider-comparison sweeps (``episodes.jsonl``, plain or gzipped) into markdown tables.

Why a script and not a notebook: the tables in docs/comparison.md must be reproducible from the
raw records shipped next to them (docs/results/), with one command.

Tables, pooled over tasks and paired seeds for each link x noise:

1. per agent: success rate with its Wilson 95 % interval, mean chunk latency, inferences and
   offloads per episode, stall ticks, RMS jerk, MB on the link, preemptions and
   ``decision_overhead_pct``;
2. paired success difference of ``--reference`` (default ``rapid``) minus each other agent, over
   the (task, seed) pairs both ran, with a 95 % t-interval;
3. offloads per simulated second by noise for every agent (does visual noise move the decision?
   per second, because failing episodes run longer and so ask more often per episode);
4. success per task and agent, for each link x noise (where does a decider win or lose?).

Example:
    python benchmarks/compare_report.py docs/results/comparison_episodes.jsonl.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rapid_env.eval.summary import dedupe, t_half_width, wilson_interval
from rapid_env.record_metrics import offload_rate


def load(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Records of every file, in file order (``.gz`` files are decompressed), each episode once.

    An episode that appears twice (a rerun appended to an old store, two files that overlap)
    is counted once; the first copy is kept and the number dropped is said on stderr.
    """
    out: list[dict[str, Any]] = []
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            out.extend(json.loads(line) for line in fh if line.strip())
    unique, dropped = dedupe(out)
    if dropped:
        print(f"compare_report: dropped {dropped} duplicated episode record(s)", file=sys.stderr)
    return [dict(r) for r in unique]


def _mean(rs: Sequence[dict[str, Any]], key: str) -> float:
    vals = [float(r[key]) for r in rs if r.get(key) is not None]
    return float(np.mean(vals)) if vals else float("nan")


def _order(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def agent_table(rs_by_agent: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Table 1 for one link x noise."""
    lines = [
        "| agent | n | success [95 % CI] | latency ms | inferences | offloads | stall ticks "
        "| RMS jerk | MB | preemptions | overhead % |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for agent, rs in rs_by_agent.items():
        k = sum(bool(r["success"]) for r in rs)
        lo, hi = wilson_interval(k, len(rs))
        mb = (_mean(rs, "bytes_up") + _mean(rs, "bytes_down")) / 1e6
        lines.append(
            f"| {agent} | {len(rs)} | {k / len(rs):.2f} [{lo:.2f}, {hi:.2f}] "
            f"| {_mean(rs, 'latency_ms_mean'):.0f} | {_mean(rs, 'inferences'):.1f} "
            f"| {_mean(rs, 'offloads'):.1f} | {_mean(rs, 'stall_steps'):.1f} "
            f"| {_mean(rs, 'rms_jerk'):.0f} | {mb:.2f} | {_mean(rs, 'preemptions'):.1f} "
            f"| {_mean(rs, 'decision_overhead_pct'):.2f} |"
        )
    return lines


def paired_table(rs_by_agent: dict[str, list[dict[str, Any]]], reference: str) -> list[str]:
    """Table 2: success(reference) - success(other) over shared (task, seed) pairs."""
    if reference not in rs_by_agent:
        return [f"(no `{reference}` episodes in this cell)"]
    ref = {(r["task"], r["seed"]): float(bool(r["success"])) for r in rs_by_agent[reference]}
    lines = [f"| {reference} minus | pairs | success difference [95 % CI] |",
             "| --- | ---: | --- |"]
    for agent, rs in rs_by_agent.items():
        if agent == reference:
            continue
        diffs = [ref[(r["task"], r["seed"])] - float(bool(r["success"]))
                 for r in rs if (r["task"], r["seed"]) in ref]
        if not diffs:
            continue
        m, h = float(np.mean(diffs)), t_half_width(diffs)
        lines.append(f"| {agent} | {len(diffs)} | {m:+.3f} [{m - h:+.3f}, {m + h:+.3f}] |")
    return lines




def offload_by_noise(records: Sequence[dict[str, Any]], link: str) -> list[str]:
    """Table 3: offloads per simulated second by noise, one row per agent."""
    noises = _order(r["noise"] for r in records)
    agents = sorted(_order(r["agent"] for r in records))
    lines = ["| agent | " + " | ".join(noises) + " |", "| --- |" + " ---: |" * len(noises)]
    for agent in agents:
        cells = []
        for noise in noises:
            rs = [r for r in records if r["agent"] == agent and r["noise"] == noise
                  and r["link"] == link]
            rate = offload_rate(rs)
            cells.append("" if not rs else "nan" if rate is None else f"{rate:.2f}")
        lines.append(f"| {agent} | " + " | ".join(cells) + " |")
    return lines


def per_task_success(rs_by_agent: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Table 4 for one link x noise: success rate per task (rows) and agent (columns)."""
    agents = list(rs_by_agent)
    tasks = _order(r["task"] for rs in rs_by_agent.values() for r in rs)
    lines = ["| task | " + " | ".join(agents) + " |", "| --- |" + " ---: |" * len(agents)]
    for task in tasks:
        cells = []
        for agent in agents:
            rs = [r for r in rs_by_agent[agent] if r["task"] == task]
            cells.append(f"{np.mean([bool(r['success']) for r in rs]):.2f}" if rs else "")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return lines


def report(records: Sequence[dict[str, Any]], reference: str) -> str:
    """All tables as one markdown string."""
    seeds: dict[str, set[int]] = defaultdict(set)
    for r in records:
        seeds[r["task"]].add(int(r["seed"]))
    per_task = ", ".join(f"{t} {min(s)}-{max(s)}" for t, s in seeds.items())
    out = [f"{len(records)} episodes. Paired seeds per task: {per_task}.", ""]
    cells: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    # reference first, then alphabetical: parallel sweeps write records in completion order
    for r in sorted(records, key=lambda r: (r["agent"] != reference, r["agent"])):
        cells[(r["link"], r["noise"])][r["agent"]].append(r)
    for (link, noise), by_agent in cells.items():
        out += [f"### link `{link}`, noise `{noise}`", "", *agent_table(by_agent), ""]
        out += [*paired_table(by_agent, reference), ""]
    for link in _order(r["link"] for r in records):
        out += [f"### offloads per simulated second by noise, link `{link}`", ""]
        out += [*offload_by_noise(records, link), ""]
    for (link, noise), by_agent in cells.items():
        out += [f"### success per task, link `{link}`, noise `{noise}`", ""]
        out += [*per_task_success(by_agent), ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report for the given episode files."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("files", nargs="+", type=Path, help="episodes.jsonl files (.gz allowed)")
    p.add_argument("--reference", default="rapid", help="agent of the paired differences")
    args = p.parse_args(argv)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        p.error(f"no such file: {', '.join(missing)}")
    print(report(load(args.files), args.reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
