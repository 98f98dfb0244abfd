"""``rapid-eval``: run a sweep of tasks x agents x noises x links on paired seeds.

Writes into ``OUT/`` (a results store, :mod:`rapid_env.eval.store`): ``manifest.json`` (the
resolved sweep), ``episodes.jsonl`` (one JSON line per finished episode, keyed), then
``summary.json`` and ``summary.csv`` (one row per task x agent x noise x link cell, rebuilt from
every stored record); logs one W&B run (offline when no API key is configured) and prints the
summary table. Rerunning the same command into the same ``OUT`` resumes.

Exit codes: 0 every episode ran (a policy's own faults are data: counted in the ``faults``
column); 2 bad input, before any episode (one line naming the bad value and the allowed ones);
3 the sweep finished but some episodes could not run (``episode_error`` records); 130
interrupted (Ctrl-C): everything finished is stored, rerun the same command to resume.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from rapid_env.config import ControlConfig, EnvConfig
from rapid_env.eval.backends import BACKENDS, Backend, check_workers, make_backend
from rapid_env.eval.backends.ray_backend import check_local_cpus
from rapid_env.eval.execute import is_episode_error
from rapid_env.eval.jobs import MAX_EPISODES, MAX_SEED, EpisodeJob, SweepSpec, plan
from rapid_env.eval.media import media_for
from rapid_env.eval.paired import resolve_baseline, write_paired
from rapid_env.eval.preflight import preflight
from rapid_env.eval.runner import run_sweep
from rapid_env.eval.store import OpenMode, ResultsStore, StoreError
from rapid_env.eval.summary import summarize, write_summary
from rapid_env.eval.table import format_table
from rapid_env.link import LINK_FORMS
from rapid_env.oracle import DEFAULT_TOLERANCES
from rapid_env.serve.transport import REMOTE_FORM
from rapid_env.specs import SpecError, split_specs
from rapid_env.tasks.suite import TASKS
from rapid_env.wandb_mode import PROJECT

EXIT_OK, EXIT_BAD_INPUT, EXIT_EPISODE_ERRORS, EXIT_INTERRUPTED = 0, 2, 3, 130

DEFAULT_TASKS = "mt10"
DEFAULT_AGENTS = "rapid,edge-only,cloud-only"
DEFAULT_LINKS = "constant:20:40"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, exit code 2 (through :func:`main`): scripts read the message, not a usage."""
        raise ValueError(message)


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


def _tolerances(text: str) -> tuple[float, ...]:
    """``--oracle 0.05,0.1``: distinct tolerances > 0, in action units."""
    try:
        tols = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers like 0.05,0.1,0.2") from None
    if not tols or any(not 0 < t < float("inf") for t in tols) or len(set(tols)) != len(tols):
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct tolerances > 0")
    return tols


def _tags(text: str) -> tuple[str, ...]:
    """``--tags``: a comma list; empty items dropped, so ``--tags ''`` means no tags."""
    return tuple(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))


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
                   help="comma-separated link specs: " + ", ".join((*LINK_FORMS, REMOTE_FORM))
                        + " (the policy's cloud half on a rapid-serve there; docs/serve.md)")
    p.add_argument("--token-file", default=None, metavar="FILE",
                   help="remote: links: the file holding rapid-serve's bearer token (default: "
                        "$RAPID_SERVE_TOKEN); its path, never the token, reaches the workers")
    p.add_argument("--episodes", type=int, default=3, help="paired seeds per cell")
    p.add_argument("--seed", type=int, default=1000,
                   help="first episode seed (0-999 are reserved for training and tuning)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/<time>)")
    p.add_argument("--videos", type=int, default=0, metavar="N",
                   help="record the first N seeds of every cell: video, per-tick series and a "
                        "still under OUT/videos/ (default 0: none; docs/videos.md)")
    p.add_argument("--oracle", type=_tolerances, nargs="?", default=(),
                   const=DEFAULT_TOLERANCES, metavar="TOLS",
                   help="run the redundancy oracle: the policy also runs at every tick in a "
                        "shadow pass (not executed, not charged) and each record gets "
                        "redundant_share_<tol>, trigger_precision_<tol>, trigger_recall_<tol> "
                        "(tolerances in action units, default "
                        + ",".join(format(t, "g") for t in DEFAULT_TOLERANCES)
                        + "; several times slower; docs/paper.md#redundancy-oracle)")
    p.add_argument("--wandb", choices=("offline", "online", "disabled"), default=None,
                   help="W&B mode (default: offline unless an API key is configured)")
    p.add_argument("--group", default=None, help="W&B run group (e.g. the study this sweep is in)")
    p.add_argument("--tags", type=_tags, default=(), help="comma-separated W&B run tags")
    p.add_argument("--job-type", default="eval", help="W&B job type (default eval)")
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
    p.add_argument("--edge-budget-gib", type=float, default=None, metavar="GIB",
                   help="fixed memory-bounded partition: the edge holds the deepest prefix of "
                        "blocks that fits in GIB GiB (the paper's regime: 2.4 RAPID, 4.7 the "
                        "vision-triggered baseline); default: the planner's split per request")
    p.add_argument("--hold-policy", choices=("hold", "repeat_last"), default="hold")
    p.add_argument("--align", choices=("executed", "time"), default="executed")
    p.add_argument("--workers", type=int, default=1,
                   help="local backend: worker processes, one episode per job (default 1, at "
                        "most this machine's cores); ray backend: CPUs for a local Ray cluster")
    p.add_argument("--backend", choices=BACKENDS, default="local",
                   help="where episodes run: local (default) or ray")
    p.add_argument("--address", default=None,
                   help="ray backend: cluster address (auto, ray://host:port); default: start "
                        "a local Ray cluster")
    p.add_argument("--trust-checkpoint-code", action="store_true",
                   help="allow a checkpoint folder to name code to import (hf: adapter files)")
    store = p.add_mutually_exclusive_group()
    store.add_argument("--overwrite", action="store_true",
                       help="start afresh when --out holds records (they are deleted)")
    store.add_argument("--extend", action="store_true",
                       help="add tasks, agents, noises, links or episodes to the sweep in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--verbose", action="store_true", help="also one line per finished episode")
    p.add_argument("--no-report", action="store_true",
                   help="do not write OUT/report.html (rapid-report OUT writes it later)")
    p.add_argument("--baseline", default=None, metavar="AGENT",
                   help="the agent that OUT/paired.csv and the report compare every other "
                        "agent with, seed by seed (default: the first of --agents)")
    return p


def _abs(path: str | None) -> str | None:
    """An absolute path (workers may run elsewhere in the file system), None for None."""
    return None if path is None else str(Path(path).expanduser().resolve())


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"--out {str(out)!r} is not writable ({exc.strerror})") from None


@dataclass(frozen=True)
class Invocation:
    """A parsed and validated ``rapid-eval`` command."""

    spec: SweepSpec
    out: Path
    wandb: str | None
    quiet: bool
    verbose: bool
    backend: str
    workers: int
    address: str | None
    mode: OpenMode
    command: str
    wandb_group: str | None = None
    wandb_tags: tuple[str, ...] = ()
    wandb_job_type: str = "eval"
    report: bool = True
    videos: int = 0
    oracle: tuple[float, ...] = ()
    token_file: str | None = None  # a path; the token itself is read where a client is built
    baseline: str | None = None  # None: the sweep's first agent


def _check_counts(args: argparse.Namespace) -> None:
    """The counts' bounds, named by their flags (the sweep's own check says it in API terms)."""
    if not 1 <= args.episodes <= MAX_EPISODES:
        raise ValueError(f"--episodes {args.episodes}; allowed: 1..{MAX_EPISODES} (paired seeds "
                         "per cell; more change no comparison)")
    if not 0 <= args.seed <= MAX_SEED - args.episodes + 1:
        raise ValueError(f"--seed {args.seed}; allowed: 0..{MAX_SEED - args.episodes + 1} "
                         f"(the last episode's seed, seed + episodes - 1, at most {MAX_SEED})")
    if not 0 <= args.videos <= MAX_EPISODES:
        raise ValueError(f"--videos {args.videos}; allowed: 0..{MAX_EPISODES} (the first N seeds "
                         "of every cell are recorded; N >= --episodes records them all)")
    if args.backend == "ray" and args.address is None:
        check_local_cpus(args.workers)


def parse_spec(argv: Sequence[str] | None) -> Invocation:
    """Parse and check the flags; raise ValueError naming the bad value and the allowed ones.

    Building the parts the sweep names (:func:`~rapid_env.eval.preflight.preflight`) comes
    next, in :func:`main`, once the backend's workers are warming up.
    """
    args = build_parser().parse_args(argv)
    tasks = tuple(TASKS.names()) if args.tasks == ("mt10",) else args.tasks
    for t in tasks:
        TASKS.check(t)
    _check_counts(args)
    base = EnvConfig(
        task=tasks[0], policy=args.policy, profile=args.profile, edge=args.edge,
        cloud=args.cloud, image_size=args.image_size, control_hz=args.control_hz,
        chunk_size=args.chunk_size, max_episode_s=args.max_episode_s,
        control=ControlConfig(hold_policy=args.hold_policy, align=args.align),
        trust_checkpoint_code=args.trust_checkpoint_code, edge_budget_gib=args.edge_budget_gib,
    )
    spec = SweepSpec(tasks=tasks, agents=args.agents, noises=args.noise, links=args.links,
                     episodes=args.episodes, seed=args.seed, base=base)
    check_workers(args.backend, args.workers)
    out = args.out or Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    _check_out(out)
    mode: OpenMode = "overwrite" if args.overwrite else "extend" if args.extend else "resume"
    command = shlex.join(["rapid-eval", *(sys.argv[1:] if argv is None else argv)])
    return Invocation(spec, out, args.wandb, args.quiet, args.verbose, args.backend,
                      args.workers, args.address, mode, command, wandb_group=args.group,
                      wandb_tags=args.tags, wandb_job_type=args.job_type,
                      report=not args.no_report, videos=args.videos, oracle=args.oracle,
                      token_file=_abs(args.token_file),
                      baseline=args.baseline and resolve_baseline(args.baseline, args.agents))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-eval``."""
    try:
        inv = parse_spec(argv)
    except ValueError as exc:
        print(f"rapid-eval: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    backend: Backend | None = None
    try:
        # the backend first: local workers warm up (imports, model) while preflight runs here
        backend = make_backend(inv.backend, inv.workers, inv.address, token_file=inv.token_file)
        preflight(inv.spec, token_file=inv.token_file)
    except ValueError as exc:
        if backend is not None:
            backend.close()
        print(f"rapid-eval: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # Ctrl-C while joining a cluster or loading: nothing ran yet
        if backend is not None:
            backend.close()
        print("rapid-eval: interrupted before any episode ran", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        return _run(inv, backend)
    except StoreError as exc:
        print(f"rapid-eval: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        backend.close()


def _run(inv: Invocation, backend: Backend) -> int:
    """Run the sweep into its store with progress and W&B; summarise; choose the exit code."""
    from rapid_env.eval.wandb_log import WandbLogger
    from rapid_env.progress import Progress

    state: dict[str, Any] = {}

    def on_open(store: ResultsStore, pending: list[EpisodeJob]) -> None:
        total = inv.spec.n_episodes()
        done = total - len(pending)
        if store.dropped_torn_line:
            print("rapid-eval: dropped a torn last line of episodes.jsonl (a crash mid-write)",
                  file=sys.stderr)
        if done:
            print(f"rapid-eval: resuming: {done} of {total} episodes done", file=sys.stderr)
        config = {"sweep": store.manifest["sweep"], "out": str(inv.out),
                  "backend": inv.backend, "workers": inv.workers}
        logger = WandbLogger(inv.wandb, PROJECT, config, inv.out, name=inv.out.name,
                             run_id=store.manifest.get("wandb_run_id"), group=inv.wandb_group,
                             tags=inv.wandb_tags, job_type=inv.wandb_job_type)
        logger.preload(store.ordered(plan(inv.spec)))  # ordered() skips what is not stored
        if logger.run_id and store.manifest.get("wandb_run_id") != logger.run_id:
            store.manifest["wandb_run_id"] = logger.run_id
            store.write_manifest()
        bar = Progress(total=total, desc="rapid-eval", initial=done, quiet=inv.quiet)
        stored = list(store.records.values())
        bar.record(successes=sum(bool(r.get("success")) for r in stored),
                   errors=sum(is_episode_error(r) for r in stored))
        state.update(logger=logger, bar=bar)

    def on_record(record: dict[str, Any]) -> None:
        media = media_for(record, inv.out) if record.get("media") else None
        state["logger"].log_episode(record, media)
        state["bar"].update(success=bool(record.get("success")), error=is_episode_error(record))
        if inv.verbose:
            state["bar"].write(_episode_line(record))

    try:
        result = run_sweep(inv.spec, inv.out, on_record=on_record, backend=backend,
                           mode=inv.mode, on_open=on_open,
                           manifest_extra={"command": inv.command}, videos=inv.videos,
                           oracle=inv.oracle)
    except KeyboardInterrupt:
        _close(state, exit_code=1)
        print(f"\nrapid-eval: interrupted; every finished episode is in "
              f"{inv.out / 'episodes.jsonl'}; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException:
        _close(state, exit_code=1)
        raise
    state["bar"].close()
    rows = summarize(result.records)
    write_summary(rows, inv.out)
    write_paired(result.records, inv.out, inv.baseline, inv.spec.agents)
    report_line = _write_report(inv.out, inv.baseline) if inv.report else ""
    state["logger"].finish(rows)
    print(format_table(rows))
    print(f"\nwrote {inv.out / 'episodes.jsonl'}, {inv.out / 'summary.json'}, "
          f"{inv.out / 'summary.csv'}, {inv.out / 'paired.csv'} ({result.ran} episodes run now, "
          f"{result.resumed} resumed)")
    if report_line:
        print(report_line)
    if result.episode_errors:
        print(f"rapid-eval: {result.episode_errors} episode(s) could not run (fault "
              "'episode_error: ...' in episodes.jsonl)", file=sys.stderr)
        return EXIT_EPISODE_ERRORS
    return EXIT_OK


def _write_report(out: Path, baseline: str | None = None) -> str:
    """Write ``OUT/report.html``; a failure is a warning, never the sweep's (records are kept)."""
    from rapid_env.eval.report import write_report  # matplotlib loads only here

    try:
        return f"report: {write_report(out, baseline)}"
    except Exception as exc:  # the records are stored: the page can be rebuilt later
        print(f"rapid-eval: warning: no report ({type(exc).__name__}: {exc}); "
              f"rapid-report {out} retries", file=sys.stderr)
        return ""


def _close(state: dict[str, Any], exit_code: int) -> None:
    if "bar" in state:
        state["bar"].close()
    if "logger" in state:
        state["logger"].finish([], exit_code=exit_code)


def _episode_line(record: dict[str, Any]) -> str:
    lat = record.get("latency_ms_mean")
    return (f"{record['task']} {record['agent']} {record['noise']} {record['link']} "
            f"seed={record['seed']} success={record['success']} "
            f"latency_ms={'-' if lat is None else f'{lat:.1f}'}"
            + (f" fault={record['fault']}" if record.get("fault") else ""))


if __name__ == "__main__":
    raise SystemExit(main())
