"""Print the cost-model summary table of docs/cost_model.md (all profiles, reference devices).

Per profile: parameters, GFLOP per inference, its loop, edge-only memory and latency on a Jetson
AGX Orin and Orin Nano, cloud compute on an A100 and an H100, cloud-only latency on the A100 over
the reference link, and the planner's best split for Orin Nano + A100 on that link. Closed-form
numbers from the cached profiles (no torch import); RAPID Table III's figures under OpenVLA.
Usage: ``python benchmarks/cost_table.py [--bandwidth-mbps 20] [--rtt-ms 40]``.
"""

from __future__ import annotations

import argparse

from rapid_env.cost.table import BANDWIDTH_BPS, RTT_S, markdown_table


def main(argv: list[str] | None = None) -> None:
    """Print the table for the given link."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--bandwidth-mbps", type=float, default=BANDWIDTH_BPS / 1e6)
    p.add_argument("--rtt-ms", type=float, default=RTT_S * 1e3)
    args = p.parse_args(argv)
    print(markdown_table(bandwidth_bps=args.bandwidth_mbps * 1e6, rtt_s=args.rtt_ms / 1e3))


if __name__ == "__main__":
    main()
