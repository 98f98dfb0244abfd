"""``rapid-train``: collect expert demos, train an executable VLA family, evaluate it, save it.

Subcommands::

    rapid-train collect --tasks mt10 --demos 150 --out demos.npz [--workers 2]
    rapid-train train --family chunk-regress --data demos.npz --out ckpt/ --minutes 20
    rapid-train eval --checkpoint ckpt/ --seeds 10        # writes the result into the model card

torch, MuJoCo and the trainer load only after the flags parsed (:mod:`rapid_env.agents.vla.train`
does the work), so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys

from rapid_env.cli.common import EXIT_BAD_INPUT, UsageError, add_subparser, make_parser
from rapid_env.wandb_mode import MODES

EVAL_FIRST_SEED = 1000
"""Held-out evaluation seeds start here (demos use env seeds >= 100_000); a test keeps it equal
to :data:`rapid_env.agents.vla.train.EVAL_FIRST_SEED`."""


def build_parser() -> argparse.ArgumentParser:
    """The ``rapid-train`` command line."""
    p = make_parser("rapid-train", "Collect expert demos, train an executable VLA family, "
                    "evaluate it, save it.", examples=(
        "rapid-train collect --tasks reach,push --demos 20 --out demos.npz",
        "rapid-train train --family chunk-regress --data demos.npz --out ckpt/ --minutes 5",
        "rapid-train eval --checkpoint ckpt/ --tasks reach --seeds 10",
    ))
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{collect,train,eval}")
    _collect_flags(add_subparser(sub, "collect", "record scripted-expert demos (behaviour-cloning "
                                 "data) with DART action noise", examples=(
        "rapid-train collect --tasks mt10 --demos 150 --out demos.npz --workers 2",)))
    t = add_subparser(sub, "train", "behaviour-clone a VLA family on demos", examples=(
        "rapid-train train --family flow --data a.npz,b.npz --out ckpt/ --minutes 20 "
        "--eval-seeds 10",))
    _train_flags(t)
    e = add_subparser(sub, "eval", "evaluate a checkpoint at zero latency and write the result "
                      "into its model card", examples=(
        "rapid-train eval --checkpoint rapid_env/data/checkpoints/flow --seeds 20",))
    e.add_argument("--checkpoint", required=True, metavar="DIR", help="the checkpoint folder")
    e.add_argument("--tasks", default="mt10",
                   help="comma-separated tasks, mt10 for all ten, or a LIBERO suite")
    e.add_argument("--seeds", type=int, default=10, help="held-out episode seeds per task")
    e.add_argument("--first-seed", type=int, default=EVAL_FIRST_SEED,
                   help="first held-out seed (demos use seeds >= 100000; on LIBERO seed s "
                        "starts from fixed initial state s %% 50)")
    e.add_argument("--noise", default="clean", metavar="SPEC",
                   help="image noise on every camera the policy reads (fog:2, a preset; see "
                        "rapid-eval --noise); the result goes beside the clean one in the card")
    for sp in (t, e):
        sp.add_argument("--quiet", action="store_true",
                        help="no progress bar, progress lines or loss lines; results still print")
        sp.add_argument("--wandb", choices=MODES, default=None,
                        help="W&B mode, run in the checkpoint folder's wandb/ (default: offline "
                             "unless an API key is configured)")
    return p


def _collect_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("--tasks", default="mt10",
                   help="comma-separated tasks, mt10 for all ten, or a LIBERO suite "
                        "(libero_object: its ten tasks, both cameras, 8-D proprio, 7-D actions)")
    c.add_argument("--demos", type=int, default=150, help="expert episodes per task")
    c.add_argument("--out", required=True, metavar="FILE", help="the demo file to write (.npz)")
    c.add_argument("--workers", type=int, default=2,
                   help="worker processes (tasks are dealt out among them)")
    c.add_argument("--dart-sigma", type=float, default=0.1,
                   help="std of the Gaussian noise added to the executed expert action (DART), "
                        "so demos show recoveries; the recorded label stays the clean action")
    c.add_argument("--chunk-size", type=int, default=8, help="actions per recorded target chunk")
    c.add_argument("--image-size", type=int, default=64, help="camera image side in pixels")
    c.add_argument("--first-seed", type=int, default=100_000,
                   help="first env seed of the demos (kept apart from evaluation seeds; on "
                        "LIBERO each draws a fresh layout, never one of the 50 fixed states)")
    c.add_argument("--cameras", default="main", metavar="NAMES",
                   help="Meta-World cameras to record: main (corner4) first, then e.g. "
                   "gripperPOV (the wrist view)")
    c.add_argument("--targets", action="store_true",
                   help="also record object and goal positions (labels of the auxiliary "
                   "localisation loss, never a policy input)")
    c.add_argument("--record-every", type=int, default=2,
                   help="LIBERO: record every n-th tick (rendering two cameras dominates the "
                        "cost); every tick still labels the chunks")


def _train_flags(t: argparse.ArgumentParser) -> None:
    t.add_argument("--family", required=True, choices=["ar-token", "flow", "chunk-regress"],
                   help="the VLA family to train")
    t.add_argument("--data", required=True, metavar="FILES",
                   help="comma-separated demo .npz files")
    t.add_argument("--out", required=True, metavar="DIR", help="the checkpoint folder to write")
    budget = t.add_argument_group("budget and optimiser")
    budget.add_argument("--minutes", type=float, default=20.0, help="wall-clock training budget")
    budget.add_argument("--steps", type=int, default=1_000_000,
                        help="at most this many optimiser steps")
    budget.add_argument("--batch", type=int, default=64, help="batch size")
    budget.add_argument("--lr", type=float, default=3e-4, help="learning rate")
    budget.add_argument("--seed", type=int, default=0, help="torch seed")
    budget.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default)")
    recipe = t.add_argument_group("recipe")
    recipe.add_argument("--aux-weight", type=float, default=0.0,
                        help="chunk-regress: weight of the auxiliary loss regressing object and "
                        "goal positions (needs demos collected with --targets)")
    recipe.add_argument("--jitter", type=float, default=0.0,
                        help="colour jitter strength (brightness, contrast, channel gain)")
    recipe.add_argument("--noise-aug", default="", metavar="NAMES",
                        help="corruption families applied to a share of training images at "
                        "severity 1-2 (e.g. gaussian_noise,contrast); leave a family out to "
                        "test generalisation honestly")
    recipe.add_argument("--noise-share", type=float, default=0.25,
                        help="share of training images --noise-aug corrupts")
    t.add_argument("--decode", default="autoregressive", choices=["autoregressive", "parallel"],
                   help="ar-token only: how action tokens are decoded")
    t.add_argument("--vision-layers", type=int, default=None, metavar="N",
                   help="ResNet stages (chunk-regress) or ViT layers of a new model (default: the "
                        "family's); one more ResNet stage quarters chunk-regress's image tokens")
    t.add_argument("--init", default=None, metavar="DIR",
                   help="continue from this checkpoint folder (fresh optimiser)")
    t.add_argument("--eval-seeds", type=int, default=0,
                   help="then evaluate on this many held-out seeds per task (0: no evaluation)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rapid-train``."""
    try:
        a = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"rapid-train: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    command = "rapid-train " + " ".join(argv if argv is not None else sys.argv[1:])
    from rapid_env.agents.vla.train import run_command

    return run_command(a, command)


if __name__ == "__main__":
    raise SystemExit(main())
