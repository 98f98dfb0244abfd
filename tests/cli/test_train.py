from __future__ import annotations


def test_train_cli_eval_seed_matches_the_trainer() -> None:
    # the CLI spells the default out so --help need not import torch
    from rapid_env.agents.vla.train import EVAL_FIRST_SEED as trainer_seed
    from rapid_env.cli.train import EVAL_FIRST_SEED as cli_seed

    assert cli_seed == trainer_seed
