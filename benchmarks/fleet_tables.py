"""The fleet tables in docs/paper.md and docs/fleet.md, from the folders the run scripts write.

Usage::

    python benchmarks/fleet_tables.py table1 docs/results/fleet/table1 [GPU_ONLY_DIR]
    python benchmarks/fleet_tables.py replay docs/results/fleet/replay-check

``table1``: per scheme and scene, the chunk latency (mean over every delivered chunk of every
robot, and p95), offloads per second per robot and success, for each fleet size, read from each
fleet folder's ``episodes.jsonl`` (or the shipped ``episodes.jsonl.gz``) and ``fleets.jsonl``.
``replay``: the closed-loop fleets against the replays of three recordings, p95 and its error.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

SCHEMES = (("vision-", "vision-triggered (early exit)"),
           ("vision-cross-", "vision-triggered (crosses)"), ("rapid-", "RAPID"))
SCENES = (("clean", "standard"), ("visual-noise", "visual-noise"),
          ("interference", "interference"))


def _fleets(folder: Path) -> dict[int, dict[str, Any]]:
    """Per fleet size: pooled latency mean, p95, offloads/s per robot, success."""
    out: dict[int, dict[str, Any]] = {}
    if not (folder / "fleets.jsonl").exists():
        return out
    rows = [json.loads(x) for x in (folder / "fleets.jsonl").read_text().splitlines() if x]
    plain, packed = folder / "episodes.jsonl", folder / "episodes.jsonl.gz"
    text = plain.read_text() if plain.exists() else gzip.decompress(packed.read_bytes()).decode()
    records = [json.loads(x) for x in text.splitlines() if x]
    for row in rows:
        mine = [r for r in records if r.get("fleet_key") == row["fleet_key"]]
        n = sum(r["latency_n"] for r in mine)
        mean = sum((r["latency_ms_mean"] or 0) * r["latency_n"] for r in mine) / n if n else None
        offl = sum(r["offloads"] / r["sim_time_s"] for r in mine) / len(mine)
        out[row["robots"]] = {"mean": mean, "p95": row["latency_ms_p95"], "offl": offl,
                              "success": row["success"], "util": row["gpu_util"]}
    return out


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def table1(folder: Path, gpu_only: Path | None) -> str:
    """Table I under load: one row per scheme and scene, one column group per fleet size."""
    sizes = (1, 8, 32)
    head = ("| scheme / scene | " + " | ".join(f"{n} robot{'s' * (n > 1)}" for n in sizes)
            + (" | 8 / 32 robots, GPU only (no cell) |" if gpu_only else " |"))
    lines = [head, "|" + "---|" * (len(sizes) + 1 + bool(gpu_only))]
    for prefix, scheme in SCHEMES:
        for scene, label in SCENES:
            got = _fleets(folder / f"{prefix}{scene}")
            if not got:
                continue
            cells = []
            for n in sizes:
                g = got.get(n)
                cells.append("-" if g is None else
                             f"{_ms(g['mean'])} / {_ms(g['p95'])} ms, {g['offl']:.2f}/s, "
                             f"{100 * g['success']:.0f} %")
            if gpu_only is not None:
                alone = _fleets(gpu_only / f"{prefix}{scene}")
                cells.append(" ; ".join(
                    f"{_ms(alone[n]['mean'])} / {_ms(alone[n]['p95'])} ms, "
                    f"{100 * alone[n]['success']:.0f} %" for n in (8, 32) if n in alone) or "-")
            lines.append(f"| {scheme} / {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replay(folder: Path) -> str:
    """Closed-loop fleets against replays: p95, and the replay's error relative to them."""
    lines = ["| robots / GPUs | decider | closed loop p50 / p95 ms | req/s | "
             "replay of itself (fixed; reactive) | replay of the unqueued 32 (fixed; reactive) "
             "| copies of the 8 on one GPU (fixed; reactive) |", "|" + "---|" * 7]
    for n, m in ((8, 1), (16, 2), (32, 4)):
        closed = folder / f"closed-{n}" / "fleets.jsonl"
        if not closed.exists():
            continue
        for row in (json.loads(x) for x in closed.read_text().splitlines() if x):
            agent, p95 = row["agent"], row["latency_ms_p95"]
            cells = []
            for source in (f"closed-{n}", "recorded", "closed-8"):
                parts = []
                for mode in ("fixed", "reactive"):
                    path = folder / f"replay-{n}-from-{source}-{mode}" / "replay_summary.json"
                    if not path.exists():
                        parts.append("-")
                        continue
                    rep = next(r for r in json.loads(path.read_text()) if r["agent"] == agent)
                    err = 100 * (rep["latency_ms_p95"] - p95) / p95
                    parts.append(f"{rep['latency_ms_p95']:.0f} ({err:+.0f} %)")
                cells.append("; ".join(parts))
            lines.append(f"| {n} / {m} | {agent} | {row['latency_ms_p50']:.0f} / {p95:.0f} | "
                         f"{row['requests_per_s']:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the table asked for."""
    if len(argv) < 2 or argv[0] not in ("table1", "replay"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "table1":
        print(table1(Path(argv[1]), Path(argv[2]) if len(argv) > 2 else None))
    else:
        print(replay(Path(argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
