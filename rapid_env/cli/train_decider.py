"""``rapid-train-decider``: train the learned partition decider with PPO, evaluate it, save it.

The trainer is :mod:`rapid_env.agents.train_decider`; this module is its command line. The flags
are parsed before torch, stable-baselines3 or MuJoCo load, so ``--help`` answers at once; the
environment and reward flags default to :class:`~rapid_env.config.EnvConfig`'s and
:class:`~rapid_env.wrapper.RewardConfig`'s, filled in after parsing.

Example:
    rapid-train-decider --tasks reach,drawer-close --timesteps 100000 --out runs/decider
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rapid_env.agents.train_decider.settings import DEFAULT_TASKS, TRAIN_SEEDS, PPOSettings
from rapid_env.cli.common import HelpFormatter, examples_epilog
from rapid_env.wandb_mode import MODES, finish_run, resolve_mode

if TYPE_CHECKING:
    from rapid_env.config import EnvConfig
    from rapid_env.wrapper import RewardConfig

PROG = "rapid-train-decider"


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``rapid-train-decider``."""
    from rapid_env.config import EnvConfig  # standard library and numpy only: --help stays fast

    ppo = PPOSettings()
    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n")[0], formatter_class=HelpFormatter,
        epilog=examples_epilog((
            "rapid-train-decider --timesteps 20000 --out runs/my-decider",
            "rapid-train-decider --tasks reach,push --link wifi --timesteps 150000 --seed 1",
            "rapid-eval --agents sb3:runs/my-decider,rapid --tasks reach   # evaluate it",
        )),
    )
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                   help=f"comma-separated training tasks (default {','.join(DEFAULT_TASKS)})")
    p.add_argument("--timesteps", type=int, default=150_000, help="PPO environment ticks")
    p.add_argument("--seed", type=int, default=0, help="seeds PPO and the training-seed draws")
    p.add_argument("--out", default="runs/learned-decider",
                   help="output folder (the shipped decider is rapid_env/data/deciders/learned)")
    r = p.add_argument_group("reward weights (default: RewardConfig's, docs/learned_decider.md)")
    r.add_argument("--w-success", type=float, default=None, help="reward per success (10)")
    r.add_argument("--w-latency", type=float, default=None,
                   help="cost per second of delivered-chunk latency (1)")
    r.add_argument("--w-jerk", type=float, default=None,
                   help="cost per (m/s^3)^2 of mean squared end-effector jerk per tick (1e-05)")
    r.add_argument("--w-bytes", type=float, default=None, help="cost per MB on the link (0.01)")
    r.add_argument("--w-stall", type=float, default=None, help="cost per stalled tick (0.05)")
    p.add_argument("--eval-episodes", type=int, default=10, help="held-out seeds per task")
    p.add_argument("--eval-seed", type=int, default=TRAIN_SEEDS, help="first evaluation seed")
    p.add_argument("--eval-tasks", default=None, help="evaluation tasks (default: --tasks)")
    p.add_argument("--baselines", default="rapid",
                   help="comma-separated deciders evaluated on the same seeds ('' for none)")
    env = EnvConfig()
    e = p.add_argument_group("the environment of training and evaluation")
    e.add_argument("--link", default=None, help=f"link spec (default: {env.link})")
    e.add_argument("--noise", default=None, help=f"noise spec (default: {env.noise})")
    e.add_argument("--policy", default=None, help=f"robot policy (default: {env.policy})")
    e.add_argument("--profile", default=None, help=f"cost profile (default: {env.profile})")
    e.add_argument("--max-episode-s", type=float, default=None,
                   help=f"episode time limit in training and evaluation "
                        f"(default: {env.max_episode_s:g})")
    g = p.add_argument_group("PPO")
    g.add_argument("--n-steps", type=int, default=ppo.n_steps, help="PPO rollout ticks per task")
    g.add_argument("--batch-size", type=int, default=ppo.batch_size, help="PPO minibatch size")
    g.add_argument("--n-epochs", type=int, default=ppo.n_epochs, help="PPO epochs per rollout")
    g.add_argument("--lr", type=float, default=ppo.learning_rate, help="Adam learning rate")
    g.add_argument("--ent-coef", type=float, default=ppo.ent_coef, help="entropy bonus weight")
    p.add_argument("--no-safety-refill", action="store_true",
                   help="let the policy starve the robot (no forced request when starved)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar or progress lines (per-rollout lines included)")
    p.add_argument("--wandb", choices=MODES, default=None,
                   help="W&B mode, run in OUT/wandb/ (default: offline unless an API key is "
                        "configured)")
    return p


def _split(text: str) -> tuple[str, ...]:
    from rapid_env.specs import split_specs  # top-level commas only: specs hold commas too

    return tuple(split_specs(text)) if text.strip() else ()


def _given(**values: Any) -> dict[str, Any]:
    """The flags the user gave (the others keep the dataclass's defaults)."""
    return {key: value for key, value in values.items() if value is not None}


def env_config(args: argparse.Namespace) -> EnvConfig:
    """The environment of training and evaluation: ``EnvConfig`` with the flags given."""
    from rapid_env.config import EnvConfig

    return EnvConfig(**_given(link=args.link, noise=args.noise, policy=args.policy,
                              profile=args.profile, max_episode_s=args.max_episode_s))


def reward_config(args: argparse.Namespace) -> RewardConfig:
    """The reward weights: ``RewardConfig`` with the ``--w-*`` flags given."""
    from rapid_env.wrapper import RewardConfig

    return RewardConfig(**_given(success=args.w_success, latency=args.w_latency,
                                 jerk=args.w_jerk, megabytes=args.w_bytes, stall=args.w_stall))


def check_args(args: argparse.Namespace) -> None:
    """Numbers out of range are a ValueError naming the flag (before anything loads)."""
    if args.timesteps < 1 or args.eval_episodes < 0:
        raise ValueError(
            f"--timesteps must be >= 1 and --eval-episodes >= 0, got {args.timesteps}, "
            f"{args.eval_episodes}"
        )
    if not 0 <= args.seed:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.eval_seed < TRAIN_SEEDS:
        raise ValueError(
            f"--eval-seed {args.eval_seed}: seeds 0-{TRAIN_SEEDS - 1} are for training; "
            f"evaluate from {TRAIN_SEEDS}"
        )


def check_names(
    cfg: EnvConfig, tasks: Sequence[str], eval_tasks: Sequence[str], baselines: Sequence[str]
) -> None:
    """Every task, link, noise, profile, policy and baseline name is a registered one."""
    from rapid_env.agents.registry import DECIDERS, POLICIES
    from rapid_env.build import validate_core_names

    for task in (*tasks, *eval_tasks):
        validate_core_names(replace(cfg, task=task))
    POLICIES.check(cfg.policy)
    for b in baselines:
        DECIDERS.check(b)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-train-decider``."""
    args = build_parser().parse_args(argv)
    tasks = _split(args.tasks)
    eval_tasks = _split(args.eval_tasks) if args.eval_tasks is not None else tasks
    baselines = _split(args.baselines)
    if not tasks:
        raise ValueError(f"--tasks {args.tasks!r} names no task")
    check_args(args)
    cfg = env_config(args)
    check_names(cfg, tasks, eval_tasks, baselines)
    reward = reward_config(args)
    ppo = PPOSettings(n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
                      learning_rate=args.lr, ent_coef=args.ent_coef)
    out = Path(args.out)
    safety = not args.no_safety_refill
    mode = resolve_mode(args.wandb)
    command = f"{PROG} " + " ".join(sys.argv[1:] if argv is None else argv)
    from rapid_env.agents.train_decider.wandb_log import start_wandb

    run = start_wandb(mode, out, {
        "tasks": list(tasks), "timesteps": args.timesteps, "seed": args.seed,
        "safety_refill": safety, "reward": asdict(reward), "ppo": asdict(ppo),
        "env": replace(cfg, task=tasks[0]).to_dict(),
        "eval": {"tasks": list(eval_tasks), "episodes": args.eval_episodes,
                 "seed": args.eval_seed, "baselines": list(baselines)},
        "out": str(out), "command": command,
    })
    try:
        config, seconds = _train_and_export(args, cfg, tasks, reward, ppo, safety, out, command,
                                            run)
        timesteps = int(config["training"]["timesteps"])
        rows = _evaluate(args, cfg, eval_tasks, baselines, out, run, timesteps)
        if run is not None:
            run.summary.update({"timesteps": timesteps, "train_seconds": seconds})
        _write_card(args, eval_tasks, out, config, rows)
    except BaseException:
        finish_run(run, mode, PROG, exit_code=1)
        raise
    finish_run(run, mode, PROG)
    return 0


def _train_and_export(
    args: argparse.Namespace,
    cfg: EnvConfig,
    tasks: Sequence[str],
    reward: RewardConfig,
    ppo: PPOSettings,
    safety: bool,
    out: Path,
    command: str,
    run: Any,
) -> tuple[dict[str, Any], float]:
    """Train, write the decider folder; the config it was written with and the seconds."""
    from rapid_env.agents.train_decider.export import export
    from rapid_env.agents.train_decider.train import train

    print(f"training PPO on {', '.join(tasks)} for {args.timesteps} ticks -> {out}")
    model, venv, seconds = train(cfg, tasks, reward, ppo, args.timesteps, args.seed, safety,
                                 quiet=args.quiet, wandb_run=run)
    config = {
        "safety_refill": safety,
        "reward": asdict(reward),
        "training": {"tasks": list(tasks), "seeds": f"0-{TRAIN_SEEDS - 1}", "seed": args.seed,
                     "timesteps": int(model.num_timesteps), "seconds": round(seconds, 1),
                     "ppo": asdict(ppo), "torch_threads": 1, "machine": platform.machine()},
        "env": replace(cfg, task=tasks[0]).to_dict(),
        "command": command,
    }
    export(model, venv, out, config)
    venv.close()  # release the renderers now, not in a garbage collection after EGL's atexit
    print(f"trained {model.num_timesteps} ticks in {seconds / 60:.1f} min; saved to {out}")
    return config, seconds


def _evaluate(
    args: argparse.Namespace,
    cfg: EnvConfig,
    eval_tasks: Sequence[str],
    baselines: Sequence[str],
    out: Path,
    run: Any,
    timesteps: int,
) -> list[dict[str, Any]]:
    """The held-out evaluation, logged to ``run``; its rows (none with ``--eval-episodes 0``)."""
    from rapid_env.agents.train_decider.evaluate import evaluate
    from rapid_env.agents.train_decider.wandb_log import log_evaluation

    if not args.eval_episodes:
        return []
    last = args.eval_seed + args.eval_episodes - 1
    print(f"held-out evaluation, seeds {args.eval_seed}-{last}:")
    rows = evaluate(out, cfg, eval_tasks, args.eval_episodes, args.eval_seed, baselines,
                    quiet=args.quiet)
    log_evaluation(run, rows, timesteps)
    return rows


def _write_card(
    args: argparse.Namespace,
    eval_tasks: Sequence[str],
    out: Path,
    config: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:
    """``card.json`` and ``README.md``: how the decider was trained and how it did."""
    from rapid_env.agents.train_decider.card import write_card

    card = {
        **config,
        "evaluation": {
            "seeds": f"{args.eval_seed}-{args.eval_seed + args.eval_episodes - 1}",
            "tasks": list(eval_tasks),
            "rows": rows,
        },
    }
    write_card(out, card)
    print(f"wrote {out / 'card.json'} and {out / 'README.md'}")


if __name__ == "__main__":
    raise SystemExit(main())
