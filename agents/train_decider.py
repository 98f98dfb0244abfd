"""``rapid-train-decider``: train the learned partition decider with PPO, evaluate it, save it.

The agent acts in :class:`rapid_env.wrapper.CompactActions` over :class:`rapid_env.wrapper.RapidEnv`
(one environment per training task, stepped in one process: the VLA forward runs only on infer
ticks, so an environment tick is cheap and subprocesses would only add copies of the model).
Observations are normalised by SB3's ``VecNormalize`` (the features span orders of magnitude:
rad/s^2, z-scores, log10 bandwidth); its statistics ship with the actor's weights.

Training episodes draw their seeds from 0-999 (a generator seeded by ``--seed``); evaluation runs
the saved folder through the same :func:`rapid_env.episode.run_episode` as ``rapid-eval``, on
seeds from ``--eval-seed`` (1000 by default), next to baseline deciders on the same seeds.

Example:
    rapid-train-decider --tasks reach,drawer-close --timesteps 100000 --out runs/decider
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rapid_env.agents.learned import (
    CONFIG_FILE,
    FORMAT,
    SB3_FILE,
    SHIPPED_DECIDER,
    WEIGHTS_FILE,
    LearnedDecider,
)
from rapid_env.build import assemble_controller, validate_core_names
from rapid_env.config import EnvConfig
from rapid_env.controller import PartitionedController
from rapid_env.episode import run_episode
from rapid_env.features import FEATURE_NAMES
from rapid_env.progress import Progress
from rapid_env.wandb_mode import MODES, finish_run, resolve_mode, start_run
from rapid_env.wrapper import (
    COMPACT_ACTIONS,
    RECORD_INFO_KEY,
    CompactActions,
    RapidEnv,
    RewardConfig,
    SafetyRefill,
)

if TYPE_CHECKING:
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

TRAIN_SEEDS = 1000  # training and tuning seeds are 0 .. TRAIN_SEEDS - 1; evaluation uses the rest
DEFAULT_TASKS = ("reach", "drawer-close", "drawer-open", "door-open", "window-close")
EVAL_METRICS = (
    "success",
    "latency_ms_mean",
    "inferences",
    "preemptions",
    "stall_steps",
    "rms_jerk",
    "megabytes",
    "time_to_success_s",
    "decision_cpu_us_mean",
)


@dataclass(frozen=True)
class PPOSettings:
    """PPO hyper-parameters (SB3 names); small on purpose: two shared CPU cores.

    ``n_steps`` is per environment: with one environment per task, a rollout holds
    ``n_steps * len(tasks)`` ticks, a couple of full episodes per task.
    """

    n_steps: int = 256
    batch_size: int = 256
    n_epochs: int = 5
    learning_rate: float = 3e-4
    gamma: float = 0.98
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = (64, 64)

    def __post_init__(self) -> None:
        if self.n_steps < 2 or self.batch_size < 2 or self.n_epochs < 1:
            raise ValueError(f"need n_steps, batch_size >= 2 and n_epochs >= 1, got {self}")
        if not self.net_arch or min(self.net_arch) < 1:
            raise ValueError(f"net_arch must be non-empty positive widths, got {self.net_arch}")


class TrainSeeds:
    """Hands out training episode seeds from 0-999, never from the evaluation range."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self) -> int:
        """The next training seed."""
        return int(self.rng.integers(0, TRAIN_SEEDS))


def build_controller(cfg: EnvConfig) -> PartitionedController:
    """The control loop ``cfg`` names, with the policy from the agents' own registry."""
    from rapid_env.agents.registry import POLICIES

    policy = POLICIES.create(cfg.policy, cfg.task, chunk_size=cfg.chunk_size)
    return assemble_controller(cfg, policy)


def make_env(
    cfg: EnvConfig, reward: RewardConfig, seeds: TrainSeeds, safety_refill: bool
) -> gym.Env[np.ndarray, np.int64]:
    """One monitored training environment whose resets draw seeds from ``seeds``."""
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor

    class _SeededReset(gym.Wrapper[np.ndarray, np.int64, np.ndarray, np.int64]):
        """SB3 auto-resets without a seed; RapidEnv would then draw one outside 0-999."""

        def reset(
            self, *, seed: int | None = None, options: dict[str, Any] | None = None
        ) -> tuple[np.ndarray, dict[str, Any]]:
            return self.env.reset(seed=seeds() if seed is None else seed, options=options)

    compact = CompactActions(RapidEnv(build_controller(cfg), cfg, reward))
    env = SafetyRefill(compact) if safety_refill else compact
    return Monitor(_SeededReset(env), info_keywords=("success",))


def train(
    cfg: EnvConfig,
    tasks: Sequence[str],
    reward: RewardConfig,
    ppo: PPOSettings,
    timesteps: int,
    seed: int,
    safety_refill: bool,
    log: Callable[[str], None] | None = None,
    quiet: bool = False,
    wandb_run: Any = None,
) -> tuple[PPO, VecNormalize, float]:
    """Train PPO on one environment per task; return the model, the normaliser and seconds.

    Progress over the PPO ticks (a bar on a terminal, a line every 10 s elsewhere; ``ok``:
    training episodes solved) goes to stderr and one line per rollout (steps, speed, recent
    return, success and length) to ``log``, by default printed above the bar; ``quiet`` silences
    both (unless ``log`` is given).

    With ``wandb_run`` (a W&B run, see :func:`start_wandb`) SB3's logger also writes every
    rollout's metrics (``train/*``, ``rollout/*`` with the training success rate, ``time/*``)
    to it, against ``global_step`` (PPO ticks).
    """
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    torch.set_num_threads(1)
    children = np.random.SeedSequence(seed).spawn(len(tasks))

    def factory(task: str, child: np.random.SeedSequence) -> Callable[[], gym.Env[Any, Any]]:
        seeds = TrainSeeds(np.random.default_rng(child))
        return lambda: make_env(replace(cfg, task=task), reward, seeds, safety_refill)

    fns = [factory(t, c) for t, c in zip(tasks, children, strict=True)]
    venv = VecNormalize(
        DummyVecEnv(fns), norm_obs=True, norm_reward=True, clip_obs=10.0, gamma=ppo.gamma
    )
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=ppo.n_steps,
        batch_size=ppo.batch_size,
        n_epochs=ppo.n_epochs,
        learning_rate=ppo.learning_rate,
        gamma=ppo.gamma,
        gae_lambda=ppo.gae_lambda,
        ent_coef=ppo.ent_coef,
        clip_range=ppo.clip_range,
        policy_kwargs={"net_arch": {"pi": list(ppo.net_arch), "vf": list(ppo.net_arch)}},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    if wandb_run is not None:
        from stable_baselines3.common.logger import Logger

        model.set_logger(Logger(folder=None, output_formats=[_wandb_writer(wandb_run)]))
    t0 = time.perf_counter()
    # PPO collects whole rollouts: it stops at the first multiple of one rollout >= timesteps
    rollout = ppo.n_steps * len(tasks)
    bar = Progress(total=math.ceil(timesteps / rollout) * rollout, desc="rapid-train-decider",
                   unit="tick", quiet=quiet)
    say = log if log is not None else bar.write

    class _Progress(BaseCallback):
        """The bar over PPO ticks; one line per rollout: steps, speed, recent return, success."""

        episodes = 0

        def _on_step(self) -> bool:
            # the env's own record (Monitor's info["episode"] holds only return, length, success)
            infos = self.locals.get("infos", ())
            ends = [i[RECORD_INFO_KEY] for i in infos if RECORD_INFO_KEY in i]
            self.episodes += len(ends)
            if ends:
                bar.record(ok=sum(bool(e.get("success")) for e in ends))
            bar.update(self.num_timesteps - bar.done, episodes=self.episodes)
            return True

        def _on_rollout_end(self) -> None:
            eps = list(self.model.ep_info_buffer or ())
            ret = np.mean([e["r"] for e in eps]) if eps else math.nan
            succ = np.mean([float(e["success"]) for e in eps]) if eps else math.nan
            length = np.mean([e["l"] for e in eps]) if eps else math.nan
            if eps:  # SB3 logs return and length itself; training success goes with them
                self.logger.record("rollout/success_rate", float(succ))
            dt = time.perf_counter() - t0
            say(
                f"  {self.num_timesteps:>8d} steps  {self.num_timesteps / dt:6.0f} steps/s  "
                f"return {ret:7.2f}  success {succ:.2f}  length {length:5.1f}"
            )

    with bar:
        model.learn(total_timesteps=timesteps, callback=_Progress())
    if wandb_run is not None:  # the last update's train/* values: SB3 dumps only before updates
        model.logger.dump(model.num_timesteps)
    return model, venv, time.perf_counter() - t0


# ---------------------------------------------------------------------- W&B
def start_wandb(mode: str, out: Path, config: dict[str, Any]) -> Any:
    """A W&B run (job type ``train-decider``) in ``out/wandb/``; None when ``mode`` is disabled.

    ``mode`` is already resolved (:func:`rapid_env.wandb_mode.resolve_mode`); the run is made by
    :func:`rapid_env.wandb_mode.start_run`, so a disabled run never imports wandb.
    Metrics go against ``global_step``.
    """
    run = start_run(mode, out, job_type="train-decider", config=config, name=out.resolve().name)
    if run is None:
        return None
    run.define_metric("global_step")
    for prefix in ("train", "rollout", "time", "eval"):
        run.define_metric(f"{prefix}/*", step_metric="global_step")
    return run


def _wandb_writer(run: Any) -> Any:
    """An SB3 logger output format that logs each dump's numbers to ``run``."""
    from stable_baselines3.common.logger import KVWriter

    class WandbWriter(KVWriter):
        def write(
            self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0
        ) -> None:
            data = {
                k: float(v)
                for k, v in key_values.items()
                if isinstance(v, int | float | np.number) and not isinstance(v, bool)
            }
            if data:
                run.log({**data, "global_step": int(step)})

        def close(self) -> None:
            pass

    return WandbWriter()


def log_evaluation(run: Any, rows: Sequence[dict[str, Any]], step: int) -> None:
    """Held-out evaluation: ``eval/<agent>/<task>/<metric>``, a table, per-agent means."""
    if run is None or not rows:
        return
    import wandb

    data: dict[str, Any] = {"global_step": step}
    for row in rows:
        for metric in EVAL_METRICS:
            if row.get(metric) is not None:
                data[f"eval/{row['agent']}/{row['task']}/{metric}"] = row[metric]
    columns: list[str | int] = ["task", "agent", "episodes", *EVAL_METRICS]
    data["eval/table"] = wandb.Table(
        columns=columns, data=[[row.get(str(c)) for c in columns] for row in rows],
        allow_mixed_types=True,
    )
    run.log(data)
    for agent in dict.fromkeys(row["agent"] for row in rows):
        rates = [r["success"] for r in rows if r["agent"] == agent and r["success"] is not None]
        if rates:
            run.summary[f"eval/{agent}/success"] = float(np.mean(rates))


def export(
    model: PPO, venv: VecNormalize, out: Path, config: dict[str, Any]
) -> None:
    """Write the decider folder: SB3 zip, actor weights + normaliser (safetensors), config."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    from stable_baselines3.common.running_mean_std import RunningMeanStd
    from torch import nn

    policy = model.policy
    linears = [m for m in policy.mlp_extractor.policy_net if isinstance(m, nn.Linear)]
    action_net = policy.action_net
    rms = venv.obs_rms
    if not isinstance(action_net, nn.Linear) or not isinstance(rms, RunningMeanStd):
        raise ValueError("expected a Discrete-action MlpPolicy over a Box observation")
    tensors: dict[str, np.ndarray] = {}
    for name, layer in [(f"pi.{i}", m) for i, m in enumerate(linears)] + [("action", action_net)]:
        tensors[f"{name}.weight"] = layer.weight.detach().cpu().numpy().astype(np.float32)
        tensors[f"{name}.bias"] = layer.bias.detach().cpu().numpy().astype(np.float32)
    tensors["obs_mean"] = np.asarray(rms.mean, dtype=np.float64)
    tensors["obs_var"] = np.asarray(rms.var, dtype=np.float64)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out / WEIGHTS_FILE))
    (out / WEIGHTS_FILE).chmod(0o644)  # safetensors writes 0600; package data must be readable
    model.save(out / SB3_FILE)
    config = {
        **config,
        "format": FORMAT,
        "actions": list(COMPACT_ACTIONS),
        "feature_names": list(FEATURE_NAMES),
        "net_arch": [int(layer.out_features) for layer in linears],
        "activation": "tanh",  # SB3 MlpPolicy's default activation_fn
        "obs_clip": float(venv.clip_obs),
        "obs_eps": float(venv.epsilon),
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def evaluate(
    out: Path,
    cfg: EnvConfig,
    tasks: Sequence[str],
    episodes: int,
    first_seed: int,
    baselines: Sequence[str],
    log: Callable[[str], None] | None = None,
    quiet: bool = False,
) -> list[dict[str, Any]]:
    """Run the saved decider and the baselines on the same held-out seeds; one row per cell.

    Rows go to ``log``, by default printed (also under ``quiet``, which silences only the
    progress over the episodes; ``ok``: solved, ``fail``: an episode with a policy fault).
    """
    from rapid_env.agents.registry import DECIDERS
    rows: list[dict[str, Any]] = []
    agents = ("learned", *baselines)
    bar = Progress(total=len(tasks) * len(agents) * episodes, desc="rapid-train-decider eval",
                   quiet=quiet)
    say = log if log is not None else (lambda line: bar.write(line, always=True))
    with bar:
        for task in tasks:
            controller = build_controller(replace(cfg, task=task))
            try:
                for agent in agents:
                    recs = []
                    for seed in range(first_seed, first_seed + episodes):
                        decider = (
                            LearnedDecider(out) if agent == "learned" else DECIDERS.create(agent)
                        )
                        recs.append(run_episode(controller, decider, seed))
                        bar.update(success=bool(recs[-1]["success"]),
                                   failed=bool(recs[-1].get("faults")), task=task, agent=agent)
                    row = {"task": task, "agent": agent, "episodes": episodes,
                           **{m: _mean(recs, m) for m in EVAL_METRICS}}
                    rows.append(row)
                    say(_format_row(row))
            finally:
                controller.task.close()
    return rows


def _mean(recs: list[dict[str, Any]], metric: str) -> float | None:
    if metric == "megabytes":
        vals = [(r["bytes_up"] + r["bytes_down"]) / 1e6 for r in recs]
    else:
        vals = [float(r[metric]) for r in recs if r.get(metric) is not None]
    return float(np.mean(vals)) if vals else None


def _format_row(row: dict[str, Any]) -> str:
    def f(key: str, spec: str) -> str:
        v = row[key]
        return format(v, spec) if v is not None else "-"

    return (
        f"  {row['task']:<22s} {row['agent']:<11s} success {f('success', '.2f')}  "
        f"latency {f('latency_ms_mean', '6.1f')} ms  inferences {f('inferences', '5.1f')}  "
        f"preempt {f('preemptions', '4.1f')}  stalls {f('stall_steps', '5.1f')}  "
        f"jerk {f('rms_jerk', '7.1f')}  MB {f('megabytes', '6.2f')}  "
        f"decide {f('decision_cpu_us_mean', '6.1f')} us"
    )


def write_card(out: Path, card: dict[str, Any]) -> None:
    """``card.json`` and a human ``README.md`` with the evaluation table and the commands."""
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    tr = card["training"]
    lines = [
        "# learned — PPO partition decider",
        "",
        "A stable-baselines3 PPO actor over the RAPID env's 11 kinematic/buffer/link features,",
        f"choosing among {', '.join(COMPACT_ACTIONS)} every control tick"
        + (" (plus a safety refill when starved)." if card["safety_refill"] else "."),
        "",
        f"- training: {tr['timesteps']} ticks on {', '.join(tr['tasks'])}, seeds from 0-999 "
        f"(generator seed {tr['seed']}), {tr['seconds'] / 60:.1f} min on 1 CPU thread",
        f"- reward weights: {card['reward']}",
        f"- env: policy {card['env']['policy']}, link {card['env']['link']}, noise "
        f"{card['env']['noise']}, profile {card['env']['profile']}, "
        f"{card['env']['max_episode_s']} s episodes",
        f"- command: `{card['command']}`",
        "",
        f"## Held-out evaluation, seeds {card['evaluation']['seeds']}",
        "",
        "| task | agent | success | latency ms | inferences | preemptions | stall ticks "
        "| rms jerk | MB | decide us |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in card["evaluation"]["rows"]:
        cells = [
            _cell(row[k], s)
            for k, s in (
                ("success", ".2f"), ("latency_ms_mean", ".1f"), ("inferences", ".1f"),
                ("preemptions", ".1f"), ("stall_steps", ".1f"), ("rms_jerk", ".1f"),
                ("megabytes", ".2f"), ("decision_cpu_us_mean", ".1f"),
            )
        ]
        lines.append(f"| {row['task']} | {row['agent']} | " + " | ".join(cells) + " |")
    lines += ["", "`decide us` is wall-clock CPU time per decide() call on the machine that ran "
              "the evaluation; everything else is simulated and reproducible.", ""]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def _cell(v: float | None, spec: str) -> str:
    return format(v, spec) if v is not None else "-"


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``rapid-train-decider``."""
    rc, base, ppo = RewardConfig(), EnvConfig(), PPOSettings()
    p = argparse.ArgumentParser(prog="rapid-train-decider", description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                   help=f"comma-separated training tasks (default {','.join(DEFAULT_TASKS)})")
    p.add_argument("--timesteps", type=int, default=150_000, help="PPO environment ticks")
    p.add_argument("--seed", type=int, default=0, help="seeds PPO and the training-seed draws")
    p.add_argument("--out", default="runs/learned-decider",
                   help=f"output folder (the shipped decider is {SHIPPED_DECIDER})")
    p.add_argument("--w-success", type=float, default=rc.success, help="reward per success")
    p.add_argument("--w-latency", type=float, default=rc.latency,
                   help="cost per second of delivered-chunk latency")
    p.add_argument("--w-jerk", type=float, default=rc.jerk,
                   help="cost per (m/s^3)^2 of mean squared end-effector jerk per tick")
    p.add_argument("--w-bytes", type=float, default=rc.megabytes, help="cost per MB on the link")
    p.add_argument("--w-stall", type=float, default=rc.stall, help="cost per stalled tick")
    p.add_argument("--eval-episodes", type=int, default=10, help="held-out seeds per task")
    p.add_argument("--eval-seed", type=int, default=TRAIN_SEEDS, help="first evaluation seed")
    p.add_argument("--eval-tasks", default=None, help="evaluation tasks (default: --tasks)")
    p.add_argument("--baselines", default="rapid",
                   help="comma-separated deciders evaluated on the same seeds ('' for none)")
    p.add_argument("--link", default=base.link)
    p.add_argument("--noise", default=base.noise)
    p.add_argument("--policy", default=base.policy)
    p.add_argument("--profile", default=base.profile)
    p.add_argument("--max-episode-s", type=float, default=base.max_episode_s,
                   help="episode time limit in training and evaluation")
    p.add_argument("--n-steps", type=int, default=ppo.n_steps, help="PPO rollout ticks per task")
    p.add_argument("--batch-size", type=int, default=ppo.batch_size)
    p.add_argument("--n-epochs", type=int, default=ppo.n_epochs)
    p.add_argument("--lr", type=float, default=ppo.learning_rate)
    p.add_argument("--ent-coef", type=float, default=ppo.ent_coef)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-train-decider``."""
    args = build_parser().parse_args(argv)
    tasks = _split(args.tasks)
    eval_tasks = _split(args.eval_tasks) if args.eval_tasks is not None else tasks
    baselines = _split(args.baselines)
    if not tasks:
        raise ValueError(f"--tasks {args.tasks!r} names no task")
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
    cfg = EnvConfig(link=args.link, noise=args.noise, policy=args.policy, profile=args.profile,
                    max_episode_s=args.max_episode_s)
    from rapid_env.agents.registry import DECIDERS, POLICIES

    for task in (*tasks, *eval_tasks):
        validate_core_names(replace(cfg, task=task))
    POLICIES.check(cfg.policy)

    for b in baselines:
        DECIDERS.check(b)
    reward = RewardConfig(success=args.w_success, latency=args.w_latency, jerk=args.w_jerk,
                          megabytes=args.w_bytes, stall=args.w_stall)
    ppo = PPOSettings(n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
                      learning_rate=args.lr, ent_coef=args.ent_coef)
    out = Path(args.out)
    safety = not args.no_safety_refill
    mode = resolve_mode(args.wandb)
    command = "rapid-train-decider " + " ".join(sys.argv[1:] if argv is None else argv)
    run = start_wandb(mode, out, {
        "tasks": list(tasks), "timesteps": args.timesteps, "seed": args.seed,
        "safety_refill": safety, "reward": asdict(reward), "ppo": asdict(ppo),
        "env": replace(cfg, task=tasks[0]).to_dict(),
        "eval": {"tasks": list(eval_tasks), "episodes": args.eval_episodes,
                 "seed": args.eval_seed, "baselines": list(baselines)},
        "out": str(out), "command": command,
    })
    try:
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
        rows: list[dict[str, Any]] = []
        if args.eval_episodes:
            last = args.eval_seed + args.eval_episodes - 1
            print(f"held-out evaluation, seeds {args.eval_seed}-{last}:")
            rows = evaluate(out, cfg, eval_tasks, args.eval_episodes, args.eval_seed, baselines,
                            quiet=args.quiet)
            log_evaluation(run, rows, int(model.num_timesteps))
        if run is not None:
            run.summary.update({"timesteps": int(model.num_timesteps), "train_seconds": seconds})
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
    except BaseException:
        finish_run(run, mode, "rapid-train-decider", exit_code=1)
        raise
    finish_run(run, mode, "rapid-train-decider")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
