"""``rapid-eval``: run a sweep of tasks x agents x noises x links on paired seeds.

Writes into ``OUT/`` (a results store, :mod:`rapid_env.eval.store`): ``manifest.json`` (the
resolved sweep), ``episodes.jsonl`` (one JSON line per finished episode, keyed), then
``summary.json`` and ``summary.csv`` (one row per task x agent x noise x link cell, rebuilt from
every stored record); logs one W&B run per cell and a sweep-level run, in one group (offline
when no API key is configured), and prints the summary table. Rerunning the same command into the
same ``OUT`` resumes.

Exit codes: 0 every episode ran (a policy's own faults are data: counted in the ``faults``
column); 2 bad input, before any episode (one line naming the bad value and the allowed ones), or
a store that cannot be used (another process has it open, it holds another sweep, the disk is
full: one line saying what to do);
3 the sweep finished but some episodes are invalid: an infrastructure fault (the remote server
unreachable or gone, a worker process that died, an episode that could not run, a checkpoint
whose first chunk was non-finite) spoiled them; they are left out of the summary's success and
latency, and rerunning the same command runs them again; 130
interrupted (Ctrl-C): everything finished is stored, rerun the same command to resume.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rapid_env.agents.train_decider.settings import TRAIN_SEEDS
from rapid_env.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_EPISODE_ERRORS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    make_parser,
)

if TYPE_CHECKING:  # the sweep's machinery loads after the flags parse: --help stays instant
    from rapid_env.eval.backends import Backend
    from rapid_env.eval.jobs import EpisodeJob, SweepSpec
    from rapid_env.eval.store import OpenMode, ResultsStore
    from rapid_env.eval.wandb_log import SweepLogger
    from rapid_env.progress import Progress

__all__ = ["EXIT_BAD_INPUT", "EXIT_EPISODE_ERRORS", "EXIT_INTERRUPTED", "EXIT_OK", "Invocation",
           "build_parser", "main", "parse_spec"]

DEFAULT_TASKS = "mt10"
DEFAULT_AGENTS = "rapid,edge-only,cloud-only"
DEFAULT_LINKS = "constant:20:40"
HELD_OUT_SEEDS = range(TRAIN_SEEDS, 100_000)
"""Evaluation seeds: 0-999 train and tune deciders (``rapid-train-decider``, ``tune_rapid.py``),
100000 and up are the VLA families' demonstrations (``rapid-train collect``,
:data:`rapid_env.agents.vla.demos.TRAIN_SEED_BASE`, which imports MuJoCo: a test keeps the two
equal)."""

EXAMPLES = (
    "rapid-eval --tasks reach,push --agents rapid,cloud-only --episodes 5 --out runs/mine",
    "rapid-eval --tasks mt10 --agents 'rapid(high_threshold=6),periodic' "
    "--noise clean,gaussian_noise:3 --links wifi,5g-driving --workers 2 --out runs/study",
    "rapid-eval --policy expert --links trace:my.mahi --videos 2 --oracle --baseline cloud-only",
    "rapid-eval --import mypkg.mypolicy --policy my-policy --agents rapid --out runs/plugin",
)


def _csv(text: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"empty list {text!r}")
    return items


def _agent_specs(text: str) -> tuple[str, ...]:
    """Split ``--agents`` at top-level commas: ``rapid(high_threshold=6,cooldown_s=0.1)`` is one."""
    from rapid_env.specs import SpecError, split_specs

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
    """The command line, in groups: what runs, the model and robot, output, where, W&B."""
    p = make_parser("rapid-eval", (__doc__ or "").splitlines()[0].replace("``", ""), EXAMPLES)
    _sweep_flags(p.add_argument_group("what to run"))
    _model_flags(p.add_argument_group("the policy, its cost model and the robot"))
    _output_flags(p)
    _backend_flags(p.add_argument_group("where episodes run"))
    _wandb_flags(p.add_argument_group("Weights & Biases"))
    return p


def _sweep_flags(g: argparse._ArgumentGroup) -> None:
    from rapid_env.link import LINKS
    from rapid_env.serve import remote_link  # noqa: F401  (registers the remote: link form)

    g.add_argument("--tasks", type=_csv, default=_csv(DEFAULT_TASKS),
                   help="comma-separated task names (reach, libero_object/3), or a suite: mt10, "
                        "libero_object, libero_spatial, libero_goal, libero_10, libero_90 or a "
                        "LIBERO-PRO variant such as libero_object_swap (default: mt10)")
    g.add_argument("--agents", type=_agent_specs, default=_agent_specs(DEFAULT_AGENTS),
                   help="comma-separated deciders, each a name or name(key=value,...) "
                        f"(default: {DEFAULT_AGENTS})")
    g.add_argument("--noise", type=_csv, default=("clean",),
                   help="comma-separated noise specs: clean, a preset, or <name>:<severity 1-5> "
                        "(default: clean)")
    g.add_argument("--links", type=_csv, default=_csv(DEFAULT_LINKS),
                   help="comma-separated link specs: " + ", ".join(LINKS.names())
                        + f" (remote: the policy's cloud half on a rapid-serve there; "
                          f"docs/serve.md) (default: {DEFAULT_LINKS})")
    g.add_argument("--episodes", type=int, default=3, help="paired seeds per cell")
    g.add_argument("--seed", type=int, default=1000,
                   help="first episode seed; held-out seeds are 1000-99999 (0-999 train and tune "
                        "deciders, 100000+ are the VLAs' demos: a warning says so)")
    g.add_argument("--import", dest="imports", type=_csv, action="append", default=[],
                   metavar="MODULE",
                   help="import MODULE (on PYTHONPATH) before the sweep is planned, here and in "
                        "every worker, so the policies, deciders or tasks it registers can be "
                        "named (repeatable or comma-separated; docs/plugging_in_a_policy.md)")
    g.add_argument("--max-in-flight", type=int, default=None, metavar="N",
                   help="pipelined refills: every agent whose decider has a max_in_flight field "
                        "and does not set it gets max_in_flight=N (its name says so), and the "
                        "controller allows N + 1 requests in flight (default: 1 refill, 2 "
                        "requests; docs/deciders.md#pipelined-refills)")


def _model_flags(g: argparse._ArgumentGroup) -> None:
    from rapid_env.config import (
        ACTION_CONTRACTS,
        DEVICE_FORMS,
        DTYPE_CHOICES,
        LOOP_COST_CHOICES,
        PLACEMENT_CHOICES,
        POLICY_TIMINGS,
    )

    g.add_argument("--policy", default="chunk-regress",
                   help="robot policy: ar-token, flow, chunk-regress (each family's newest "
                        "checkpoint), a pinned version such as chunk-regress@v1, expert, "
                        "ckpt:<dir>, hf:<dir>, openpi:ws://<host>:<port>, "
                        "vla-eval:ws://<host>:<port>, or a name a plugin registers")
    g.add_argument("--device", default="cpu", metavar="DEVICE",
                   help=f"torch device the policy's model runs on: {', '.join(DEVICE_FORMS)} "
                        "(ar-token, flow, chunk-regress, ckpt:<dir>, hf:<dir>; an absent device "
                        "is refused before any episode)")
    g.add_argument("--dtype", choices=DTYPE_CHOICES, default="float32",
                   help="precision of the policy's weights and activations (actions come back "
                        "as float32); bfloat16 halves a checkpoint's memory")
    g.add_argument("--policy-timing", choices=POLICY_TIMINGS, default="profile",
                   help="how a request to a policy served elsewhere is timed: profile (the cost "
                        "profile, deterministic records) or measured (the measured round trip: "
                        "what a robot on that server would see; openpi:ws://<host>:<port> and "
                        "vla-eval:ws://<host>:<port> policies)")
    g.add_argument("--profile", default="openvla-7b",
                   help="full-size architecture whose cost the simulated latency follows: a "
                        "built-in name, or file:<json> written by rapid-profile")
    g.add_argument("--edge", default="jetson-agx-orin", help="edge device")
    g.add_argument("--cloud", default="a100", help="cloud device")
    g.add_argument("--image-size", type=int, default=64, help="camera image side in pixels")
    g.add_argument("--control-hz", type=float, default=20.0,
                   help="control rate; must divide Meta-World's 80 Hz")
    g.add_argument("--chunk-size", type=int, default=8, help="actions per policy chunk")
    g.add_argument("--max-episode-s", type=float, default=None,
                   help="simulated seconds before an episode is truncated (default: the suite's "
                        "own: 10 s for Meta-World, a LIBERO suite's step limit, e.g. 14 s for "
                        "libero_object)")
    g.add_argument("--edge-budget-gib", type=float, default=None, metavar="GIB",
                   help="fixed memory-bounded partition: the edge holds the deepest prefix of "
                        "blocks that fits in GIB GiB (the paper's regime: 2.4 RAPID, 4.7 the "
                        "vision-triggered baseline); default: the planner's split per request")
    g.add_argument("--placement", choices=PLACEMENT_CHOICES, default="edge-prefix",
                   help="which end of the model the edge holds: edge-prefix (its first blocks), "
                        "edge-suffix (its last blocks, the head included; the cloud runs the "
                        "front), best (per request, the cheaper of the two on the link "
                        "estimate); docs/cost_model.md")
    g.add_argument("--loop-cost", choices=LOOP_COST_CHOICES, default="per-pass",
                   help="what a split inside the model's loop costs: per-pass (a round trip "
                        "per token pass) or once (the cut state crosses once)")
    g.add_argument("--action-contract", choices=ACTION_CONTRACTS, default="chunk",
                   help="chunk (the robot runs the policy's whole chunk) or single (one action "
                        "per call, as OpenVLA-7B answers; requests every tick)")
    g.add_argument("--hold-policy", choices=("hold", "repeat_last"), default="hold",
                   help="what the robot does while no action is buffered")
    g.add_argument("--align", choices=("executed", "time"), default="executed",
                   help="how an arriving chunk is aligned to the actions already executed")
    g.add_argument("--trust-checkpoint-code", action="store_true",
                   help="allow a checkpoint folder to name code to import (hf: adapter files)")
    g.add_argument("--token-file", default=None, metavar="FILE",
                   help="remote: links: the file holding rapid-serve's bearer token (default: "
                        "$RAPID_SERVE_TOKEN); its path, never the token, reaches the workers")


def _output_flags(p: argparse.ArgumentParser) -> None:
    from rapid_env.oracle import DEFAULT_TOLERANCES

    g = p.add_argument_group("results: the store in --out, report, videos, oracle")
    g.add_argument("--out", type=_out_dir, default=None,
                   help="output folder, a results store; the same command resumes it "
                        "(default: runs/<time>)")
    store = g.add_mutually_exclusive_group()
    store.add_argument("--overwrite", action="store_true",
                       help="start afresh when --out holds records (they are deleted)")
    store.add_argument("--extend", action="store_true",
                       help="add tasks, agents, noises, links or episodes to the sweep in --out")
    g.add_argument("--videos", type=int, default=0, metavar="N",
                   help="record the first N seeds of every cell: video, per-tick series and a "
                        "still under OUT/videos/ (default: 0, none; docs/videos.md)")
    g.add_argument("--oracle", type=_tolerances, nargs="?", default=(),
                   const=DEFAULT_TOLERANCES, metavar="TOLS",
                   help="run the redundancy oracle: the policy also runs at every tick in a "
                        "shadow pass (not executed, not charged) and each record gets "
                        "redundant_share_<tol>, trigger_precision_<tol>, trigger_recall_<tol> "
                        "(tolerances in action units; default when given alone: "
                        + ",".join(format(t, "g") for t in DEFAULT_TOLERANCES)
                        + "; several times slower; docs/paper.md#redundancy-oracle)")
    g.add_argument("--baseline", default=None, metavar="AGENT",
                   help="the agent that OUT/paired.csv and the report compare every other "
                        "agent with, seed by seed (default: the first of --agents)")
    g.add_argument("--no-report", action="store_true",
                   help="do not write OUT/report.html (rapid-report OUT writes it later)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    g.add_argument("--verbose", action="store_true", help="also one line per finished episode")


def _backend_flags(g: argparse._ArgumentGroup) -> None:
    from rapid_env.eval.backends import BACKENDS

    g.add_argument("--backend", choices=BACKENDS.names(), default="local",
                   help="local worker processes, or a Ray cluster")
    g.add_argument("--workers", type=int, default=1,
                   help="local backend: worker processes, one episode per job (at most this "
                        "machine's cores); ray backend: CPUs for a local Ray cluster")
    g.add_argument("--address", default=None,
                   help="ray backend: cluster address (auto, ray://host:port); default: start "
                        "a local Ray cluster")


def _wandb_flags(g: argparse._ArgumentGroup) -> None:
    from rapid_env.wandb_mode import MODES, PROJECT

    g.add_argument("--wandb", choices=MODES, default=None,
                   help="W&B mode (default: offline unless an API key is configured)")
    g.add_argument("--project", default=None,
                   help=f"W&B project (default: $WANDB_PROJECT, else {PROJECT})")
    g.add_argument("--entity", default=None,
                   help="W&B entity, a user or team (default: $WANDB_ENTITY, else your account's "
                        "default)")
    g.add_argument("--group", default=None,
                   help="W&B run group holding the sweep's runs (default: the --out folder's "
                        "name)")
    g.add_argument("--tags", type=_tags, default=(), help="comma-separated W&B run tags")
    g.add_argument("--job-type", default="eval", help="W&B job type of the cell runs")


def _abs(path: str | None) -> str | None:
    """An absolute path (workers may run elsewhere in the file system), None for None."""
    return None if path is None else str(Path(path).expanduser().resolve())


def _out_dir(text: str) -> Path:
    """``--out``: a non-empty path (an unset shell variable must not mean this folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is empty; give a folder (an unset shell variable?), e.g. --out runs/x")
    return Path(text)


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        # a probe of its own: two commands on one --out must not delete each other's
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
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
    imports: tuple[str, ...] = ()  # --import modules, imported again in every worker
    wandb_project: str | None = None  # None: $WANDB_PROJECT, else the default project
    wandb_entity: str | None = None  # None: $WANDB_ENTITY, else the account's default


def _check_counts(args: argparse.Namespace) -> None:
    """The counts' bounds, named by their flags (the sweep's own check says it in API terms)."""
    from rapid_env.eval.backends.ray_backend import check_local_cpus
    from rapid_env.eval.jobs import MAX_EPISODES, MAX_SEED

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
    from rapid_env.config import ControlConfig, EnvConfig
    from rapid_env.eval.backends import check_workers
    from rapid_env.eval.jobs import SweepSpec, check_distinct
    from rapid_env.eval.paired import resolve_baseline
    from rapid_env.plugins import import_modules, load_plugins
    from rapid_env.tasks.suite import expand_tasks, suite_episode_s
    from rapid_env.wandb_mode import resolve_entity, resolve_project

    imports = tuple(dict.fromkeys(m for group in args.imports for m in group))
    load_plugins()  # installed packages' entry points: a broken one fails here, named
    import_modules(imports)  # before any name is checked: they register names
    tasks = expand_tasks(args.tasks)
    _check_counts(args)
    agents, renamed = pipelined_agents(args.agents, args.max_in_flight)
    base = EnvConfig(
        task=tasks[0], policy=args.policy, profile=args.profile, edge=args.edge,
        cloud=args.cloud, image_size=args.image_size, control_hz=args.control_hz,
        chunk_size=args.chunk_size,
        max_episode_s=10.0 if args.max_episode_s is None else args.max_episode_s,
        control=ControlConfig(hold_policy=args.hold_policy, align=args.align,
                              max_in_flight=controller_cap(agents, args.max_in_flight)),
        trust_checkpoint_code=args.trust_checkpoint_code, edge_budget_gib=args.edge_budget_gib,
        placement=args.placement, loop_cost=args.loop_cost,
        action_contract=args.action_contract, device=args.device, dtype=args.dtype,
        policy_timing=args.policy_timing,
    )
    if base.device != "cpu":  # torch is asked only off the default: the expert needs none
        from rapid_env.agents.torch_device import check_device

        check_device(base.device)
    for field_name, flag, values in (("tasks", "--tasks", tasks),
                                     ("agents", "--agents", agents),
                                     ("noises", "--noise", args.noise),
                                     ("links", "--links", args.links)):
        check_distinct(field_name, values, flag)  # named by flag; SweepSpec checks it again
    own_s = {t: suite_episode_s(t, args.control_hz) for t in tasks}
    spec = SweepSpec(tasks=tasks, agents=agents, noises=args.noise, links=args.links,
                     episodes=args.episodes, seed=args.seed, base=base,
                     episode_s={} if args.max_episode_s is not None else
                     {t: s for t, s in own_s.items() if s is not None})
    check_workers(args.backend, args.workers)
    resolve_project(args.project)  # a name W&B would refuse fails now, not after the sweep
    resolve_entity(args.entity)
    out = args.out or Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    _check_out(out)
    mode: OpenMode = "overwrite" if args.overwrite else "extend" if args.extend else "resume"
    command = shlex.join(["rapid-eval", *(sys.argv[1:] if argv is None else argv)])
    _warn_reserved_seeds(args.seed, args.episodes)  # last: a refused command says one line
    return Invocation(spec, out, args.wandb, args.quiet, args.verbose, args.backend,
                      args.workers, args.address, mode, command, wandb_group=args.group,
                      wandb_tags=args.tags, wandb_job_type=args.job_type,
                      report=not args.no_report, videos=args.videos, oracle=args.oracle,
                      token_file=_abs(args.token_file), imports=imports,
                      baseline=args.baseline and resolve_baseline(
                          renamed.get(args.baseline, args.baseline), agents),
                      wandb_project=args.project, wandb_entity=args.entity)


def pipelined_agents(
    agents: Sequence[str], n: int | None
) -> tuple[tuple[str, ...], dict[str, str]]:
    """``--max-in-flight N``: add ``max_in_flight=N`` to every agent spec that can take it.

    An agent takes it when its decider's config has a ``max_in_flight`` field and the spec does
    not set it already; the new spec is the agent's name in records and manifests, so they say
    which reading ran. Returns the agents and a map from each renamed spec to its new name.

    Raises:
        ValueError: ``n`` is not an int in 1..64 (named by the flag).
    """
    if n is None:
        return tuple(agents), {}
    from rapid_env.agents.refill import check_max_in_flight
    from rapid_env.agents.registry import DECIDERS
    from rapid_env.specs import parse_spec as parse_agent

    try:
        check_max_in_flight(n)
    except ValueError as exc:
        raise ValueError(f"--max-in-flight {n}: {exc}") from None
    renamed: dict[str, str] = {}
    for agent in agents:
        name, fields = parse_agent(agent)
        cls = DECIDERS.config_class(name) if agent in DECIDERS else None
        if cls is None or "max_in_flight" not in getattr(cls, "__dataclass_fields__", {}):
            continue
        if "max_in_flight" in fields:
            continue
        text = agent.strip()
        if text.endswith(")"):
            head = text[:-1].rstrip()
            sep = "" if head.endswith("(") else ","
            renamed[agent] = f"{head}{sep}max_in_flight={n})"
        else:
            renamed[agent] = f"{text}(max_in_flight={n})"
    return tuple(renamed.get(a, a) for a in agents), renamed


def controller_cap(agents: Sequence[str], n: int | None) -> int:
    """The controller's in-flight cap: one request beyond the largest refill pipeline.

    Without ``--max-in-flight`` the default cap (2) stays, and an agent that keeps more refills
    in flight than that is refused with the flag to use (its refills would be refused and
    counted instead); with it, ``max(2, 1 + the largest max_in_flight of any agent)``, so a
    trigger such as RAPID's critical request keeps a slot beyond the refills.

    Raises:
        ValueError: without the flag, an agent asks for more refills in flight than 2.
    """
    from rapid_env.agents.registry import DECIDERS
    from rapid_env.config import ControlConfig

    default = ControlConfig().max_in_flight
    largest = 1
    for agent in agents:
        try:
            cfg = DECIDERS.config(agent)
        except ValueError:
            continue  # a bad spec is named by the sweep's own check, with its allowed values
        value = getattr(cfg, "max_in_flight", 1)
        if isinstance(value, int) and not isinstance(value, bool):
            largest = max(largest, value)
    if n is None:
        if largest > default:
            raise ValueError(
                f"an agent keeps max_in_flight={largest} refills in flight but the controller "
                f"allows {default}; add --max-in-flight {largest} (it allows {largest + 1})"
            )
        return default
    return max(default, largest + 1)


def _warn_reserved_seeds(seed: int, episodes: int) -> None:
    """One line on stderr when the sweep's seeds leave the held-out range.

    A result on a training seed flatters the policy or decider trained on it.
    """
    last = seed + episodes - 1
    if seed < HELD_OUT_SEEDS.start or last >= HELD_OUT_SEEDS.stop:
        print(f"rapid-eval: warning: seeds {seed}-{last} are outside the held-out range "
              f"{HELD_OUT_SEEDS.start}-{HELD_OUT_SEEDS.stop - 1} (0-999 train and tune deciders, "
              f"{HELD_OUT_SEEDS.stop}+ are the VLAs' demos): results on them are not held-out",
              file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-eval``."""
    try:
        inv = parse_spec(argv)
    except ValueError as exc:
        print(f"rapid-eval: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from rapid_env.eval.backends import make_backend
    from rapid_env.eval.preflight import preflight
    from rapid_env.eval.store import StoreError

    backend: Backend | None = None
    try:
        # the backend first: local workers warm up (imports, model) while preflight runs here
        backend = make_backend(inv.backend, inv.workers, inv.address, token_file=inv.token_file,
                               imports=inv.imports)
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
    except StoreError as exc:  # another sweep, locked by another process, disk full, ...
        print(f"rapid-eval: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        from rapid_env.eval.store import full_message, is_disk_full, stored_count

        if not is_disk_full(exc):
            raise
        path = Path(exc.filename) if exc.filename else inv.out
        print(f"rapid-eval: error: {full_message(path, stored_count(inv.out))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        backend.close()


class SweepWatcher:
    """What ``rapid-eval`` shows and logs while a sweep runs: the progress bar and the W&B runs.

    The :class:`~rapid_env.eval.runner.SweepObserver` of :func:`_run`; after a normal end
    :meth:`finish` publishes the summary rows (and the report) to the sweep-level W&B run.
    """

    def __init__(self, inv: Invocation) -> None:
        self.inv = inv
        self.bar: Progress | None = None
        self.logger: SweepLogger | None = None

    def on_open(self, store: ResultsStore, pending: list[EpisodeJob]) -> None:
        """Report a resume, open the W&B runs (ids into the manifest), start the bar."""
        from rapid_env.eval.jobs import plan
        from rapid_env.eval.wandb_log import SweepLogger
        from rapid_env.progress import Progress
        from rapid_env.record import is_episode_error

        inv = self.inv
        total = inv.spec.n_episodes()
        done = total - len(pending)
        if store.dropped_torn_line:
            print("rapid-eval: dropped a torn last line of episodes.jsonl (a crash mid-write)",
                  file=sys.stderr)
        for problem in store.problems:  # damaged or untrusted lines: named, not counted
            print(f"rapid-eval: {problem}", file=sys.stderr)
        for warning in store.warnings:  # e.g. a manifest too old to check the weights by
            print(f"rapid-eval: warning: {warning}", file=sys.stderr)
        if done:
            print(f"rapid-eval: resuming: {done} of {total} episodes done", file=sys.stderr)
        extra = {"out": str(inv.out), "backend": inv.backend, "workers": inv.workers,
                 "videos": inv.videos, "oracle": list(inv.oracle)}
        self.logger = logger = SweepLogger(
            inv.wandb, inv.out, project=inv.wandb_project, entity=inv.wandb_entity,
            group=inv.wandb_group, tags=inv.wandb_tags, job_type=inv.wandb_job_type,
            extra_config=extra,
        )
        if logger.open(store.manifest):
            store.write_manifest()  # the runs' ids, before any episode: a crash resumes into them
        # ordered() skips what is not stored; an invalid record runs again, its new one is logged
        logger.preload([r for r in store.ordered(plan(inv.spec)) if store.done(r["episode_key"])])
        self.bar = bar = Progress(total=total, desc="rapid-eval", initial=done, quiet=inv.quiet)
        stored = [r for key, r in store.records.items() if store.done(key)]
        bar.record(successes=sum(bool(r.get("success")) for r in stored),
                   errors=sum(is_episode_error(r) for r in stored))
        rerun = len(store.invalid())
        if rerun:
            print(f"rapid-eval: running {rerun} invalid episode(s) again", file=sys.stderr)

    def on_record(self, record: dict[str, Any]) -> None:
        """Log the episode in its cell's run and move the bar."""
        from rapid_env.record import is_episode_error

        assert self.logger is not None and self.bar is not None, "on_open comes first"
        self.logger.log_episode(record)
        self.bar.update(success=bool(record.get("success")), error=is_episode_error(record))
        if self.inv.verbose:
            self.bar.write(_episode_line(record))

    def on_close(self, exit_code: int) -> None:
        """Close the bar; a sweep that stopped early closes its W&B runs as failed now."""
        if self.bar is not None:
            self.bar.close()
        if exit_code and self.logger is not None:
            self.logger.finish([], exit_code=exit_code)

    def finish(self, rows: list[dict[str, Any]], paired: list[dict[str, Any]]) -> None:
        """Publish the summary and paired rows, charts, report and store to the sweep run."""
        if self.logger is not None:
            self.logger.finish(rows, paired_rows=paired)


def _run(inv: Invocation, backend: Backend) -> int:
    """Run the sweep into its store with progress and W&B; summarise; choose the exit code."""
    from rapid_env.eval.paired import write_paired
    from rapid_env.eval.runner import run_sweep
    from rapid_env.eval.summary import summarize, write_summary
    from rapid_env.eval.table import format_table

    watcher = SweepWatcher(inv)
    try:
        result = run_sweep(inv.spec, inv.out, watcher, backend=backend, mode=inv.mode,
                           manifest_extra={"command": inv.command}, videos=inv.videos,
                           oracle=inv.oracle)
    except KeyboardInterrupt:
        print(f"\nrapid-eval: interrupted; every finished episode is in "
              f"{inv.out / 'episodes.jsonl'}; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    rows = summarize(result.records)
    write_summary(rows, inv.out)
    paired = write_paired(result.records, inv.out, inv.baseline, inv.spec.agents)
    report_line = _write_report(inv.out, inv.baseline) if inv.report else ""
    watcher.finish(rows, paired)
    print(format_table(rows))
    print(f"\nwrote {inv.out / 'episodes.jsonl'}, {inv.out / 'summary.json'}, "
          f"{inv.out / 'summary.csv'}, {inv.out / 'paired.csv'} ({result.ran} episodes run now, "
          f"{result.resumed} resumed)")
    if report_line:
        print(report_line)
    if result.invalid:
        print(f"rapid-eval: {invalid_line(result.invalid)}", file=sys.stderr)
        return EXIT_EPISODE_ERRORS
    return EXIT_OK


def invalid_line(invalid: Sequence[dict[str, Any]]) -> str:
    """``N episode(s) invalid (infrastructure: <kinds with counts>); rerun ...``: one line.

    The kinds are the reasons' first two parts (``remote_error: ServerUnavailable``,
    ``episode_error: RuntimeError``), most frequent first, so the line says what failed without
    the details of each episode (those are in ``invalid`` of ``episodes.jsonl``).
    """
    from collections import Counter

    from rapid_env.record import invalid_reason

    kinds = Counter(": ".join(str(invalid_reason(r)).split(": ")[:2]) for r in invalid)
    what = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in kinds.most_common())
    return (f"{len(invalid)} episode(s) invalid (infrastructure: {what}); rerun the same "
            "command to run them again")


def _write_report(out: Path, baseline: str | None = None) -> str:
    """Write ``OUT/report.html``; a failure is a warning, never the sweep's (records are kept)."""
    from rapid_env.eval.report import write_report  # matplotlib loads only here

    try:
        return f"report: {write_report(out, baseline)}"
    except Exception as exc:  # the records are stored: the page can be rebuilt later
        print(f"rapid-eval: warning: no report ({type(exc).__name__}: {exc}); "
              f"rapid-report {out} retries", file=sys.stderr)
        return ""


def _episode_line(record: dict[str, Any]) -> str:
    lat = record.get("latency_ms_mean")
    return (f"{record['task']} {record['agent']} {record['noise']} {record['link']} "
            f"seed={record['seed']} success={record['success']} "
            f"latency_ms={'-' if lat is None else f'{lat:.1f}'}"
            + (f" fault={record['fault']}" if record.get("fault") else ""))


if __name__ == "__main__":
    raise SystemExit(main())
