from __future__ import annotations

import dataclasses

from rapid_env.cli.train_decider import build_parser
from rapid_env.wrapper import RewardConfig


def test_reward_flags_show_the_reward_config_defaults() -> None:
    # the help spells the weights out (importing the wrapper would slow --help): keep them equal
    helps = {a.dest: a.help or "" for a in build_parser()._actions}
    weights = dataclasses.asdict(RewardConfig())
    for dest, field in (("w_success", "success"), ("w_latency", "latency"), ("w_jerk", "jerk"),
                        ("w_bytes", "megabytes"), ("w_stall", "stall")):
        assert helps[dest].endswith(f"({weights[field]:g})"), (dest, helps[dest])
