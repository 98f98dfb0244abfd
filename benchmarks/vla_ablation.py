"""One row of the executable-VLA ablation: train on a slice of a demo set, evaluate, append a row.

Every row trains on the *same* recorded episodes (``DemoSet.select`` picks tasks and cameras), for
the same number of steps on one thread, and is evaluated at zero latency on the same held-out
seeds, so the rows differ only in what the row names::

    python benchmarks/vla_ablation.py --data abl.npz --cameras main --out rows.jsonl
    python benchmarks/vla_ablation.py --table rows.jsonl   # the rows as a markdown table

A row with ``--noise fog:2`` also evaluates under that (held-out) corruption.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from rapid_env.agents.vla.demos import DemoSet
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.train import evaluate, train


def run_row(a: argparse.Namespace) -> dict[str, object]:
    """Train and evaluate one configuration; the row as a dict."""
    torch.set_num_threads(a.threads)
    tasks = a.tasks.split(",")
    data = DemoSet.load(a.data).select(tasks, a.cameras.split(","))
    t0 = time.perf_counter()
    model, tok, card = train(
        "chunk-regress", data, a.minutes, max_steps=a.steps, seed=a.seed, quiet=True,
        aux_weight=a.aux_weight, jitter=a.jitter,
        noise_aug=tuple(n for n in a.noise_aug.split(",") if n), vision_layers=a.vision_layers,
    )
    took = time.perf_counter() - t0
    policy = VLAPolicy(model, tok)
    clean = evaluate(policy, tasks, a.seeds, a.first_seed, verbose=False)
    row: dict[str, object] = {
        "label": a.label, "cameras": data.cameras, "image_size": int(data.images.shape[-2]),
        "vision_layers": a.vision_layers,
        "aux_weight": a.aux_weight, "jitter": a.jitter, "noise_aug": a.noise_aug,
        "demos": int(data.episode.max()) + 1 if len(data) else 0, "steps": card["train_steps"],
        "train_min": round(took / 60, 1), "seeds": clean["seeds"], "per_task": clean["per_task"],
        "mean": clean["mean"], "command": shlex.join(["python", *sys.argv]),
    }
    if a.noise:
        noisy = evaluate(policy, tasks, a.seeds, a.first_seed, verbose=False, noise=a.noise)
        row["noise"], row["noise_mean"] = a.noise, noisy["mean"]
    return row


def table(path: Path) -> str:
    """The rows of ``path`` as a markdown table."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    tasks = list(rows[0]["per_task"]) if rows else []
    head = ["row", "cameras", "px", "grid", "aux", "jitter", "noise aug", *tasks, "mean",
            "held-out noise", "steps", "min"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cams = " + ".join("corner4" if c == "main" else c for c in r["cameras"])
        side = r["image_size"] // 4 // 2 ** (r.get("vision_layers", 2) - 1)
        noisy = f"{r['noise_mean']:.2f} ({r['noise']})" if "noise_mean" in r else "-"
        cells = [r["label"], cams, str(r["image_size"]), f"{side}x{side}",
                 str(r["aux_weight"] or "-"), str(r["jitter"] or "-"),
                 "yes" if r["noise_aug"] else "-",
                 *(f"{r['per_task'][t]:.2f}" for t in tasks), f"**{r['mean']:.2f}**", noisy,
                 str(r["steps"]), str(r["train_min"])]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    """Parse flags; print the table (``--table``) or run one row and append it to ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", type=Path, help="print the rows of this file and exit")
    p.add_argument("--data", help="demo file (.npz) recorded with every camera the rows use")
    p.add_argument("--tasks", default="push,pick-place,peg-insert-side")
    p.add_argument("--cameras", default="main", help="cameras of the set to train on, main first")
    p.add_argument("--label", default="")
    p.add_argument("--steps", type=int, default=800,
                   help="training steps (rows compare at equal steps, whatever the load)")
    p.add_argument("--minutes", type=float, default=60.0, help="a wall-clock cap as well")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=10, help="held-out episode seeds per task")
    p.add_argument("--first-seed", type=int, default=1000)
    p.add_argument("--vision-layers", type=int, default=3,
                   help="ResNet stages: 3 gives a 4x4 token grid per 64 px camera, 2 an 8x8 one")
    p.add_argument("--aux-weight", type=float, default=0.0)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--noise-aug", default="")
    p.add_argument("--noise", default="", help="also evaluate under this noise spec")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    if a.table is not None:
        print(table(a.table))
        return
    if not a.data or a.out is None:
        p.error("--data and --out are required to run a row")
    row = run_row(a)
    with a.out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
