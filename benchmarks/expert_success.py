"""Success of the scripted expert at zero latency on MT10 (instant compute, ideal link).

The reference every partitioned run is compared with: the same chunking policy, no latency.
Usage: ``python benchmarks/expert_success.py [--seeds 10] [--first-seed 1000]``.
"""

from __future__ import annotations

import argparse

from rapid_env.agents.expert import ScriptedExpert
from rapid_env.agents.fixed_split import FixedSplitDecider
from rapid_env.controller import PartitionedController
from rapid_env.cost import build_cost_model
from rapid_env.cost.instant import InstantCost
from rapid_env.episode import run_episode
from rapid_env.link import IdealLink
from rapid_env.noise import Clean
from rapid_env.tasks.metaworld_task import MetaWorldTask
from rapid_env.tasks.suite import MT10


def main() -> None:
    """Print per-task success and the MT10 mean."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=1000)
    p.add_argument("--chunk-size", type=int, default=8)
    args = p.parse_args()
    total = 0
    for spec in MT10:
        task = MetaWorldTask(spec.name, image_size=16)
        ctrl = PartitionedController(
            task, ScriptedExpert(spec.env_key, args.chunk_size),
            InstantCost(build_cost_model()), IdealLink(), Clean(),
        )
        wins = sum(
            bool(run_episode(ctrl, FixedSplitDecider("edge"), s)["success"])
            for s in range(args.first_seed, args.first_seed + args.seeds)
        )
        task.close()
        total += wins
        print(f"{spec.name:22s} {wins}/{args.seeds}", flush=True)
    print(f"MT10 success at zero latency: {total / (len(MT10) * args.seeds):.3f}")


if __name__ == "__main__":
    main()
