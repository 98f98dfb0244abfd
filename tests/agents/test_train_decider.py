"""``rapid-train-decider``'s command line: a quick ``--help``, flags filled from the configs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rapid_env.cli.train_decider import build_parser, env_config, reward_config
from rapid_env.config import EnvConfig
from rapid_env.wrapper import RewardConfig


def test_help_loads_neither_torch_nor_sb3_nor_mujoco() -> None:
    code = (
        "import runpy, sys; sys.argv = ['rapid-train-decider', '--help']\n"
        "try:\n    runpy.run_module('rapid_env.cli.train_decider', run_name='__main__')\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'stable_baselines3', 'mujoco') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--timesteps" in out.stdout


def test_flags_not_given_keep_the_configs_defaults() -> None:
    args = build_parser().parse_args([])
    assert env_config(args) == EnvConfig()
    assert reward_config(args) == RewardConfig()
    args = build_parser().parse_args(["--link", "wifi", "--max-episode-s", "3", "--w-jerk", "0"])
    assert env_config(args) == EnvConfig(link="wifi", max_episode_s=3.0)
    assert reward_config(args) == RewardConfig(jerk=0.0)


def test_numbers_out_of_range_name_the_flag() -> None:
    from rapid_env.cli.train_decider import main

    with pytest.raises(ValueError, match="--timesteps must be >= 1"):
        main(["--timesteps", "0"])
    with pytest.raises(ValueError, match="--seed must be >= 0, got -1"):
        main(["--seed", "-1"])
    with pytest.raises(ValueError, match="--tasks ' ' names no task"):
        main(["--tasks", " "])
