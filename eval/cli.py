"""``rapid-eval``: run a sweep of tasks x agents x noises x links on paired seeds.

Writes ``OUT/episodes.jsonl`` (one JSON line per finished episode), ``OUT/summary.json`` and
``OUT/summary.csv`` (one row per task x agent x noise x link cell), logs one W&B run (offline when
no API key is configured), and prints the summary table.

Bad input exits with code 2 and one line naming the bad value and the allowed values.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from rapid_env.agents.registry import DECIDERS
from rapid_env.compose import validate_names
from rapid_env.config import ControlConfig, EnvConfig
from rapid_env.eval.runner import SweepSpec, run_sweep
from rapid_env.eval.summary import summarize, write_summary
from rapid_env.eval.table import format_table
from rapid_env.link import LINK_FORMS
from rapid_env.specs import SpecError, split_specs
from rapid_env.tasks.suite import TASKS

DEFAULT_TASKS = "mt10"
DEFAULT_AGENTS = "rapid,edge-only,cloud-only"
DEFAULT_LINKS = "constant:20:40"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, exit code 2: scripts read the message, not a usage dump."""
        self.exit(2, f"rapid-eval: error: {message}\n")


def _csv(text: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"empty list {text!r}")
    return items


def _agent_specs(text: str) -> tuple[str, ...]:
    """Split ``--agents`` at top-level commas: ``rapid(high_threshold=6,cooldown_s=0.1)`` is one."""
    try:
        items = split_specs(text)
    except SpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not items:
        raise argparse.ArgumentTypeError(f"empty list {text!r}")
    return items


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = _Parser(prog="rapid-eval", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--tasks", type=_csv, default=_csv(DEFAULT_TASKS),
                   help="comma-separated task names, or mt10 for all ten (default mt10)")
    p.add_argument("--agents", type=_agent_specs, default=_agent_specs(DEFAULT_AGENTS),
                   help="comma-separated deciders, each a name or name(key=value,...) "
                        f"(default {DEFAULT_AGENTS})")
    p.add_argument("--noise", type=_csv, default=("clean",),
                   help="comma-separated noise specs: clean or <name>:<severity 1-5>")
    p.add_argument("--links", type=_csv, default=_csv(DEFAULT_LINKS),
                   help="comma-separated link specs: " + ", ".join(LINK_FORMS))
    p.add_argument("--episodes", type=int, default=3, help="paired seeds per cell")
    p.add_argument("--seed", type=int, default=1000,
                   help="first episode seed (0-999 are reserved for training and tuning)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/<time>)")
    p.add_argument("--wandb", choices=("offline", "online", "disabled"), default=None,
                   help="W&B mode (default: offline unless an API key is configured)")
    p.add_argument(
        "--policy", default="chunk-regress",
        help="robot policy: ar-token, flow, chunk-regress (default), expert, ckpt:<dir>, hf:<dir>",
    )
    p.add_argument("--profile", default="openvla-7b", help="full-size architecture cost profile")
    p.add_argument("--edge", default="jetson-agx-orin", help="edge device")
    p.add_argument("--cloud", default="a100", help="cloud device")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--control-hz", type=float, default=20.0)
    p.add_argument("--chunk-size", type=int, default=8)
    p.add_argument("--max-episode-s", type=float, default=10.0)
    p.add_argument("--hold-policy", choices=("hold", "repeat_last"), default="hold")
    p.add_argument("--align", choices=("executed", "time"), default="executed")
    p.add_argument("--workers", type=int, default=1,
                   help="parallel worker processes, one sweep cell per job (default 1)")
    p.add_argument("--quiet", action="store_true", help="no per-episode progress lines")
    return p


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"--out {str(out)!r} is not writable ({exc.strerror})") from None


def parse_spec(
    argv: Sequence[str] | None,
) -> tuple[SweepSpec, Path, str | None, bool, int]:
    """Parse and validate; raise ValueError naming the bad value and the allowed ones."""
    args = build_parser().parse_args(argv)
    tasks = tuple(TASKS.names()) if args.tasks == ("mt10",) else args.tasks
    for t in tasks:
        TASKS.check(t)
    for a in args.agents:
        DECIDERS.check(a)  # builds the spec's config: a bad field or value fails here
    if args.episodes < 1:
        raise ValueError(f"--episodes {args.episodes} must be >= 1")
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers} must be >= 1")
    base = EnvConfig(
        task=tasks[0], policy=args.policy, profile=args.profile, edge=args.edge,
        cloud=args.cloud, image_size=args.image_size, control_hz=args.control_hz,
        chunk_size=args.chunk_size, max_episode_s=args.max_episode_s,
        control=ControlConfig(hold_policy=args.hold_policy, align=args.align),
    )
    from rapid_env.tasks.metaworld_task import mw_steps_per_tick

    mw_steps_per_tick(args.control_hz)
    for noise in args.noise:
        for link in args.links:
            validate_names(EnvConfig(task=tasks[0], noise=noise, link=link, policy=args.policy,
                                     profile=args.profile, edge=args.edge, cloud=args.cloud))
    spec = SweepSpec(tasks=tasks, agents=args.agents, noises=args.noise, links=args.links,
                     episodes=args.episodes, seed=args.seed, base=base)
    out = args.out or Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    _check_out(out)
    return spec, out, args.wandb, args.quiet, args.workers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-eval``."""
    try:
        spec, out, wandb_mode, quiet, workers = parse_spec(argv)
    except ValueError as exc:
        print(f"rapid-eval: error: {exc}", file=sys.stderr)
        return 2
    from rapid_env.eval.wandb_log import WandbLogger

    config = {"sweep": {k: v for k, v in asdict(spec).items() if k != "base"},
              "env": spec.base.to_dict(), "out": str(out)}
    total = spec.n_episodes()
    done = 0

    def progress(record: dict[str, object]) -> None:
        nonlocal done
        done += 1
        logger.log_episode(record)
        if not quiet:
            print(f"[{done}/{total}] {record['task']} {record['agent']} {record['noise']} "
                  f"{record['link']} seed={record['seed']} success={record['success']} "
                  f"latency_ms={record.get('latency_ms_mean')}", flush=True)

    with WandbLogger(wandb_mode, "rapid-env", config, out, name=out.name) as logger:
        records = run_sweep(spec, out, on_record=progress, workers=workers)
        rows = summarize(records)
        write_summary(rows, out)
        logger.finish(rows)
    print(format_table(rows))
    print(f"\nwrote {out / 'episodes.jsonl'}, {out / 'summary.json'}, {out / 'summary.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
