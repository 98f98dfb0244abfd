"""Forward time of each executable family and the split runtime's overhead, side by side.

For each family: the median unsplit forward (batch 1, 64 px, the shipped checkpoint), and the
median split forward (edge blocks + serialise + deserialise + cloud blocks) at every interior
boundary, interleaved in one loop so machine noise hits both alike. Targets (issue 3): forward
<= 20 ms; split overhead <= 5 % of the unsplit forward.

"split ms" is the median over interior boundaries k of the per-k medians; "worst k" the largest
per-k overhead. Usage: ``python benchmarks/bench_vla.py [--repeats 30] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rapid_env.agents.vla.checkpoint import shipped_checkpoint
from rapid_env.agents.vla.families import build_model, default_config
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.split import SplitRunner
from rapid_env.agents.vla.tokenizer import build_tokenizer
from rapid_env.policy import PolicyInput

CASES = (
    ("ar-token", "autoregressive"),
    ("ar-token", "parallel"),
    ("flow", None),
    ("chunk-regress", None),
)


def load(family: str, decode: str | None) -> VLAPolicy:
    """The shipped checkpoint when it matches, else the family's default sizes (same cost)."""
    ckpt = shipped_checkpoint(family)
    if (ckpt / "model.safetensors").is_file():
        pol = VLAPolicy.load(ckpt)
        if decode is None or pol.model.cfg.decode == decode:
            return pol
    tok = build_tokenizer()
    extra = {"decode": decode} if decode else {}
    return VLAPolicy(build_model(default_config(family, vocab_size=len(tok), **extra)), tok)


def main() -> None:
    """Print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=2, help="torch threads (this CPU has 2 cores)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    print(f"torch threads: {a.threads}; batch 1; medians of {a.repeats} runs")
    print(
        f"{'family':14s} {'decode':15s} {'params':>8s} {'unsplit ms':>10s} {'split ms':>9s} "
        f"{'overhead':>9s} {'worst k':>15s} {'boundary KB':>12s}"
    )
    for family, decode in CASES:
        pol = load(family, decode)
        m = pol.model
        size = m.cfg.image_size
        inp = PolicyInput(
            rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            np.array([0.0, 0.6, 0.2, 1.0], np.float32),
            "open the drawer",
            images={  # a frame for every camera beyond the main one (a multi-camera model)
                cam: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for cam in pol.cameras
            },
        )
        runners = [SplitRunner(m, k) for k in range(1, m.n_blocks)]
        full: list[float] = []
        split: dict[int, list[float]] = {r.k: [] for r in runners}
        with torch.inference_mode():
            for _ in range(3):
                m(pol.prepare(inp))
        for _ in range(a.repeats):
            for r in runners:  # alternate unsplit and split so drift hits both alike
                st = pol.prepare(inp)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    m(st)
                full.append(time.perf_counter() - t0)
                st = pol.prepare(inp)
                t0 = time.perf_counter()
                r.cloud(r.edge(st))
                split[r.k].append(time.perf_counter() - t0)
        f = 1e3 * float(np.median(full))
        per_k = {k: 1e3 * float(np.median(v)) for k, v in split.items()}
        worst = max(per_k, key=lambda k: per_k[k])
        s_med = float(np.median(list(per_k.values())))
        kb = [len(r.edge(pol.prepare(inp))) / 1e3 for r in runners]
        print(
            f"{family:14s} {m.cfg.decode if family == 'ar-token' else '-':15s} "
            f"{m.param_count() / 1e6:7.2f}M {f:10.2f} {s_med:9.2f} {100 * (s_med - f) / f:8.1f}% "
            f"{100 * (per_k[worst] - f) / f:7.1f}% (k={worst}) {min(kb):6.1f}-{max(kb):.1f}"
        )


if __name__ == "__main__":
    main()
