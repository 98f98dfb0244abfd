"""The weights' digest of a policy name: shipped names, ckpt:/hf: folders, none for the expert."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from rapid_env.agents.policy_digest import pinned_with_digest, policy_digest
from rapid_env.agents.vla.shipped import VERSIONED, shipped_checkpoint
from rapid_env.registry import UnknownNameError


def by_hand(folder: Path) -> str:
    """``cat model.safetensors config.json | sha256sum``, first 16 hex (the documented recipe)."""
    data = (folder / "model.safetensors").read_bytes() + (folder / "config.json").read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


@pytest.mark.parametrize("name", ["chunk-regress", "flow@v1", "ar-token", *VERSIONED])
def test_a_shipped_name_has_the_digest_of_its_folders_bytes(name: str) -> None:
    assert policy_digest(name) == by_hand(shipped_checkpoint(name))


def test_the_expert_has_no_digest() -> None:
    assert policy_digest("expert") is None


def test_a_checkpoint_folder_has_one_and_it_follows_the_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(shipped_checkpoint("chunk-regress@v1"), folder)
    before = policy_digest(f"ckpt:{folder}")
    assert before == policy_digest("chunk-regress@v1") == policy_digest(f"hf:{folder}")
    config = folder / "config.json"
    config.write_bytes(config.read_bytes().replace(b"\n", b"\n ", 1))  # trained again in place
    after = policy_digest(f"ckpt:{folder}")
    assert after is not None and after != before and after == by_hand(folder)
    (folder / "model.safetensors").unlink()
    assert policy_digest(f"ckpt:{folder}") is None  # not a checkpoint: its loader says why
    assert policy_digest(f"ckpt:{tmp_path / 'missing'}") is None


def test_the_pinned_version_with_the_stored_weights_is_found() -> None:
    assert pinned_with_digest("chunk-regress", policy_digest("chunk-regress@v1") or "") == [
        "chunk-regress@v1"]
    assert pinned_with_digest("chunk-regress", "0" * 16) == []
    assert pinned_with_digest("expert", "0" * 16) == []


def test_an_unknown_name_is_refused() -> None:
    with pytest.raises(UnknownNameError, match="chunk-regres"):
        policy_digest("chunk-regres")
