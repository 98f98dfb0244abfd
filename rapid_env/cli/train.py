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

from rapid_env.wandb_mode import MODES

EVAL_FIRST_SEED = 1000
"""Held-out evaluation seeds start here (demos use env seeds >= 100_000); a test keeps it equal
to :data:`rapid_env.agents.vla.train.EVAL_FIRST_SEED`."""


def build_parser() -> argparse.ArgumentParser:
    """The ``rapid-train`` command line."""
    p = argparse.ArgumentParser(
        prog="rapid-train", description=(__doc__ or "").splitlines()[0]
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="record scripted-expert demos")
    c.add_argument("--tasks", default="mt10")
    c.add_argument("--demos", type=int, default=150)
    c.add_argument("--out", required=True)
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--dart-sigma", type=float, default=0.1)
    c.add_argument("--chunk-size", type=int, default=8)
    c.add_argument("--image-size", type=int, default=64)
    c.add_argument("--first-seed", type=int, default=100_000)
    t = sub.add_parser("train", help="behaviour-clone a family")
    t.add_argument("--family", required=True, choices=["ar-token", "flow", "chunk-regress"])
    t.add_argument("--data", required=True, help="comma-separated demo .npz files")
    t.add_argument("--out", required=True)
    t.add_argument("--minutes", type=float, default=20.0)
    t.add_argument("--steps", type=int, default=1_000_000)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    t.add_argument("--decode", default="autoregressive", choices=["autoregressive", "parallel"])
    t.add_argument("--init", default=None, help="continue from this checkpoint directory")
    t.add_argument("--eval-seeds", type=int, default=0, help="evaluate on this many held-out seeds")
    e = sub.add_parser("eval", help="evaluate a checkpoint and write the result into its card")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--tasks", default="mt10")
    e.add_argument("--seeds", type=int, default=10)
    e.add_argument("--first-seed", type=int, default=EVAL_FIRST_SEED)
    for sp in (t, e):
        sp.add_argument(
            "--quiet",
            action="store_true",
            help="no progress bar, progress lines or loss lines; results still print",
        )
        sp.add_argument(
            "--wandb",
            choices=MODES,
            default=None,
            help="W&B mode, run in the checkpoint folder's wandb/ (default: offline unless an "
            "API key is configured)",
        )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rapid-train``."""
    a = build_parser().parse_args(argv)
    command = "rapid-train " + " ".join(argv if argv is not None else sys.argv[1:])
    from rapid_env.agents.vla.train import run_command

    return run_command(a, command)


if __name__ == "__main__":
    raise SystemExit(main())
