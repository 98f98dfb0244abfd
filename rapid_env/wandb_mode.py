"""Which W&B mode a command logs in: 'offline', 'online' or 'disabled', decided once, the same way.

``rapid-eval``, ``rapid-train`` and ``rapid-train-decider`` all take ``--wandb
{offline,online,disabled}``; without the flag they log offline unless an API key is configured,
so a run on a laptop, a CI runner or an air-gapped cluster never blocks on a login prompt or a
network timeout (the run folder is uploaded later with ``wandb sync``).

A utility module (the bottom layer of docs/architecture.md): it imports the standard library
only, and ``wandb`` only inside :func:`start_run` / :func:`finish_run` when a run is really made,
so the agents' trainers and the evaluation layer can both use it and nothing pays for importing
wandb just to decide not to use it.
"""

from __future__ import annotations

import netrc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "MODES", "PROJECT", "Mode", "api_key_configured", "finish_run", "resolve_entity",
    "resolve_mode", "resolve_project", "start_run", "sync_hint",
]

PROJECT = "rapid-env"
"""The W&B project a run goes to when neither a flag nor ``$WANDB_PROJECT`` names one."""

_BAD_NAME_CHARS = frozenset('/\\#?%:')
"""Characters W&B refuses in a project or entity name (it would fail at upload, hours later)."""

Mode = Literal["offline", "online", "disabled"]
MODES: tuple[str, ...] = ("offline", "online", "disabled")
"""The W&B modes this harness accepts (wandb's own 'shared' mode is not supported)."""

_DEFAULT_HOST = "api.wandb.ai"


def _wandb_host() -> str:
    """Host whose credentials count: WANDB_BASE_URL's host for a private server, else W&B cloud."""
    base = os.environ.get("WANDB_BASE_URL", "").strip()
    if not base:
        return _DEFAULT_HOST
    host = base.split("://", 1)[-1].split("/", 1)[0]
    return host.split(":", 1)[0] or _DEFAULT_HOST


def api_key_configured() -> bool:
    """Return True if W&B could authenticate: WANDB_API_KEY set, or a netrc entry for the host.

    The netrc file is ``$NETRC`` if set, else ``~/.netrc``; a missing or malformed file counts as
    no key (a broken netrc must not crash an evaluation; it just means offline).
    """
    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        auth = netrc.netrc(str(path)).authenticators(_wandb_host())
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


def resolve_mode(requested: str | None) -> str:
    """Decide the W&B mode actually used: 'offline', 'online' or 'disabled'.

    - ``None``: ``$WANDB_MODE`` if it names one of :data:`MODES`, else 'online' when an API key
      is configured and 'offline' when not.
    - 'online' without an API key: falls back to 'offline' with a warning on stderr, because a
      sweep that has already spent hours must not die at the end on a login prompt.
    - 'offline' / 'disabled': as asked.

    Raises ``ValueError`` naming the bad value and the allowed ones for anything else.
    """
    if requested is None:
        env_mode = os.environ.get("WANDB_MODE", "").strip().lower()
        if env_mode in MODES:
            requested = env_mode
        else:
            return "online" if api_key_configured() else "offline"
    mode = requested.strip().lower()
    if mode not in MODES:
        raise ValueError(f"unknown W&B mode {requested!r}; allowed: {', '.join(MODES)}")
    if mode == "online" and not api_key_configured():
        print(
            "rapid-env: W&B mode 'online' requested but no API key is configured "
            "(WANDB_API_KEY unset, no netrc entry for "
            f"{_wandb_host()}); logging offline instead. Upload later with `wandb sync`.",
            file=sys.stderr,
        )
        return "offline"
    return mode


def _checked_name(value: str, what: str, source: str) -> str:
    """``value`` stripped, or ValueError naming it when W&B would refuse it as a ``what``."""
    name = value.strip()
    bad = sorted(_BAD_NAME_CHARS.intersection(name))
    if not name or bad or len(name) > 128:
        raise ValueError(
            f"{source} {value!r} is not a W&B {what} name; allowed: 1-128 characters, none of "
            + " ".join(sorted(_BAD_NAME_CHARS))
        )
    return name


def resolve_project(flag: str | None = None) -> str:
    """The W&B project: ``flag`` (``--project``), else ``$WANDB_PROJECT``, else :data:`PROJECT`.

    wandb reads ``$WANDB_PROJECT`` itself only when no project is passed; deciding it here means
    every command (sweeps, trainers, rapid-paper) honours it the same way and a bad name fails at
    once, not at upload. Raises ``ValueError`` naming a name W&B would refuse.
    """
    if flag is not None:
        return _checked_name(flag, "project", "--project")
    env = os.environ.get("WANDB_PROJECT", "")
    return _checked_name(env, "project", "WANDB_PROJECT") if env.strip() else PROJECT


def resolve_entity(flag: str | None = None) -> str | None:
    """The W&B entity (user or team): ``flag`` (``--entity``), else ``$WANDB_ENTITY``, else None.

    None lets W&B use the account's default entity. Raises ``ValueError`` naming a bad name.
    """
    if flag is not None:
        return _checked_name(flag, "entity", "--entity")
    env = os.environ.get("WANDB_ENTITY", "")
    return _checked_name(env, "entity", "WANDB_ENTITY") if env.strip() else None


def sync_hint(mode: str, run_dir: Path | str | None, url: str | None) -> str | None:
    """The line to print when a run closes: where to see it online, or how to upload it.

    ``online`` with a URL: ``W&B run: <url>``; ``offline``: the ``wandb sync <run folder>``
    command; ``disabled`` (or no run folder): None.
    """
    if mode == "online" and url:
        return f"W&B run: {url}"
    if mode == "offline" and run_dir is not None:
        return f"W&B run saved offline; upload it with: wandb sync {run_dir}"
    return None


def start_run(
    mode: str,
    out: Path,
    *,
    job_type: str | None,
    config: dict[str, Any],
    name: str | None,
    group: str | None = None,
    tags: Sequence[str] = (),
    run_id: str | None = None,
    project: str | None = None,
    entity: str | None = None,
) -> Any:
    """A W&B run in ``out/wandb/``; None when ``mode`` is disabled.

    ``mode`` is already resolved (:func:`resolve_mode`); wandb is imported only here. ``project``
    and ``entity`` go through :func:`resolve_project` / :func:`resolve_entity` (so
    ``$WANDB_PROJECT`` / ``$WANDB_ENTITY`` count when no flag names them). A ``run_id`` resumes
    that run, or starts a run with that id (``resume="allow"``), so a resumed sweep logs into the
    runs it started. Every command's run is made here, so they share the quiet console, the
    several-runs-per-process rule (``reinit="create_new"``: a sweep holds one run per cell open
    beside its sweep run) and the folder.
    """
    if mode == "disabled":
        return None
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb  # slow import: only when a run is really made

    out.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        mode=mode,  # type: ignore[arg-type]
        project=resolve_project(project),
        entity=resolve_entity(entity),
        job_type=job_type or None,
        name=name,
        config=config,
        dir=str(out),
        id=run_id,
        resume="allow" if run_id else None,
        group=group or None,
        tags=list(tags) or None,
        reinit="create_new",
        settings=wandb.Settings(silent=True, console="off"),
    )


def finish_run(run: Any, mode: str, prog: str, exit_code: int = 0) -> str | None:
    """Finish a W&B run, flush it to disk, print its URL or ``wandb sync`` command and return it.

    ``wandb`` is imported only here, when a run exists; ``prog`` names the command in the line.
    """
    if run is None:
        return None
    import wandb

    run_dir, url = Path(run.dir).parent, (run.url if mode == "online" else None)
    run.finish(exit_code=exit_code)
    wandb.teardown()  # the offline log is complete only once wandb's service has shut down
    hint = sync_hint(mode, run_dir, url)
    if hint:
        print(f"{prog}: {hint}", file=sys.stderr)
    return hint
