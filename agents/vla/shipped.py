"""The names of the checkpoints that ship with the package, and their pinned versions.

A plain name (``chunk-regress``) is always the newest checkpoint of that family, so it may load
other weights after an upgrade. ``family@vN`` pins version N for good: a record made with it can
be re-run with the same weights whatever the plain name later points to, and a record made with
the plain name before an upgrade is re-run with the version it had then (``docs/vla_families.md``,
"Versions"). Each name is a folder of the package's ``data/checkpoints``.

Torch-free on purpose: the policy registry lists these names at import, long before a model is
loaded.
"""

from __future__ import annotations

from pathlib import Path

import rapid_env

CHECKPOINT_ROOT = Path(rapid_env.__file__).resolve().parent / "data" / "checkpoints"
"""Package data of ``rapid_env`` (next to profiles.json), wherever the package is installed."""

LATEST: tuple[str, ...] = ("ar-token", "flow", "chunk-regress", "chunk-regress-libero")
"""The plain names: each is the newest checkpoint of its family (``-libero``: trained on LIBERO)."""

VERSIONS: dict[str, tuple[str, ...]] = {
    "ar-token": ("v1",),
    "flow": ("v1",),
    "chunk-regress": ("v1", "v2"),
}
"""The pinned versions of each plain name (v1: the 64 px corner4 one-camera Meta-World ones)."""

VERSIONED: tuple[str, ...] = tuple(f"{name}@{v}" for name, vs in VERSIONS.items() for v in vs)
"""``family@vN`` for every pinned version."""

SHIPPED_NAMES: tuple[str, ...] = LATEST + VERSIONED
"""Every name :func:`checkpoint_folder` accepts."""


def checkpoint_folder(name: str) -> str:
    """The folder under ``data/checkpoints`` that holds the shipped checkpoint ``name``.

    Raises:
        ValueError: ``name`` is no shipped checkpoint; a bad version of a known family names
            that family's versions, anything else names every shipped checkpoint.
    """
    if name in SHIPPED_NAMES:
        return name
    base, at, version = name.partition("@")
    if at and base in VERSIONS:
        raise ValueError(
            f"no shipped version {version!r} of {base!r} (in {name!r}); allowed: "
            f"{', '.join(f'{base}@{v}' for v in VERSIONS[base])}, or {base!r} for the newest"
        )
    raise ValueError(f"no shipped checkpoint {name!r}; allowed: {', '.join(SHIPPED_NAMES)}")


def shipped_checkpoint(name: str) -> Path:
    """Where the package ships the trained checkpoint ``name``.

    ``name`` is a plain family name (its newest checkpoint, e.g. ``chunk-regress``) or a pinned
    version (``chunk-regress@v1``). Here, not beside the loader, so that readers of the folder
    that need no model (the weights' digest of a results store) need no torch.

    Raises:
        ValueError: no shipped checkpoint has that name (the message names the allowed ones).
    """
    return CHECKPOINT_ROOT / checkpoint_folder(name)
