"""What identifies a checkpoint's weights: the digest of its weight and config files' bytes.

A policy name is no identity: ``chunk-regress`` always means the newest shipped checkpoint, so
the same name loads other weights after an upgrade, and a ``ckpt:<dir>`` folder can be trained
again in place. The results store records this digest when a sweep starts and refuses to resume
with other weights (:mod:`rapid_env.eval.store`), so one table never mixes two policies.

Torch-free on purpose: hashing files needs no model, and the store computes it before any
episode (and any import of torch) runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

WEIGHTS, CONFIG = "model.safetensors", "config.json"
"""A checkpoint's weights and its model config: together, everything the model computes."""

DIGEST_CHARS = 16
"""Hex characters kept of the SHA-256 (64 bits: no two checkpoints a user has will collide)."""

_BLOCK = 1 << 20


def checkpoint_digest(folder: str | Path) -> str | None:
    """The first :data:`DIGEST_CHARS` hex of SHA-256 over the checkpoint's weights, then config.

    The weights are every ``*.safetensors`` file of the folder in name order (one
    ``model.safetensors`` in a checkpoint of this package, shards in a transformers one), then
    ``config.json``: the same bytes as ``cat model.safetensors config.json | sha256sum``, so a
    user can check a stored digest by hand. Tokenizer files and the model card are left out:
    they do not change what the model computes from the same tokens.

    Returns:
        None when the folder has no weights or no config (not a checkpoint): loading it would
        fail with its own message, which this must not pre-empt.
    """
    src = Path(folder)
    if not src.is_dir():
        return None
    weights = sorted(p for p in src.glob("*.safetensors") if p.is_file())
    config = src / CONFIG
    if not weights or not config.is_file():
        return None
    sha = hashlib.sha256()
    for path in (*weights, config):
        with path.open("rb") as fh:
            while block := fh.read(_BLOCK):
                sha.update(block)
    return sha.hexdigest()[:DIGEST_CHARS]
