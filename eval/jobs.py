"""A sweep as a list of episode jobs, each with a key that survives restarts and machines.

A sweep is tasks x noises x links x agents on paired seeds. Every episode of it is an
:class:`EpisodeJob`: its cell's full environment configuration, the agent spec and the seed. The
job's :meth:`~EpisodeJob.key` is a digest of exactly those, so it is the same in every process,
on every machine and in every rerun: the results store keys records by it (a rerun skips what is
done, nothing is counted twice), and any backend (in-process, local processes, Ray) can run any
job in any order and still produce the record a serial run would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rapid_env.config import EnvConfig
from rapid_env.registry import first_alias

Cell = tuple[str, str, str, str]
"""(task, noise, link, agent): one cell of the sweep, run over all paired seeds."""

KEY_FIELD = "episode_key"
"""The record field that holds the job's key."""

MAX_EPISODES = 100_000
"""Paired seeds per cell. At 100 000 seeds a success rate's 95 % interval is under +-0.4
percentage points wide, so more seeds change no comparison; the bound catches a typo (an extra
zero or two) before a sweep plans, keys and stores millions of episodes."""

MAX_SWEEP_EPISODES = 1_000_000
"""Episodes in a whole sweep (cells x seeds). The results store keeps every record in memory and
rereads them on resume (about 2 KB each: 2 GB at this bound), and every job is planned and keyed
before the first episode runs (seconds per 100 000); a larger study is several sweeps."""

MAX_SEED = 2**31 - 1
"""The largest episode seed: a 32-bit signed int, which every reader of the records (CSV in a
spreadsheet, W&B's charts, JSON in a browser) keeps exact."""


@dataclass(frozen=True)
class SweepSpec:
    """The cross product to run."""

    tasks: tuple[str, ...]
    agents: tuple[str, ...]
    noises: tuple[str, ...] = ("clean",)
    links: tuple[str, ...] = ("constant:20:40",)
    episodes: int = 3
    seed: int = 0
    base: EnvConfig = field(default_factory=EnvConfig)
    episode_s: Mapping[str, float] = field(default_factory=dict)
    """Per-task episode lengths that override ``base.max_episode_s`` (a LIBERO task's suite
    step limit when ``--max-episode-s`` is not given); Meta-World tasks are never in it."""

    def config(self, task: str, noise: str | None = None, link: str | None = None) -> EnvConfig:
        """The configuration of ``task``'s cells (with ``noise`` and ``link`` when given)."""
        changes: dict[str, object] = {"task": task}
        if noise is not None:
            changes["noise"] = noise
        if link is not None:
            changes["link"] = link
        if task in self.episode_s:
            changes["max_episode_s"] = self.episode_s[task]
        return replace(self.base, **changes)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        check_counts(self.episodes, self.seed)
        for name in ("tasks", "agents", "noises", "links"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} is empty; give at least one")
            check_distinct(name, values)
        total = self.n_episodes()
        if total > MAX_SWEEP_EPISODES:
            raise ValueError(
                f"the sweep has {total} episodes ({len(self.tasks)} tasks x {len(self.agents)} "
                f"agents x {len(self.noises)} noises x {len(self.links)} links x "
                f"{self.episodes} episodes); allowed: at most {MAX_SWEEP_EPISODES} per sweep "
                "(split it into several --out folders)"
            )

    def seeds(self) -> list[int]:
        """The paired episode seeds shared by every cell."""
        return [self.seed + i for i in range(self.episodes)]

    def n_episodes(self) -> int:
        """Total episodes in the sweep."""
        return (
            len(self.tasks) * len(self.agents) * len(self.noises) * len(self.links) * self.episodes
        )


_WHAT = {"tasks": "task", "agents": "decider", "noises": "noise", "links": "link"}


def _identity(field_name: str) -> Callable[[str], object]:
    """How ``field_name``'s values are identified: after parsing, not by their spelling.

    Imported here, not at the top: a reader of stored records needs no registry.
    """
    if field_name == "agents":
        from rapid_env.agents.registry import DECIDERS

        return DECIDERS.identity
    if field_name == "links":
        from rapid_env.link import LINKS

        return LINKS.identity
    if field_name == "noises":
        from rapid_env.noise.spec import noise_identity

        return noise_identity
    return str.strip


def check_distinct(field_name: str, values: Sequence[str], label: str | None = None) -> None:
    """Refuse a sweep axis that names one thing twice: a cell run twice doubles its n.

    Values are compared after parsing (:meth:`~rapid_env.registry.Registry.identity`): deciders
    by name and resolved config (``rapid`` and ``rapid()``), links by their parameters
    (``constant:20:40`` and ``constant:20.0:40``), noises by part and severity, tasks by name.
    The values themselves are kept as given: records carry the user's spelling.

    Args:
        field_name: ``tasks``, ``agents``, ``noises`` or ``links``.
        values: the axis's specs as given.
        label: how the message names the axis (a CLI flag); default ``field_name``.

    Raises:
        ValueError: one line naming both spellings.
    """
    where = label or field_name
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(
            f"{where} lists {', '.join(twice)} more than once; a cell run twice would "
            "double its n and narrow its interval"
        )
    same = first_alias(values, _identity(field_name))
    if same is not None:
        raise ValueError(
            f"{where}: {same[0]!r} and {same[1]!r} are the same {_WHAT.get(field_name, 'value')}; "
            "give it once"
        )


def identity_key(identity: Mapping[str, Any]) -> str:
    """16 hex digits of SHA-256 of the canonical JSON of an episode's identity.

    A module function, not only :meth:`EpisodeJob.key`, so a reader that has only a manifest's
    plain-data cell configurations (:mod:`rapid_env.eval.store`) computes the same keys.
    """
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EpisodeJob:
    """One episode of a sweep: what to build, which decider, which seed, and what else to record.

    ``cell``, ``seed`` and ``config`` determine the record and its key. The options only add to
    a record and leave the key, the head and every other field alone, so every backend runs every
    job the same way and a store resumes it:

    Attributes:
        oracle: redundancy-oracle tolerances in action units (``rapid-eval --oracle``); the
            record gets the oracle's fields (:mod:`rapid_env.oracle`); empty: no oracle.
        media_dir: absolute folder for the episode's video, per-tick series and still
            (``rapid-eval --videos``, :mod:`rapid_env.eval.media`); empty: no media.
    """

    cell: Cell
    seed: int
    config: EnvConfig
    oracle: tuple[float, ...] = ()
    media_dir: str = ""

    @property
    def agent(self) -> str:
        """The decider spec, exactly as the user gave it."""
        return self.cell[3]

    def identity(self) -> dict[str, Any]:
        """Everything that determines the record (plain data; the key is its digest)."""
        return {"env": self.config.to_dict(), "agent": self.agent, "seed": self.seed}

    def key(self) -> str:
        """A stable digest of :meth:`identity`: what :func:`identity_key` gives for it.

        The canonical JSON is assembled from the cell's configuration, serialised once per
        configuration (every seed of a cell shares it): keying a large sweep costs a hash per
        episode, not a serialisation. :func:`canonical_identity` is the plain definition, and the
        two give the same text.
        """
        text = (f'{{"agent":{_canonical(self.agent)},"env":{_env_json(self.config)},'
                f'"seed":{_canonical(self.seed)}}}')
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def head(self) -> dict[str, Any]:
        """The fields that open every record: the cell, the seed and the model setup."""
        cfg = self.config
        task, noise, link, agent = self.cell
        return {"task": task, "agent": agent, "noise": noise, "link": link, "seed": self.seed,
                "policy": cfg.policy, "profile": cfg.profile, "edge": cfg.edge,
                "cloud": cfg.cloud, "device": cfg.device, "dtype": cfg.dtype}


def check_counts(episodes: object, seed: object) -> None:
    """ValueError unless ``episodes`` and ``seed`` are ints within their bounds.

    Checked when a :class:`SweepSpec` is made, so the CLI and every caller of the API meet the
    same bounds before anything is planned.
    """
    if not _is_int(episodes) or not 1 <= episodes <= MAX_EPISODES:  # type: ignore[operator]
        raise ValueError(
            f"episodes={episodes!r}; allowed: an int in 1..{MAX_EPISODES} (paired seeds per cell)"
        )
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:  # type: ignore[operator]
        raise ValueError(f"seed={seed!r}; allowed: an int in 0..{MAX_SEED}")
    last = seed + episodes - 1  # type: ignore[operator]
    if last > MAX_SEED:
        raise ValueError(
            f"seed={seed!r} with episodes={episodes!r} reaches seed {last}; allowed: "
            f"seed + episodes - 1 <= {MAX_SEED}"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def canonical_identity(job: EpisodeJob) -> str:
    """The canonical JSON text of a job's :meth:`~EpisodeJob.identity` (what its key hashes)."""
    return json.dumps(job.identity(), sort_keys=True, separators=(",", ":"), default=str)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


_ENV_JSON: dict[int, tuple[EnvConfig, str]] = {}
_ENV_JSON_MAX = 4096


def _env_json(config: EnvConfig) -> str:
    """A configuration object's canonical JSON, once per object (a sweep has one per cell).

    Cached by identity, not equality: ``control_hz=20`` and ``20.0`` are equal configurations
    with different JSON, so different keys. The entry holds the object, so its id is not reused.
    """
    hit = _ENV_JSON.get(id(config))
    if hit is not None and hit[0] is config:
        return hit[1]
    if len(_ENV_JSON) >= _ENV_JSON_MAX:
        _ENV_JSON.clear()
    text = _canonical(config.to_dict())
    _ENV_JSON[id(config)] = (config, text)
    return text


def cells(spec: SweepSpec) -> list[Cell]:
    """The sweep's cells in the fixed record order (task, noise, link, agent)."""
    return [
        (task, noise, link, agent)
        for task in spec.tasks
        for noise in spec.noises
        for link in spec.links
        for agent in spec.agents
    ]


def plan(spec: SweepSpec) -> list[EpisodeJob]:
    """Every episode of the sweep, in the serial order (cell, then seed)."""
    jobs: list[EpisodeJob] = []
    for cell in cells(spec):
        task, noise, link, _ = cell
        cfg = spec.config(task, noise, link)
        jobs.extend(EpisodeJob(cell, seed, cfg) for seed in spec.seeds())
    return jobs
