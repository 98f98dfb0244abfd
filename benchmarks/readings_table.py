"""Print docs/cost_model.md's placement x loop-cost table: one profile's fixed partitions.

For each edge memory budget, placement (``edge-prefix``, ``edge-suffix``) and loop cost
(``per-pass``, ``once``): the deepest split within the budget, the blocks the edge holds, its
memory, edge and cloud compute, the bytes each way, the transfers, and the closed-form latency on
each link (every transfer pays RTT/2 plus serialisation; ``CostModel.latency_s``). Closed-form
numbers from the cached profiles (no torch import).
Usage: ``python benchmarks/readings_table.py [--profile openvla-7b] [--budgets-gib 2.4 4.7]``.
"""

from __future__ import annotations

import argparse

from rapid_env.cost import LOOP_COSTS, PLACEMENTS, build_cost_model

GIB = 2**30
LINKS = ((300e6, 0.010), (1e9, 0.002))
"""(bandwidth bit/s, RTT s): ``lab-wifi6``'s nominal link and a wired gigabit one."""


def markdown_table(profile: str, edge: str, cloud: str, budgets_gib: list[float]) -> str:
    """The table as markdown, one row per budget x placement x loop cost."""
    links = " | ".join(f"{bw / 1e6:g} Mbit/s, {rtt * 1e3:g} ms" for bw, rtt in LINKS)
    lines = [
        f"| budget | placement | loop cost | split | edge blocks | edge memory | edge ms | "
        f"cloud ms | up bytes | down bytes | transfers | {links} |",
        "|" + " --- |" * (11 + len(LINKS)),
    ]
    for budget in budgets_gib:
        for placement in PLACEMENTS:
            for loop_cost in LOOP_COSTS:
                model = build_cost_model(
                    profile, edge, cloud, placement=placement, loop_cost=loop_cost  # type: ignore[arg-type]
                )
                k = model.deepest_split_within(budget * GIB)
                plan = model.plan(k)
                names = [model.profile.blocks[i].name for i in model.edge_blocks(k)]
                held = f"`{names[0]}` .. `{names[-1]}`" if names else "none"
                latencies = " | ".join(
                    f"{plan.latency_s(bw, rtt) * 1e3:.1f}" for bw, rtt in LINKS
                )
                lines.append(
                    f"| {budget:g} GiB | {placement} | {loop_cost} | {k} | {held} | "
                    f"{model.edge_memory_bytes(k) / GIB:.2f} GiB | {plan.edge_seconds * 1e3:.1f} | "
                    f"{plan.cloud_seconds * 1e3:.1f} | {plan.up_bytes:,} | {plan.down_bytes:,} | "
                    f"{plan.n_transfers} | {latencies} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the table for the given profile, devices and budgets."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--profile", default="openvla-7b")
    p.add_argument("--edge", default="jetson-agx-orin")
    p.add_argument("--cloud", default="a100")
    p.add_argument("--budgets-gib", type=float, nargs="+", default=[2.4, 4.7])
    args = p.parse_args(argv)
    print(markdown_table(args.profile, args.edge, args.cloud, args.budgets_gib))


if __name__ == "__main__":
    main()
