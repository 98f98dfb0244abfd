"""``rapid-train``: collect expert demos, train an executable VLA family, evaluate it, save it.

Subcommands (the command line is :mod:`rapid_env.cli.train`)::

    rapid-train collect --tasks mt10 --demos 150 --out demos.npz [--workers 2]
    rapid-train train --family chunk-regress --data demos.npz --out ckpt/ --minutes 20
    rapid-train eval --checkpoint ckpt/ --seeds 10        # writes the result into the model card

Training is behaviour cloning on the CPU with DrQ random-shift augmentation; evaluation runs the
policy in the partitioned controller at zero latency (instant compute, ideal link, clean image),
on episode seeds disjoint from the demo seeds.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rapid_env.agents.fixed_split import FixedSplitDecider
from rapid_env.agents.vla.augment import check_corruptions, color_jitter, corrupt_some
from rapid_env.agents.vla.checkpoint import load_checkpoint, save_checkpoint
from rapid_env.agents.vla.components import random_shift
from rapid_env.agents.vla.config import VLAConfig
from rapid_env.agents.vla.demos import DemoSet
from rapid_env.agents.vla.families import build_model, default_config
from rapid_env.agents.vla.policy import VLAPolicy, encode_instruction
from rapid_env.agents.vla.tokenizer import build_tokenizer
from rapid_env.controller import PartitionedController
from rapid_env.cost import build_cost_model
from rapid_env.cost.instant import InstantCost
from rapid_env.episode import run_episode
from rapid_env.link import IdealLink
from rapid_env.noise import parse_noise
from rapid_env.progress import Progress
from rapid_env.task import Task
from rapid_env.tasks.libero_suite import get_libero_task, is_libero, suite_tasks
from rapid_env.tasks.metaworld_task import MetaWorldTask
from rapid_env.tasks.suite import MT10, get_task
from rapid_env.wandb_mode import finish_run, resolve_mode, start_run

EVAL_FIRST_SEED = 1000  # held-out: demos use env seeds >= 100_000 (demos.TRAIN_SEED_BASE)


def parse_tasks(spec: str) -> list[str]:
    """``mt10``, a LIBERO suite (``libero_object``) or a comma list of these and task names.

    Every name is validated (a LIBERO name against the shipped suite table, without robosuite).
    """
    out: list[str] = []
    for name in (t for t in spec.split(",") if t):
        if name == "mt10":
            out += [t.name for t in MT10]
        elif is_libero(name):
            out += suite_tasks(name) if "/" not in name else [get_libero_task(name).name]
        else:
            out.append(get_task(name).name)
    return out


def make_task(name: str, image_size: int) -> Task:
    """The simulator task of ``name``: Meta-World's, or LIBERO's for ``<suite>/<index>``."""
    if is_libero(name):
        from rapid_env.tasks.libero_task import LiberoTask  # robosuite loads only when asked for

        return LiberoTask(name, image_size=image_size)
    return MetaWorldTask(name, image_size=image_size)


def instructions_of(data: DemoSet) -> list[str]:
    """Each task's instruction: stored with the demos, else looked up (older Meta-World sets)."""
    if data.instructions:
        return list(data.instructions)
    return [get_task(t).instruction for t in data.tasks]


# ---------------------------------------------------------------------- collect
def collect(
    tasks: list[str],
    demos: int,
    out: Path,
    workers: int,
    dart_sigma: float,
    chunk_size: int,
    image_size: int,
    first_seed: int,
    record_every: int = 2,
    cameras: tuple[str, ...] = ("main",),
    targets: bool = False,
) -> DemoSet:
    """Collect demos of ``tasks`` with ``workers`` processes; each worker writes an npz part.

    ``record_every`` applies to LIBERO tasks (see :mod:`rapid_env.agents.vla.libero_demos`);
    ``cameras`` (``main`` first, then Meta-World camera names such as ``gripperPOV``) and
    ``targets`` (privileged object/goal positions for an auxiliary loss) to Meta-World tasks.
    """
    groups = [tasks[i::workers] for i in range(workers) if tasks[i::workers]]
    with tempfile.TemporaryDirectory() as tmp:
        procs, parts = [], []
        for i, g in enumerate(groups):
            part = Path(tmp) / f"part{i}.npz"
            cmd = [
                sys.executable,
                "-m",
                "rapid_env.agents.vla.demos",
                "--tasks",
                ",".join(g),
                "--demos",
                str(demos),
                "--chunk-size",
                str(chunk_size),
                "--image-size",
                str(image_size),
                "--dart-sigma",
                str(dart_sigma),
                "--first-seed",
                str(first_seed),
                "--record-every",
                str(record_every),
                "--cameras",
                ",".join(cameras),
                *(["--targets"] if targets else []),
                "--out",
                str(part),
            ]
            procs.append(subprocess.Popen(cmd))
            parts.append(part)
        for p in procs:
            if p.wait() != 0:
                raise RuntimeError(f"demo worker failed with exit code {p.returncode}")
        ds = DemoSet.concat([DemoSet.load(p) for p in parts])
    ds.save(out)
    return ds


# ---------------------------------------------------------------------- train
def load_demos(paths: list[str]) -> DemoSet:
    """Load and join one or more demo files."""
    return DemoSet.concat([DemoSet.load(p) for p in paths])


def _start_model(
    family: str, data: DemoSet, init: str | Path | None, overrides: dict[str, Any]
) -> tuple[Any, Any, Any, dict[str, Any]]:
    """A fresh model sized from the demos, or the one in ``init`` (its card as the prior)."""
    prior: dict[str, Any] = {}
    if init is not None:
        model, tok, prior = load_checkpoint(init)
        if model.cfg.family != family:
            raise ValueError(f"--init {init} holds a {model.cfg.family} model, not {family}")
        cfg = model.cfg
        model.train()
    else:
        said = instructions_of(data)
        tok = build_tokenizer([*(t.instruction for t in MT10), *said])
        longest = max(len(tok(s)["input_ids"]) for s in said)
        from_data: dict[str, Any] = {
            "image_size": int(data.images.shape[-2]),
            "chunk_size": int(data.chunks.shape[1]),
            "action_dim": int(data.chunks.shape[2]),
            "proprio_dim": int(data.proprio.shape[1]),
            "cameras": tuple(data.cameras),
            "max_text_tokens": max(VLAConfig.max_text_tokens, longest),
            "vocab_size": len(tok),
            "proprio_mean": [float(x) for x in data.proprio.mean(0)],
            "proprio_std": [float(x) for x in data.proprio.std(0) + 1e-3],
        }
        cfg = default_config(family, **{**from_data, **overrides})
        model = build_model(cfg).train()
    return model, tok, cfg, prior


def _bc_step(
    model: Any, opt: Any, batch: tuple[Any, ...], gen: Any,
    aux: torch.Tensor | None = None, aux_weight: float = 0.0,
) -> float:
    """One behaviour-cloning step on a (shifted images, proprio, text, chunks) batch.

    ``aux`` (normalised object/goal positions) adds chunk-regress's auxiliary term.
    """
    img, proprio, text, chunks = batch
    state = model.prepare(img, proprio, text, gen)
    if aux is None:
        loss = model.loss(state, chunks, gen)
    else:
        loss = model.loss(state, chunks, gen, aux_target=aux, aux_weight=aux_weight)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(loss.detach())


def _camera_label(cameras: list[str]) -> list[str]:
    """Camera names for the card; Meta-World's one camera is its ``corner4`` view."""
    return ["corner4"] if list(cameras) == ["main"] else list(cameras)


def shift_images(images: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """:func:`random_shift` of (B, H, W, 3) or, camera by camera, of (B, C, H, W, 3) frames."""
    if images.ndim == 4:
        return random_shift(images, pad, gen)
    b, c = images.shape[:2]
    return random_shift(images.reshape(b * c, *images.shape[2:]), pad, gen).reshape(images.shape)


def _card(family: str, model: Any, data: DemoSet, step: int, batch: int, lr: float, took: float,
          ema: float | None, prior: dict[str, Any], recipe: str = "") -> dict[str, Any]:
    """The model card's training facts, counting the ``init`` run's steps and time too."""
    return {
        "family": family,
        "parameters": model.param_count(),
        "summary": f"Executable {family} VLA, behaviour-cloned from scripted-expert demos.",
        "data": f"{len(data)} steps from {int(data.episode.max()) + 1} demos of "
        f"{len(data.tasks)} tasks ({', '.join(data.tasks)}), DART-noised, "
        f"{data.images.shape[-2]} px {' + '.join(_camera_label(data.cameras))}",
        "training": f"{step} steps of batch {batch}, AdamW lr {lr} cosine, random shift 4 px"
        f"{recipe}, {took / 60:.1f} min on {torch.get_num_threads()} CPU thread(s)",
        "train_steps": step + int(prior.get("train_steps", 0)),
        "train_seconds": round(took + float(prior.get("train_seconds", 0.0)), 1),
        "final_loss": ema,
    }


def train(
    family: str,
    data: DemoSet,
    minutes: float,
    max_steps: int = 1_000_000,
    batch: int = 64,
    lr: float = 3e-4,
    seed: int = 0,
    log_every: int = 200,
    init: str | Path | None = None,
    quiet: bool = False,
    on_log: Callable[[dict[str, float]], None] | None = None,
    aux_weight: float = 0.0,
    jitter: float = 0.0,
    noise_aug: tuple[str, ...] = (),
    noise_share: float = 0.25,
    noise_max_severity: int = 2,
    **overrides: Any,
) -> tuple[Any, Any, dict[str, Any]]:
    """Behaviour-clone ``family`` on ``data`` for ``minutes`` (or ``max_steps``).

    With ``init`` (a checkpoint directory) training continues from its weights, config and
    tokenizer with a fresh optimiser; the card then counts steps and time of both runs.
    Progress (a bar on a terminal, a line every 10 s elsewhere; total: the steps that fit the
    time budget at the current speed, at most ``max_steps``) and the loss line every
    ``log_every`` steps go to stderr and stdout unless ``quiet``. ``on_log`` (a W&B run's
    ``log``, say) gets ``train/loss``, ``train/loss_ema``, ``train/lr``, ``train/step`` and
    ``train/elapsed_s`` every :data:`LOG_METRICS_EVERY` steps and at the last step.

    Recipe options: ``aux_weight`` > 0 adds chunk-regress's auxiliary localisation loss on the
    demos' privileged ``targets`` (normalised by their statistics); ``jitter`` is the colour
    jitter strength (:func:`~rapid_env.agents.vla.augment.color_jitter`); ``noise_aug`` names
    the corruption families a ``noise_share`` of the training images go through at severity
    1..``noise_max_severity`` (:func:`~rapid_env.agents.vla.augment.corrupt_some`).
    """
    noise_aug = check_corruptions(noise_aug)
    if aux_weight > 0:
        if family != "chunk-regress":
            raise ValueError(f"aux_weight={aux_weight} needs family chunk-regress, got {family!r}")
        if data.targets is None:
            raise ValueError("aux_weight > 0 needs demos recorded with targets (collect --targets)")
        if init is None:
            overrides = {"aux_dim": int(data.targets.shape[1]), **overrides}
    torch.manual_seed(seed)
    model, tok, cfg, prior = _start_model(family, data, init, overrides)
    aux_all: torch.Tensor | None = None
    if aux_weight > 0 and data.targets is not None:
        t = data.targets.astype(np.float32)
        aux_all = torch.from_numpy((t - t.mean(0)) / (t.std(0) + 1e-3))
    aug_rng = np.random.default_rng([seed, 1])
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    text = torch.cat(
        [encode_instruction(tok, said, cfg.max_text_tokens) for said in instructions_of(data)]
    )
    images = torch.from_numpy(data.images)
    proprio = torch.from_numpy(data.proprio)
    chunks = torch.from_numpy(data.chunks)
    task_idx = torch.from_numpy(data.task_index.astype(np.int64))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    budget = minutes * 60.0
    t0 = time.perf_counter()
    step, ema, value = 0, None, math.nan
    bar = Progress(total=max_steps, desc=f"rapid-train {family}", unit="step", quiet=quiet)
    with bar:
        while step < max_steps:
            elapsed = time.perf_counter() - t0
            if elapsed >= budget:
                break
            frac = min(1.0, elapsed / budget) if max_steps >= 1_000_000 else step / max_steps
            warm = min(1.0, (step + 1) / 200)
            for g in opt.param_groups:
                g["lr"] = lr * warm * 0.5 * (1 + math.cos(math.pi * frac))
            idx = torch.from_numpy(rng.integers(0, len(data), batch))
            img = color_jitter(shift_images(images[idx], 4, gen), jitter, gen)
            img = corrupt_some(img, noise_aug, noise_share, noise_max_severity, aug_rng)
            value = _bc_step(model, opt, (img, proprio[idx], text[task_idx[idx]], chunks[idx]),
                             gen, None if aux_all is None else aux_all[idx], aux_weight)
            ema = value if ema is None else 0.98 * ema + 0.02 * value
            step += 1
            if math.isfinite(budget) and step >= 2 and (step < 20 or step % 20 == 0):
                now = time.perf_counter() - t0  # the bar's total: steps that fit the budget
                left = max(0.0, budget - now) * step / now
                bar.set_total(min(max_steps, step + int(left)))
            bar.update(loss=ema)
            if on_log is not None and (step % LOG_METRICS_EVERY == 0 or step == 1):
                on_log(_train_metrics(step, value, ema, opt, t0))
            if step % log_every == 0:
                bar.write(f"[{family}] step {step} loss {ema:.4f} {time.perf_counter() - t0:.0f}s")
        bar.set_total(step)  # the budget is spent or the steps are done: the bar ends full
    if on_log is not None and ema is not None and step % LOG_METRICS_EVERY and step != 1:
        on_log(_train_metrics(step, value, ema, opt, t0))
    took = time.perf_counter() - t0
    recipe = "".join([
        f", auxiliary localisation loss x{aux_weight}" if aux_all is not None else "",
        f", colour jitter {jitter}" if jitter > 0 else "",
        f", {noise_share:.0%} of images corrupted ({', '.join(noise_aug)}; severity 1-"
        f"{noise_max_severity})" if noise_aug else "",
    ])
    card = _card(family, model, data, step, batch, lr, took, ema, prior, recipe)
    if noise_aug:
        card["noise_seen_in_training"] = list(noise_aug)
    return model.eval(), tok, card


LOG_METRICS_EVERY = 10
"""Training steps between two points of the loss / learning-rate curves in W&B."""


def _train_metrics(
    step: int, loss: float, ema: float, opt: torch.optim.Optimizer, t0: float
) -> dict[str, float]:
    return {"train/step": step, "train/loss": loss, "train/loss_ema": ema,
            "train/lr": float(opt.param_groups[0]["lr"]),
            "train/elapsed_s": time.perf_counter() - t0}


# ---------------------------------------------------------------------- eval
def evaluate(
    policy: VLAPolicy,
    tasks: list[str],
    seeds: int,
    first_seed: int = EVAL_FIRST_SEED,
    verbose: bool = True,
    quiet: bool = False,
    noise: str = "clean",
) -> dict[str, Any]:
    """Success per task at zero latency on seeds ``first_seed ..``, clean image by default.

    ``noise`` is a noise spec (``fog:2``, a preset) applied to every camera the policy reads,
    drawn from each episode's noise stream as in ``rapid-eval``; LIBERO-PRO scene variants are
    refused here (they change the task, use ``rapid-eval --noise``).

    ``verbose`` prints one result line per task; the progress over all episodes (``ok``: solved,
    ``fail``: an episode with a policy fault) is shown when ``verbose`` and not ``quiet``.
    """
    if parse_noise(noise).variant is not None:
        raise ValueError(f"noise {noise!r} changes the task; allowed here: image noise only")
    per_task: dict[str, float] = {}
    with Progress(
        total=len(tasks) * seeds, desc="rapid-train eval", quiet=quiet or not verbose
    ) as bar:
        for name in tasks:
            task = make_task(name, policy.model.cfg.image_size)
            ctrl = PartitionedController(
                task, policy, InstantCost(build_cost_model()), IdealLink(), parse_noise(noise)
            )
            wins = 0
            for s in range(first_seed, first_seed + seeds):
                record = run_episode(ctrl, FixedSplitDecider("edge"), s)
                wins += bool(record["success"])
                bar.update(
                    success=bool(record["success"]), error=bool(record.get("faults")), task=name
                )
            task.close()
            per_task[name] = wins / seeds
            if verbose:
                bar.write(f"{policy.name:14s} {name:22s} {wins}/{seeds}", always=True)
    mean = float(np.mean(list(per_task.values())))
    out = {"seeds": f"{first_seed}-{first_seed + seeds - 1}", "per_task": per_task, "mean": mean}
    return out if noise == "clean" else {**out, "noise": noise}


# ---------------------------------------------------------------------- W&B
def start_wandb(mode: str, out: Path, config: dict[str, Any], job_type: str) -> Any:
    """A W&B run in ``out/wandb/`` (the checkpoint folder's), or None when ``mode`` is disabled.

    ``mode`` is already resolved (:func:`rapid_env.wandb_mode.resolve_mode`); the run is made by
    :func:`rapid_env.wandb_mode.start_run`, so a disabled run never imports wandb.
    Training curves go against ``train/step``.
    """
    run = start_run(mode, out, job_type=job_type, config=config, name=out.resolve().name)
    if run is None:
        return None
    run.define_metric("train/step")
    run.define_metric("train/*", step_metric="train/step")
    return run


def log_evaluation(run: Any, evaluation: dict[str, Any]) -> None:
    """Success per task (``eval/success/<task>``, a table) and the mean, also in the summary."""
    if run is None:
        return
    import wandb

    per_task: dict[str, float] = evaluation["per_task"]
    table = wandb.Table(columns=["task", "success"], data=[[t, r] for t, r in per_task.items()])
    run.log({**{f"eval/success/{t}": r for t, r in per_task.items()},
             "eval/mean_success": evaluation["mean"], "eval/table": table})
    run.summary.update({"eval/mean_success": evaluation["mean"], "eval/seeds": evaluation["seeds"]})


# ---------------------------------------------------------------------- commands
def run_command(a: argparse.Namespace, command: str) -> int:
    """Run one parsed ``rapid-train`` subcommand (:mod:`rapid_env.cli.train` parses it)."""
    if getattr(a, "threads", 0):
        torch.set_num_threads(a.threads)
    if a.cmd == "collect":
        return _collect_command(a)
    mode = resolve_mode(a.wandb)
    config = {k: v for k, v in vars(a).items() if k not in ("quiet", "wandb")}
    if a.cmd == "train":
        return _train_command(a, command, mode, config)
    return _eval_command(a, command, mode, config)


def _collect_command(a: argparse.Namespace) -> int:
    ds = collect(
        parse_tasks(a.tasks),
        a.demos,
        Path(a.out),
        a.workers,
        a.dart_sigma,
        a.chunk_size,
        a.image_size,
        a.first_seed,
        getattr(a, "record_every", 2),
        tuple(getattr(a, "cameras", "main").split(",")),
        getattr(a, "targets", False),
    )
    print(f"{len(ds)} steps from {int(ds.episode.max()) + 1} demos -> {a.out}")
    return 0


def _train_command(a: argparse.Namespace, command: str, mode: str, config: dict[str, Any]) -> int:
    run = start_wandb(mode, Path(a.out), {**config, "command": command}, "train-vla")
    try:
        data = load_demos(a.data.split(","))
        extra: dict[str, Any] = {"decode": a.decode} if a.family == "ar-token" else {}
        if getattr(a, "vision_layers", None) is not None:
            extra["vision_layers"] = a.vision_layers
        model, tok, card = train(
            a.family,
            data,
            a.minutes,
            a.steps,
            a.batch,
            a.lr,
            a.seed,
            init=a.init,
            quiet=a.quiet,
            on_log=None if run is None else run.log,
            aux_weight=getattr(a, "aux_weight", 0.0),
            jitter=getattr(a, "jitter", 0.0),
            noise_aug=tuple(n for n in getattr(a, "noise_aug", "").split(",") if n),
            noise_share=getattr(a, "noise_share", 0.25),
            **extra,
        )
        if run is not None:
            run.config.update({"model": model.cfg.to_dict(), "tasks": list(data.tasks)})
            run.summary.update({k: card[k] for k in ("parameters", "final_loss")})
        if a.init is not None:
            previous = load_checkpoint(a.init)[2]
            card["training"] = f"{previous.get('training', '?')}; then {card['training']}"
            card["command"] = f"{previous.get('command', '?')} && {command}"
        else:
            card["command"] = command
        if a.eval_seeds:
            card["evaluation"] = evaluate(
                VLAPolicy(model, tok), data.tasks, a.eval_seeds, quiet=a.quiet
            )
            log_evaluation(run, card["evaluation"])
        save_checkpoint(a.out, model, tok, card)
        print(f"saved {a.out}")
    except BaseException:
        finish_run(run, mode, "rapid-train", exit_code=1)
        raise
    finish_run(run, mode, "rapid-train")
    return 0


def _eval_command(a: argparse.Namespace, command: str, mode: str, config: dict[str, Any]) -> int:
    run = start_wandb(mode, Path(a.checkpoint), {**config, "command": command}, "eval-vla")
    try:
        model, tok, card = load_checkpoint(a.checkpoint)
        noise = getattr(a, "noise", "clean")
        result = evaluate(
            VLAPolicy(model, tok), parse_tasks(a.tasks), a.seeds, a.first_seed, quiet=a.quiet,
            noise=noise,
        )
        log_evaluation(run, result)
        if noise == "clean":
            card["evaluation"], card["eval_command"] = result, command
        else:  # beside the clean result, one entry per noise spec
            card.setdefault("evaluation_noise", {})[noise] = {**result, "command": command}
        save_checkpoint(a.checkpoint, model, tok, card)
        print(f"mean success {result['mean']:.3f}")
    except BaseException:
        finish_run(run, mode, "rapid-train", exit_code=1)
        raise
    finish_run(run, mode, "rapid-train")
    return 0
