"""Per-frame cost of each ImageNet-C corruption, so noise sweeps don't dominate the control loop.

Times every corruption on a rendered 128x128 reach-v3 frame at severity 3 and prints the median
over ``--repeats`` calls (after one warm-up call) against its target: 2 ms, or 10 ms for the
resampling-heavy glass_blur, elastic_transform and zoom_blur. Side by side, the same run times
rendering that frame (the cost a corruption adds to), and prints each corruption's ratio to it.
Usage: ``python benchmarks/bench_corruptions.py [--repeats 50] [--size 128] [--severity 3]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rapid_env.noise.corruptions import CORRUPTIONS
from rapid_env.tasks.metaworld_task import MetaWorldTask

DEFAULT_TARGET_MS = 2.0
SLOW_TARGET_MS = {"glass_blur": 10.0, "elastic_transform": 10.0, "zoom_blur": 10.0}


def _frame(size: int) -> np.ndarray:
    """A real camera frame, since some corruptions' cost depends on content (e.g. JPEG)."""
    env = MetaWorldTask("reach", image_size=size)
    env.reset(seed=1)
    frame = np.asarray(env.render_image()).copy()
    env.close()
    return frame


def _render_ms(size: int, repeats: int) -> float:
    """Median wall time of rendering one frame of the same task, in ms."""
    env = MetaWorldTask("reach", image_size=size)
    env.reset(seed=1)
    env.render_image()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        env.render_image()
        times.append(time.perf_counter() - start)
    env.close()
    return float(np.median(times) * 1e3)


def _median_ms(name: str, frame: np.ndarray, severity: int, repeats: int) -> float:
    """Median wall time of one call, in ms; a fresh rng per call as in an episode."""
    fn = CORRUPTIONS[name]
    fn(frame, severity, np.random.default_rng(0))
    times = []
    for i in range(repeats):
        rng = np.random.default_rng(i)
        start = time.perf_counter()
        fn(frame, severity, rng)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main() -> None:
    """Print the timing table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--severity", type=int, default=3)
    args = parser.parse_args()
    frame = _frame(args.size)
    render = _render_ms(args.size, args.repeats)
    print(f"{args.size}x{args.size}, severity {args.severity}, median of {args.repeats}; "
          f"rendering the frame: {render:.2f} ms")
    print(f"{'corruption':<18} {'ms':>7} {'x render':>9} {'target':>7}  result")
    misses = 0
    for name in CORRUPTIONS:
        ms = _median_ms(name, frame, args.severity, args.repeats)
        target = SLOW_TARGET_MS.get(name, DEFAULT_TARGET_MS)
        ok = ms <= target
        misses += not ok
        print(f"{name:<18} {ms:7.2f} {ms / render:9.2f} {target:7.1f}  {'PASS' if ok else 'MISS'}")
    print(f"{len(CORRUPTIONS) - misses}/{len(CORRUPTIONS)} within target")


if __name__ == "__main__":
    main()
