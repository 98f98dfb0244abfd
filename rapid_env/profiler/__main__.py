"""``python -m rapid_env.profiler``: ``--write`` recounts the profile cache; always a summary.

Example:
    python -m rapid_env.profiler --write            # every profile
    python -m rapid_env.profiler --write smolvla    # one, the others kept as they are
    python -m rapid_env.profiler                    # the cache's summary only
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rapid_env.cost.profiles import ArchProfile, read_cache


def parser() -> argparse.ArgumentParser:
    """The profiler's flags."""
    ap = argparse.ArgumentParser(
        prog="python -m rapid_env.profiler",
        description="Count VLA architecture profiles on the meta device into the cache the "
                    "cost model reads (docs/cost_model.md).",
    )
    ap.add_argument("--write", action="store_true", help="recount and rewrite the cache")
    ap.add_argument("--path", type=Path, default=None, help="cache file (default: shipped)")
    ap.add_argument("names", nargs="*", help="profiles to rebuild (default: all)")
    return ap


def summary(name: str, prof: ArchProfile) -> str:
    """One line per profile: blocks, FLOPs, weights, KV cache, loop."""
    return (
        f"{name}: {prof.n_blocks} blocks, {prof.total_flops / 1e12:.3f} TFLOP, "
        f"{prof.weight_bytes / 1e9:.3f} GB weights, "
        f"{prof.kv_cache_bytes / 1e6:.1f} MB KV cache, {prof.loop} loop x "
        f"{prof.loop_passes}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--write`` regenerates the cache, then print a summary of it."""
    args = parser().parse_args(argv)
    if args.write:
        from rapid_env.profiler.write import write_profiles

        target = write_profiles(args.path, args.names or None)
        print(f"wrote {target}")
    cached = read_cache(args.path)
    for name in args.names or list(cached):
        if name not in cached:
            raise SystemExit(f"profile {name!r} is not in the cache; allowed: {', '.join(cached)}")
        print(summary(name, ArchProfile.from_dict(cached[name])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
