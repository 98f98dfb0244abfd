"""The results store: a sweep's folder, which a rerun resumes and never counts twice.

``OUT/`` holds:

* ``manifest.json`` -- the resolved sweep (its lists, the base environment, every cell's full
  configuration), what each episode records on top of the plain record (``recorded``: the
  ``--oracle`` tolerances and ``--videos`` count), the digest of the policy's weights
  (``policy_digest``, :func:`~rapid_env.agents.policy_digest.policy_digest`; null for a policy
  without a checkpoint, such as the scripted expert), the content digest of a ``file:`` cost
  profile (``profile_digest``; only for those), where the policy's model ran (``device``,
  ``dtype``: ``rapid-eval --device/--dtype``; off their defaults also in the sweep's and every
  cell's environment, so in the episode keys), how a served policy's requests were timed
  (``policy_timing``: ``rapid-eval --policy-timing``, ``profile`` or ``measured``; the same way
  in the environment and the keys when ``measured``), the package versions, the git commit, the W&B
  run ids (``wandb_run_id``: the sweep-level run; ``wandb_runs``: one per cell, by
  ``agent|task|noise|link``), and when it was started;
* ``episodes.jsonl`` -- one JSON record per finished episode, keyed by ``episode_key`` (the
  digest of the cell's full configuration and the seed, :mod:`rapid_env.eval.jobs`) and sealed by
  ``record_digest`` (SHA-256 of the record's canonical JSON without that field and the
  wall-clock fields, :func:`record_digest`), appended, flushed and fsynced before the next
  episode is handed out;
* ``.lock`` -- the holder's pid and command line while a process has the store open.

**One writer.** Opening takes an exclusive ``flock`` on ``OUT/.lock`` (released by
:meth:`ResultsStore.close`, or by the operating system when the holder dies, so a crashed run
never leaves the store locked); a second process is refused with the holder's pid and command,
instead of running the same episodes again and appending every key twice.

**Reopening** compares manifests: the same sweep **resumes** (only the missing keys run), a
different one is refused with the fields that differ, unless the user asks to ``overwrite``
(start afresh) or to ``extend`` (more cells or seeds over the same base environment).

**The same weights.** A policy name does not pin its weights (``chunk-regress`` is always the
newest shipped version; a ``ckpt:<dir>`` folder can be trained again), so a resume or an
extension whose policy now loads weights of another digest than the manifest's is refused: it
would mix two policies in one table. A manifest written before stores recorded the digest
resumes as before, with a warning (:attr:`ResultsStore.warnings`) that the weights cannot be
checked; it is not given today's digest, which would claim the stored episodes ran with it. A
``file:`` cost profile is held to the same rule by its content digest: a file counted again
(another model behind the same name) is not resumed into the old episodes. A
resume
that would record more than the stored episodes hold (oracle tolerances, videos of more seeds)
is refused too: it would run only the missing episodes, so the new parts would silently be
missing from the rest. ``overwrite`` clears only a folder whose manifest this harness wrote, and
deletes only the files a sweep writes (:data:`OWNED`); a folder with other files and no such
manifest is refused with nothing deleted.

**Trusting the records.** Every line is read by :func:`~rapid_env.eval.summary.scan_records`
(a line that is not UTF-8, not JSON, not an object, or torn is named with its line number) and
checked by :func:`check_records`: a record whose digest does not match its content, whose key is
not an episode of the sweep, or whose key is not the one its own cell and seed give is named and
left out (so its episode runs again on a resume, and a report never counts it). Stores written
before records carried digests (their manifest has no ``record_digest``) are still read: their
records are accepted without a digest, but their keys are checked all the same. A crash can
leave half a line at the end of ``episodes.jsonl``; it is cut off on open, and a duplicated key
is never loaded twice.

**Invalid episodes run again.** A record whose episode an infrastructure fault spoiled (its
``invalid`` field: the server gone, a worker dead, a broken checkpoint) is stored like any other,
but it does not count as done: the same command runs its job again and appends the new record,
and a valid record for the key replaces the invalid one (on reading, a valid copy wins; of
invalid copies the last).

**Disk full.** A record that does not fit is cut back off the file and the manifest is written
through a temporary file (fsynced, then renamed; removed on failure), so the store stays
resumable; the error (:class:`StoreFull`) says how many episodes are stored.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from rapid_env.episode import WALL_CLOCK_FIELDS
from rapid_env.eval.jobs import KEY_FIELD, EpisodeJob, SweepSpec, identity_key, plan
from rapid_env.eval.summary import scan_records
from rapid_env.oracle import tol_name
from rapid_env.record import invalid_reason

FORMAT = "rapid-env-sweep/1"
MANIFEST = "manifest.json"
EPISODES = "episodes.jsonl"
LOCK = ".lock"
DIGEST_FIELD = "record_digest"
"""The record field that seals a stored record (:func:`record_digest`)."""
DIGEST_ALGORITHM = "sha256"
POLICY_DIGEST_FIELD = "policy_digest"
"""The manifest field that holds the digest of the policy's weights (None: no checkpoint)."""
PROFILE_DIGEST_FIELD = "profile_digest"
"""The manifest field that holds the content digest of a ``file:`` cost profile (only then)."""
_UNSEALED = frozenset((DIGEST_FIELD, *WALL_CLOCK_FIELDS))
OWNED: tuple[str, ...] = (
    MANIFEST, f"{MANIFEST}.tmp", EPISODES, "summary.json", "summary.csv", "paired.csv",
    "report.html", "videos", "wandb",
)
"""What a sweep writes into ``OUT`` (``paired.csv``: :data:`rapid_env.eval.paired.PAIRED_CSV`,
``report.html``: :data:`rapid_env.eval.report.REPORT`, ``videos``:
:data:`rapid_env.eval.media.MEDIA_DIR`, ``wandb``: the W&B run), and so all that ``overwrite``
deletes, with the temporary files of their atomic writes (``.<name>.*.tmp``)."""
OpenMode = Literal["resume", "overwrite", "extend"]
WANDB_KEYS: tuple[str, ...] = ("wandb_run_id", "wandb_runs")
"""Manifest keys kept across reopening: the sweep run's id and the cells' run ids."""
_PACKAGES = ("rapid-env", "torch", "transformers", "mujoco", "metaworld", "gymnasium", "numpy")
_FULL = (errno.ENOSPC, errno.EDQUOT)
Expected = Mapping[tuple[Any, ...], str]
"""(task, agent, noise, link, seed) -> the episode key the sweep plans for it."""


class StoreError(ValueError):
    """The folder holds another sweep (or a broken store): the message says what differs."""


class StoreLocked(StoreError):
    """Another process has the store open: the message names its pid and command."""


class StoreFull(StoreError):
    """The disk is full (or over quota): the message names the file and the stored episodes."""


@dataclass(frozen=True)
class Recorded:
    """What every episode of a store records on top of the plain record.

    Attributes:
        oracle: the redundancy oracle's tolerances (``--oracle``); empty: no oracle fields.
        videos: media of the first ``videos`` seeds of every cell (``--videos``).
    """

    oracle: tuple[float, ...] = ()
    videos: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``recorded`` entry."""
        return {"oracle": list(self.oracle), "videos": self.videos}

    def oracle_flag(self) -> str:
        """The ``--oracle`` value that asks for these tolerances."""
        return ",".join(tol_name(t) for t in self.oracle)


def sweep_identity(spec: SweepSpec) -> dict[str, Any]:
    """What makes two sweeps the same sweep (compared field by field on reopen)."""
    return {
        "tasks": list(spec.tasks), "agents": list(spec.agents), "noises": list(spec.noises),
        "links": list(spec.links), "episodes": spec.episodes, "seed": spec.seed,
        "env": spec.base.to_dict(),
    }


def make_manifest(
    spec: SweepSpec, extra: Mapping[str, Any] | None = None, recorded: Recorded | None = None
) -> dict[str, Any]:
    """The manifest of a new sweep: identity, every cell's config, versions, commit, time."""
    cells: dict[str, dict[str, Any]] = {}
    for job in plan(spec):
        cells.setdefault("/".join(job.cell), {"cell": list(job.cell), "env": job.config.to_dict()})
    return {
        "format": FORMAT,
        "sweep": sweep_identity(spec),
        "cells": list(cells.values()),
        "n_episodes": spec.n_episodes(),
        "recorded": (recorded or Recorded()).to_dict(),
        DIGEST_FIELD: DIGEST_ALGORITHM,
        POLICY_DIGEST_FIELD: _policy_digest(spec.base.policy),
        **_profile_digest(spec.base.profile),
        "device": spec.base.device,
        "dtype": spec.base.dtype,
        "policy_timing": spec.base.policy_timing,
        "versions": _versions(),
        "git_commit": _git_commit(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(dict(extra) if extra else {}),
    }


def _policy_digest(policy: str) -> str | None:
    """The weights' digest of ``policy`` (imported here: readers of a store need no registry)."""
    from rapid_env.agents.policy_digest import policy_digest

    return policy_digest(policy)


def _profile_digest(profile: str) -> dict[str, str]:
    """``{profile_digest: ...}`` for a ``file:`` profile (its name does not pin its content)."""
    from rapid_env.cost.profiles import profile_digest

    digest = profile_digest(profile)
    return {} if digest is None else {PROFILE_DIGEST_FIELD: digest}


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable field differences between two plain-data trees (``a.b: x -> y``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(differences(old.get(key), new.get(key), path))
        return out
    return [] if old == new else [f"{prefix}: {_short(old)} -> {_short(new)}"]


# ------------------------------------------------------------------------ trusting records
def record_digest(record: Mapping[str, Any]) -> str:
    """SHA-256 of the record's canonical JSON (sorted keys, no spaces), less what is not sealed.

    Canonical, so the digest survives a JSON round trip: what :meth:`ResultsStore.append` seals
    is what a reader recomputes from the line, and a hand edit of a sealed field breaks it.
    Left out: the digest itself and the wall-clock fields
    (:data:`~rapid_env.episode.WALL_CLOCK_FIELDS`, this machine's timings, not the episode's),
    so the same seed and configuration give the same digest, as they give the same record.
    """
    body = {k: v for k, v in record.items() if k not in _UNSEALED}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def expected_keys(jobs: Iterable[EpisodeJob]) -> dict[tuple[Any, ...], str]:
    """Each planned episode's (task, agent, noise, link, seed) and its key."""
    return {_ident(job.head()): job.key() for job in jobs}


def manifest_keys(manifest: Mapping[str, Any]) -> dict[tuple[Any, ...], str] | None:
    """The planned keys of the sweep a manifest describes; None when it does not say.

    For readers that have the manifest but not the command (the report): every cell's stored
    configuration and every seed give the same keys :func:`~rapid_env.eval.jobs.plan` gives.
    """
    sweep, cells = manifest.get("sweep"), manifest.get("cells")
    if not isinstance(sweep, Mapping) or not isinstance(cells, list):
        return None
    try:
        seeds = range(int(sweep["seed"]), int(sweep["seed"]) + int(sweep["episodes"]))
        out: dict[tuple[Any, ...], str] = {}
        for cell in cells:
            task, noise, link, agent = cell["cell"]
            for seed in seeds:
                out[(task, agent, noise, link, seed)] = identity_key(
                    {"env": cell["env"], "agent": agent, "seed": seed})
        return out
    except (KeyError, TypeError, ValueError):
        return None


def check_records(
    scanned: Iterable[tuple[int, dict[str, Any]]],
    expected: Expected | None,
    need_digest: bool,
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, str]]]:
    """The records that can be trusted (digest left out), and why each other one cannot.

    Args:
        scanned: numbered records (:func:`~rapid_env.eval.summary.scan_records`).
        expected: the sweep's planned keys (:func:`expected_keys`, :func:`manifest_keys`);
            None: unknown (no manifest), so keys are not checked and a record may lack one.
        need_digest: the store seals every record (its manifest names ``record_digest``); a
            store written before digests existed does not, and its records are taken as they
            are (their keys are still checked).
    """
    good: list[tuple[int, dict[str, Any]]] = []
    problems: list[tuple[int, str]] = []
    planned = set(expected.values()) if expected is not None else set()
    for number, record in scanned:
        why = _distrust(record, expected, planned, need_digest)
        if why:
            problems.append((number, why))
        else:
            good.append((number, {k: v for k, v in record.items() if k != DIGEST_FIELD}))
    return good, problems


def _distrust(
    record: Mapping[str, Any], expected: Expected | None, planned: set[str], need_digest: bool
) -> str:
    if expected is not None:
        key = record.get(KEY_FIELD)
        if not isinstance(key, str):
            return f"no {KEY_FIELD}"
        if key not in planned:
            return f"{KEY_FIELD} {key!r} is not an episode of this sweep"
        ident = _ident(record)
        if expected.get(ident) != key:
            cell = "/".join(str(x) for x in ident[:4])
            return (f"{KEY_FIELD} {key!r} is not the key of its own cell and seed ({cell}, "
                    f"seed {ident[4]!r})")
    if DIGEST_FIELD in record:
        if record[DIGEST_FIELD] != record_digest(record):
            return f"{DIGEST_FIELD} does not match the record (edited after it was stored?)"
    elif need_digest:
        return f"no {DIGEST_FIELD} (every record of this store has one)"
    return ""


def _ident(record: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(k) for k in ("task", "agent", "noise", "link", "seed"))


def read_records(out: Path, manifest: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The trusted records of the store in ``out`` in file order, and one line per bad line.

    For readers that must not touch the store (the report): nothing is repaired. Each problem
    is ``OUT/episodes.jsonl:<line>: <why>``. An absent file gives no records and no problems.
    """
    path = Path(out) / EPISODES
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], []
    scanned, bad = scan_records(data)
    good, distrusted = check_records(scanned, manifest_keys(manifest),
                                     manifest.get(DIGEST_FIELD) == DIGEST_ALGORITHM)
    problems = sorted([*bad, *distrusted])
    return [r for _, r in good], [_problem_line(path, n, why) for n, why in problems]


def stored_count(out: Path) -> int:
    """How many record lines ``out/episodes.jsonl`` holds (for a message; 0 when unreadable)."""
    try:
        return len(scan_records((Path(out) / EPISODES).read_bytes())[0])
    except OSError:
        return 0


def full_message(path: Path, stored: int) -> str:
    """The one line that a full disk gets: the file, what is safe, what to do."""
    return (f"disk full writing {path}: {stored} episode{'s' if stored != 1 else ''} "
            f"{'are' if stored != 1 else 'is'} stored; free space and rerun to resume")


def _problem_line(path: Path, number: int, why: str) -> str:
    return f"{path}:{number}: {why}; not counted"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is the file system saying it is full or over quota."""
    return isinstance(exc, OSError) and exc.errno in _FULL


class ResultsStore:
    """One sweep's folder: the manifest and the keyed, sealed, append-only episode records.

    Attributes:
        problems: one line per stored line that is not counted (damaged, torn, or not to be
            trusted), ``OUT/episodes.jsonl:<line>: <why>``, found when the store opened.
        dropped_torn_line: a torn last line (a crash mid-write) was cut off on open.
        warnings: one line per thing the user should know about the store that does not stop
            it, found when it opened (a manifest too old to record the weights' digest).
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.manifest_path = self.out / MANIFEST
        self.episodes_path = self.out / EPISODES
        self.lock_path = self.out / LOCK
        self.manifest: dict[str, Any] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        self.dropped_torn_line = False
        self.warnings: list[str] = []
        self._fd: int | None = None
        self._lock: IO[bytes] | None = None

    def __del__(self) -> None:
        """Release the lock and the file of a store that was never closed."""
        self.close()

    def __enter__(self) -> ResultsStore:
        """Use as a context manager: the store (and its lock) closes on leaving."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the store (see :meth:`close`)."""
        self.close()

    # ------------------------------------------------------------------ opening
    def open(
        self, spec: SweepSpec, mode: OpenMode = "resume", extra: Mapping[str, Any] | None = None,
        recorded: Recorded | None = None,
    ) -> None:
        """Lock the folder and open it for ``spec``: start, resume, extend or overwrite.

        See the module docstring. ``extra`` goes into the manifest as it is (e.g. the command
        line of this invocation); ``recorded`` is what the episodes run now record on top of the
        plain record (``--oracle``, ``--videos``).

        Raises:
            StoreLocked: another process has the folder open.
            StoreFull: the disk filled up while opening (the store is left as it was).
            StoreError: the folder holds another sweep and ``mode`` does not allow it, holds
                files but no manifest of this harness, or the stored episodes lack what
                ``recorded`` asks for.
        """
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.out} cannot be created ({exc.strerror})") from None
        created = not self.lock_path.exists()
        command = str((extra or {}).get("command") or shlex.join(sys.argv))
        self._take_lock(command)
        try:
            self._open_locked(spec, mode, extra, recorded or Recorded())
        except BaseException:
            self.close()
            if created:  # leave a refused folder as it was (e.g. one that is not a store)
                self.lock_path.unlink(missing_ok=True)
            raise

    def _open_locked(
        self, spec: SweepSpec, mode: OpenMode, extra: Mapping[str, Any] | None,
        recorded: Recorded,
    ) -> None:
        old = self._read_manifest()
        if mode == "overwrite":
            self._clear(old)
            old = None
        elif old is None:
            self._refuse_foreign()
        new = make_manifest(spec, extra, recorded)
        if old is not None:
            self._check_compatible(old, new, mode)
            self._check_weights(old, new)
            self._check_profile(old, new)
            new["created"] = old.get("created", new["created"])
            for key in WANDB_KEYS:  # a resumed or extended sweep logs into the same runs
                if key in old:
                    new[key] = old[key]
            if old.get(DIGEST_FIELD) != DIGEST_ALGORITHM:  # written before records were sealed
                new.pop(DIGEST_FIELD)
        jobs = plan(spec)
        self.records = self._load_records(jobs, new.get(DIGEST_FIELD) == DIGEST_ALGORITHM)
        if old is not None:
            new["recorded"] = self._check_recorded(spec, jobs, old, recorded).to_dict()
        self.manifest = new
        self.write_manifest()
        try:
            self._fd = os.open(self.episodes_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._os_error(exc, self.episodes_path) from None

    def _take_lock(self, command: str) -> None:
        """``flock`` the lock file (never waiting) and write our pid and command into it."""
        try:
            fh = open(self.lock_path, "a+b")  # held until close()
        except OSError as exc:
            raise StoreError(f"{self.lock_path} cannot be opened ({exc.strerror})") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = _holder(fh.read())
            fh.close()
            raise StoreLocked(
                f"{self.out} is in use by {holder}; wait for it to finish (or stop it), or use "
                "another --out"
            ) from None
        self._lock = fh
        try:
            fh.truncate(0)
            fh.write(json.dumps({"pid": os.getpid(), "command": command}).encode() + b"\n")
            fh.flush()
        except OSError as exc:
            self.close()
            raise self._os_error(exc, self.lock_path) from None

    def _check_compatible(self, old: dict[str, Any], new: dict[str, Any], mode: OpenMode) -> None:
        if old.get("format") != FORMAT:
            raise StoreError(f"{self.manifest_path}: format {old.get('format')!r}; "
                             f"this version reads {FORMAT!r}; use --overwrite or another --out")
        diff = differences(old["sweep"], new["sweep"])
        if not diff:
            return
        if mode == "extend":
            problems = _not_an_extension(old["sweep"], new["sweep"])
            if not problems:
                return
            raise StoreError(f"{self.out}: --extend can only add tasks, agents, noises, links or "
                             f"episodes to the stored sweep; {'; '.join(problems)}")
        raise StoreError(
            f"{self.out} holds a different sweep ({'; '.join(diff)}); rerun the same command to "
            "resume it, add --extend to add cells or seeds, --overwrite to start afresh, or use "
            "another --out"
        )

    def _check_weights(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Refuse to add episodes of other weights than the stored ones (same policy name).

        A manifest without the field (written before stores recorded it) resumes unchecked,
        with a warning, and keeps no digest: its stored episodes' weights are unknown.
        """
        policy = str(new["sweep"]["env"].get("policy"))
        now = new.get(POLICY_DIGEST_FIELD)
        if POLICY_DIGEST_FIELD not in old:
            new.pop(POLICY_DIGEST_FIELD, None)
            if now is not None:
                self.warnings.append(
                    f"{self.manifest_path} records no digest of the policy's weights (written "
                    f"before stores did): cannot check that {policy!r} still loads the weights "
                    f"the stored episodes ran with (now {now})")
            return
        had = old[POLICY_DIGEST_FIELD]
        if had == now:
            return
        from rapid_env.agents.policy_digest import pinned_with_digest

        pinned = pinned_with_digest(policy, had) if isinstance(had, str) else []
        again = (f"--policy {pinned[0]} to run the stored weights again" if pinned
                 else "a pinned --policy <family>@vN for weights that never change")
        loads = f"weights {now}" if now is not None else "no checkpoint's weights"
        raise StoreError(
            f"{self.out}: the stored episodes ran policy {policy!r} with weights {had}, but "
            f"{policy!r} now loads {loads}; a resume would mix two policies in one table: "
            f"use a new --out (with {again})")

    def _check_profile(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Refuse to add episodes timed by another ``file:`` profile than the stored ones."""
        had, now = old.get(PROFILE_DIGEST_FIELD), new.get(PROFILE_DIGEST_FIELD)
        if had == now:
            return
        profile = str(new["sweep"]["env"].get("profile"))
        raise StoreError(
            f"{self.out}: the stored episodes were timed with cost profile {profile!r} of "
            f"content {had}, but the file now holds {now}; a resume would mix two cost profiles "
            "in one table: use a new --out (or restore the profile file)")

    def _check_recorded(
        self, spec: SweepSpec, jobs: Sequence[EpisodeJob], old: Mapping[str, Any],
        new: Recorded,
    ) -> Recorded:
        """What the store records after this open; refuse a resume that would mix stores.

        A resume runs only the missing episodes, so a flag that records more (an oracle
        tolerance, videos of more seeds) would be silently missing from the stored ones, and
        one that records less would leave the episodes still to run without what the stored
        ones have. Both are refused with what to do instead.
        """
        had = self._stored_recorded(old, spec)
        stored = [job for job in jobs if self.done(job.key())]
        todo = [job for job in jobs if not self.done(job.key())]
        if not stored:
            return new
        fix = ("a resume runs only the missing episodes: use --overwrite to run every episode "
               "again, or another --out")
        added = [t for t in new.oracle if t not in had.oracle]
        if added:
            raise StoreError(
                f"{self.out}: --oracle {','.join(tol_name(t) for t in added)} asks for oracle "
                f"fields that the {len(stored)} stored episodes lack (they record "
                f"{'--oracle ' + had.oracle_flag() if had.oracle else 'no oracle'}); {fix}")
        unfilmed = [j for j in stored if had.videos <= j.seed - spec.seed < new.videos]
        if unfilmed:
            raise StoreError(
                f"{self.out}: --videos {new.videos} asks for videos of {len(unfilmed)} stored "
                f"episodes recorded without them ("
                + (f"the store has videos of the first {had.videos} seeds of each cell"
                   if had.videos else "the store has no videos") + f"); {fix}")
        dropped = [t for t in had.oracle if t not in new.oracle]
        if dropped and todo:
            raise StoreError(
                f"{self.out}: every stored episode records --oracle {had.oracle_flag()}; add "
                f"--oracle {had.oracle_flag()} to resume the {len(todo)} missing episodes the "
                "same way, or use --overwrite or another --out")
        if any(new.videos <= j.seed - spec.seed < had.videos for j in todo):
            raise StoreError(
                f"{self.out}: the store records videos of the first {had.videos} seeds of each "
                f"cell; add --videos {had.videos} to resume the missing episodes the same way, "
                "or use --overwrite or another --out")
        return Recorded(had.oracle, max(had.videos, new.videos))

    def _stored_recorded(self, old: Mapping[str, Any], spec: SweepSpec) -> Recorded:
        """The manifest's ``recorded``, or for an older manifest what its records show."""
        entry = old.get("recorded")
        if isinstance(entry, Mapping):
            return Recorded(tuple(float(t) for t in entry.get("oracle") or ()),
                            int(entry.get("videos") or 0))
        done = [r for r in self.records.values() if "success" in r]
        names = [{k[len(_NONREDUNDANT):] for k in r if k.startswith(_NONREDUNDANT)}
                 for r in done if not str(r.get("fault") or "").startswith("episode_error")]
        common = set.intersection(*names) if names else set()
        filmed = [int(r["seed"]) - spec.seed for r in done if r.get("media")
                  and isinstance(r.get("seed"), int)]
        return Recorded(tuple(sorted(float(n) for n in common)), max(filmed, default=-1) + 1)

    def _read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{self.manifest_path} is unreadable ({exc}); move it away or use "
                             "another --out") from None
        if not isinstance(data, dict) or "sweep" not in data:
            raise StoreError(f"{self.manifest_path} is not a rapid-eval manifest; move it away or "
                             "use another --out")
        return data

    def _refuse_foreign(self) -> None:
        """A new store never writes over files that it did not write (no manifest of ours)."""
        if self.episodes_path.exists() and self.episodes_path.stat().st_size:
            raise StoreError(
                f"{self.episodes_path} holds records but no {MANIFEST}: not a rapid-eval store "
                "(or written by an older version); move it away or use another --out")
        clash = [name for name in OWNED if (self.out / name).exists() and name != EPISODES]
        if clash:
            raise StoreError(
                f"{self.out} holds {', '.join(clash)} but no {MANIFEST}: not a rapid-eval store, "
                "and a sweep would write over them; use another --out")

    def _clear(self, old: Mapping[str, Any] | None) -> None:
        """``overwrite``: delete what a sweep wrote, and only in a store this harness wrote."""
        if old is None:
            others = sorted(p.name for p in self.out.iterdir() if p.name != LOCK)
            if others:
                shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more"
                                                  if len(others) > 3 else "")
                raise StoreError(
                    f"--overwrite refused: {self.out} holds {shown} but no {MANIFEST} of "
                    "rapid-eval, so it is not a results store; nothing was deleted (use another "
                    "--out, or empty the folder yourself)")
            return
        if not str(old.get("format", "")).startswith(FORMAT.split("/")[0] + "/"):
            raise StoreError(f"--overwrite refused: {self.manifest_path} has format "
                             f"{old.get('format')!r}, not a rapid-eval store; nothing was deleted")
        for name in OWNED:
            for path in (self.out / name, *self.out.glob(f".{name}.*.tmp")):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)

    def write_manifest(self) -> None:
        """Write the manifest atomically: a temporary file, fsynced, then renamed over it.

        It changes when the W&B run ids are assigned. On failure the temporary file is removed
        and the old manifest stays whole.

        Raises:
            StoreFull: the disk is full (or over quota).
        """
        tmp = self.manifest_path.with_name(f"{MANIFEST}.tmp")
        data = (json.dumps(self.manifest, indent=2, default=str) + "\n").encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.manifest_path)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise self._os_error(exc, self.manifest_path) from None
            raise

    def _load_records(
        self, jobs: Sequence[EpisodeJob], need_digest: bool
    ) -> dict[str, dict[str, Any]]:
        """The trusted records by key; a torn last line is cut off, every bad line named.

        Which copy of a key counts: a valid one over an invalid one, the first of valid ones,
        the last of invalid ones (:func:`~rapid_env.eval.summary.dedupe`'s rule), so a rerun's
        valid record replaces the invalid try it ran again.
        """
        records: dict[str, dict[str, Any]] = {}
        self.problems = []
        if not self.episodes_path.exists():
            return records
        data = self.episodes_path.read_bytes()
        data = self._mend_tail(data)
        scanned, bad = scan_records(data)
        good, distrusted = check_records(scanned, expected_keys(jobs), need_digest)
        self.problems = [_problem_line(self.episodes_path, n, why)
                         for n, why in sorted([*bad, *distrusted])]
        for _, record in good:
            key = record[KEY_FIELD]
            if key not in records or invalid_reason(records[key]) is not None:
                records[key] = record
        return records

    def _mend_tail(self, data: bytes) -> bytes:
        """Cut a torn last line (a crash mid-write); end a complete one with its newline."""
        good = data.rfind(b"\n") + 1
        if good == len(data):
            return data
        try:
            json.loads(data[good:].decode("utf-8"))
            complete = True
        except (UnicodeDecodeError, json.JSONDecodeError):
            complete = False
        try:
            with self.episodes_path.open("r+b") as fh:
                if complete:
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\n")
                else:
                    fh.truncate(good)
        except OSError as exc:
            raise self._os_error(exc, self.episodes_path) from None
        if complete:
            return data + b"\n"
        self.dropped_torn_line = True
        return data[:good]

    def _os_error(self, exc: OSError, path: Path) -> StoreError:
        """A full disk as :class:`StoreFull` (one line); anything else as :class:`StoreError`."""
        if is_disk_full(exc):
            return StoreFull(full_message(path, len(self.records)))
        return StoreError(f"cannot write {path} ({exc.strerror or exc})")

    # ------------------------------------------------------------------ using
    def pending(self, jobs: Iterable[EpisodeJob]) -> list[EpisodeJob]:
        """The jobs without a valid stored record, in the given order.

        An invalid record (an infrastructure fault: :func:`~rapid_env.record.invalid_reason`)
        is not done: its job runs again, and its new record replaces it (:meth:`append`).
        """
        return [job for job in jobs if not self.done(job.key())]

    def done(self, key: str) -> bool:
        """Whether ``key`` has a valid stored record (an invalid one runs again)."""
        record = self.records.get(key)
        return record is not None and invalid_reason(record) is None

    def invalid(self) -> list[dict[str, Any]]:
        """The stored records that are invalid (their episodes run again on a rerun)."""
        return [r for r in self.records.values() if invalid_reason(r) is not None]

    def append(self, record: dict[str, Any]) -> bool:
        """Store one record, sealed with its digest and fsynced; False for a key already done.

        A key with a valid record writes nothing; a key with an invalid one (a rerun) appends
        the new record, which replaces the old one now and whenever the store is read again.

        Raises:
            StoreFull: the disk is full; the partial line is cut off again, so the store holds
                exactly the records stored before and a rerun resumes.
        """
        key = record[KEY_FIELD]
        if self.done(key):
            return False
        if self._fd is None:
            raise StoreError(f"{self.out}: the store is not open")
        plain = json.loads(json.dumps(record, default=_json_default))
        plain[DIGEST_FIELD] = record_digest(plain)
        line = (json.dumps(plain) + "\n").encode()
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            _write_all(self._fd, line)
            os.fsync(self._fd)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, start)  # no torn line: the store stays as it was
            except OSError:
                pass  # the next open cuts the torn line
            raise self._os_error(exc, self.episodes_path) from None
        self.records[key] = record
        return True

    def ordered(self, jobs: Iterable[EpisodeJob]) -> list[dict[str, Any]]:
        """The stored records of ``jobs`` in the jobs' (serial) order, skipping missing ones."""
        return [self.records[k] for k in (job.key() for job in jobs) if k in self.records]

    def close(self) -> None:
        """Close the records file and release the lock (the lock file stays, empty)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            try:
                self._lock.truncate(0)
            except OSError:
                pass
            self._lock.close()  # closing the last descriptor releases the flock
            self._lock = None


_NONREDUNDANT = "oracle_nonredundant_"


def _holder(text: bytes) -> str:
    """The lock holder as a reader sees it: ``pid N (command)``."""
    try:
        data = json.loads(text.decode("utf-8"))
        return f"pid {int(data['pid'])} ({data.get('command') or 'command unknown'})"
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return "another process (it has not written its pid yet)"


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a short write is not an error)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _not_an_extension(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = [f"{line}" for line in differences(old["env"], new["env"], "env")]
    for name in ("tasks", "agents", "noises", "links"):
        gone = [v for v in old[name] if v not in new[name]]
        if gone:
            problems.append(f"{name} drops {', '.join(gone)}")
    if new["episodes"] < old["episodes"]:
        problems.append(f"episodes: {old['episodes']} -> {new['episodes']}")
    if new["seed"] != old["seed"]:
        problems.append(f"seed: {old['seed']} -> {new['seed']}")
    return problems


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git_commit() -> str | None:
    """The commit of the checkout this package runs from, when it runs from one."""
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
