"""The results store: a sweep's folder, which a rerun resumes and never counts twice.

``OUT/`` holds:

* ``manifest.json`` -- the resolved sweep (its lists, the base environment, every cell's full
  configuration), the package versions, the git commit, the W&B run ids (``wandb_run_id``: the
  sweep-level run; ``wandb_runs``: one per cell, by ``agent|task|noise|link``), and when it was
  started;
* ``episodes.jsonl`` -- one JSON record per finished episode, keyed by ``episode_key`` (the
  digest of the cell's full configuration and the seed, :mod:`rapid_env.eval.jobs`), appended,
  flushed and fsynced before the next episode is handed out.

Opening a store that already holds a sweep compares manifests: the same sweep **resumes** (only
the missing keys run), a different one is refused with the fields that differ, unless the user
asks to ``overwrite`` (start afresh) or to ``extend`` (more cells or seeds over the same base
environment). A crash can leave half a line at the end of ``episodes.jsonl``; it is detected and
cut off on open, and a duplicated key is never loaded twice.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rapid_env.eval.jobs import KEY_FIELD, EpisodeJob, SweepSpec, plan

FORMAT = "rapid-env-sweep/1"
MANIFEST = "manifest.json"
EPISODES = "episodes.jsonl"
OpenMode = Literal["resume", "overwrite", "extend"]
WANDB_KEYS: tuple[str, ...] = ("wandb_run_id", "wandb_runs")
"""Manifest keys kept across reopening: the sweep run's id and the cells' run ids."""
_PACKAGES = ("rapid-env", "torch", "transformers", "mujoco", "metaworld", "gymnasium", "numpy")


class StoreError(ValueError):
    """The folder holds another sweep (or a broken store): the message says what differs."""


def sweep_identity(spec: SweepSpec) -> dict[str, Any]:
    """What makes two sweeps the same sweep (compared field by field on reopen)."""
    return {
        "tasks": list(spec.tasks), "agents": list(spec.agents), "noises": list(spec.noises),
        "links": list(spec.links), "episodes": spec.episodes, "seed": spec.seed,
        "env": spec.base.to_dict(),
    }


def make_manifest(spec: SweepSpec, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of a new sweep: identity, every cell's config, versions, commit, time."""
    cells: dict[str, dict[str, Any]] = {}
    for job in plan(spec):
        cells.setdefault("/".join(job.cell), {"cell": list(job.cell), "env": job.config.to_dict()})
    return {
        "format": FORMAT,
        "sweep": sweep_identity(spec),
        "cells": list(cells.values()),
        "n_episodes": spec.n_episodes(),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(dict(extra) if extra else {}),
    }


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable field differences between two plain-data trees (``a.b: x -> y``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(differences(old.get(key), new.get(key), path))
        return out
    return [] if old == new else [f"{prefix}: {_short(old)} -> {_short(new)}"]


class ResultsStore:
    """One sweep's folder: the manifest and the keyed, append-only episode records."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.manifest_path = self.out / MANIFEST
        self.episodes_path = self.out / EPISODES
        self.manifest: dict[str, Any] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.dropped_torn_line = False
        self._fh: Any = None

    # ------------------------------------------------------------------ opening
    def open(
        self, spec: SweepSpec, mode: OpenMode = "resume", extra: Mapping[str, Any] | None = None
    ) -> None:
        """Open for ``spec``: start, resume, extend or overwrite (see the module docstring).

        ``extra`` goes into the manifest as it is (e.g. the command line of this invocation).

        Raises:
            StoreError: the folder holds another sweep and ``mode`` does not allow it, or it
                holds records without a manifest (not a store this harness wrote).
        """
        self.out.mkdir(parents=True, exist_ok=True)
        new = make_manifest(spec, extra)
        if mode == "overwrite":
            self._clear()
        old = self._read_manifest()
        if old is None and self.episodes_path.exists() and self.episodes_path.stat().st_size:
            raise StoreError(
                f"{self.episodes_path} holds records but no {MANIFEST}: not a rapid-eval store "
                "(or written by an older version); use --overwrite to start afresh, or another "
                "--out"
            )
        if old is not None:
            self._check_compatible(old, new, mode)
            new["created"] = old.get("created", new["created"])
            for key in WANDB_KEYS:  # a resumed or extended sweep logs into the same runs
                if key in old:
                    new[key] = old[key]
        self.manifest = new
        self.write_manifest()
        self.records = self._load_records()
        self._fh = self.episodes_path.open("a", encoding="utf-8")

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

    def _read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{self.manifest_path} is unreadable ({exc}); use --overwrite or "
                             "another --out") from None
        if not isinstance(data, dict) or "sweep" not in data:
            raise StoreError(f"{self.manifest_path} is not a rapid-eval manifest")
        return data

    def _clear(self) -> None:
        for path in (self.manifest_path, self.episodes_path,
                     self.out / "summary.json", self.out / "summary.csv"):
            path.unlink(missing_ok=True)

    def write_manifest(self) -> None:
        """Write the manifest atomically (it changes when the W&B run ids are assigned)."""
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, self.manifest_path)

    def _load_records(self) -> dict[str, dict[str, Any]]:
        """Read the records, cutting off a torn last line; later duplicates of a key are ignored."""
        records: dict[str, dict[str, Any]] = {}
        if not self.episodes_path.exists():
            return records
        data = self.episodes_path.read_bytes()
        good = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
        if good < len(data):
            self.dropped_torn_line = True
            with self.episodes_path.open("r+b") as fh:
                fh.truncate(good)
        for number, line in enumerate(data[:good].decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise StoreError(f"{self.episodes_path}:{number}: not a JSON record ({exc.msg}); "
                                 "the store is damaged, use --overwrite or another --out") from None
            key = record.get(KEY_FIELD)
            if not isinstance(key, str):
                raise StoreError(f"{self.episodes_path}:{number}: record without {KEY_FIELD}")
            records.setdefault(key, record)
        return records

    # ------------------------------------------------------------------ using
    def pending(self, jobs: Iterable[EpisodeJob]) -> list[EpisodeJob]:
        """The jobs whose record is not stored yet, in the given order."""
        return [job for job in jobs if job.key() not in self.records]

    def append(self, record: dict[str, Any]) -> bool:
        """Store one record (flushed and fsynced); False, and nothing written, for a known key."""
        key = record[KEY_FIELD]
        if key in self.records:
            return False
        line = json.dumps(record, default=_json_default) + "\n"
        self._fh.write(line)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records[key] = record
        return True

    def ordered(self, jobs: Iterable[EpisodeJob]) -> list[dict[str, Any]]:
        """The stored records of ``jobs`` in the jobs' (serial) order, skipping missing ones."""
        return [self.records[k] for k in (job.key() for job in jobs) if k in self.records]

    def close(self) -> None:
        """Close the records file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


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
