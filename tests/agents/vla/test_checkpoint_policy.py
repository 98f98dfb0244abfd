"""Tokenizer, checkpoints, the Policy wrapper, demos and the training loop, on tiny sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rapid_env.agents.vla.checkpoint import load_checkpoint, save_checkpoint
from rapid_env.agents.vla.demos import DemoSet, collect_task
from rapid_env.agents.vla.families import build_model, default_config
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.tokenizer import build_tokenizer, load_tokenizer
from rapid_env.agents.vla.train import train
from rapid_env.policy import Policy, PolicyInput
from tests.agents.vla.test_models import TINY


def tiny_policy(family: str = "chunk-regress", **kw: object) -> VLAPolicy:
    tok = build_tokenizer()
    torch.manual_seed(0)
    cfg = default_config(family, **{**TINY, "vocab_size": len(tok)})
    return VLAPolicy(build_model(cfg), tok, **kw)  # type: ignore[arg-type]


def obs(size: int = 32, seed: int = 0) -> PolicyInput:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return PolicyInput(img, np.array([0.0, 0.6, 0.2, 1.0], np.float32), "open the drawer")


def test_tokenizer_round_trip(tmp_path: Path) -> None:
    tok = build_tokenizer()
    ids = tok("Open the drawer")["input_ids"]
    assert tok.unk_token_id not in ids
    tok.save_pretrained(str(tmp_path))
    assert load_tokenizer(tmp_path)("Open the drawer")["input_ids"] == ids
    assert tok.unk_token_id in tok("open the wardrobe")["input_ids"]


@pytest.mark.parametrize("family", ["ar-token", "flow", "chunk-regress"])
def test_checkpoint_round_trip_gives_identical_chunks(family: str, tmp_path: Path) -> None:
    pol = tiny_policy(family)
    pol.reset(np.random.default_rng(5))
    before = pol.act(obs())
    save_checkpoint(tmp_path, pol.model, pol.tokenizer, {"parameters": pol.model.param_count()})
    model, tok, card = load_checkpoint(tmp_path)
    again = VLAPolicy(model, tok)
    again.reset(np.random.default_rng(5))
    assert np.array_equal(again.act(obs()), before)
    assert card["parameters"] == model.param_count()
    assert (tmp_path / "README.md").read_text().startswith(f"# {family}")
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))


def test_load_names_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_checkpoint(tmp_path)


def test_policy_protocol_shape_and_split_equivalence() -> None:
    pol = tiny_policy("flow")
    assert isinstance(pol, Policy)
    pol.reset(np.random.default_rng(1))
    chunk = pol.act(obs())
    assert chunk.shape == (3, 4) and chunk.dtype == np.float32
    assert np.all(np.abs(chunk) <= 1.0)
    pol.reset(np.random.default_rng(1))
    split_chunk, nbytes = pol.act_split(obs(), 0.5)
    assert np.array_equal(split_chunk, chunk) and nbytes > 0


def test_policy_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="allowed: 1..3"):
        tiny_policy(chunk_size=5)
    pol = tiny_policy(chunk_size=2)
    assert pol.act(obs()).shape == (2, 4)
    assert pol.act(obs(size=16)).shape == (2, 4)  # other render sizes are resized
    assert pol.act(obs(size=64)).shape == (2, 4)
    with pytest.raises(ValueError, match="needs the camera image"):
        pol.act(PolicyInput(None, np.zeros(4, np.float32), "open the drawer"))


def test_demos_label_chunks_with_future_expert_actions(tmp_path: Path) -> None:
    ds = collect_task("drawer-close", 1, chunk_size=3, image_size=16)
    n = len(ds)
    assert ds.images.shape == (n, 16, 16, 3) and ds.chunks.shape == (n, 3, 4)
    # chunk t's second action is chunk t+1's first: labels are the trajectory's own actions
    assert np.array_equal(ds.chunks[:-1, 1], ds.chunks[1:, 0])
    ds.save(tmp_path / "d.npz")
    back = DemoSet.load(tmp_path / "d.npz")
    assert np.array_equal(back.images, ds.images) and back.tasks == ["drawer-close"]
    both = DemoSet.concat([ds, back])
    assert len(both) == 2 * n and both.episode.max() == 1


def test_training_lowers_the_loss_on_real_demos() -> None:
    ds = collect_task("drawer-close", 2, chunk_size=3, image_size=32)
    _, _, card_short = train("chunk-regress", ds, minutes=5, max_steps=1, batch=8, log_every=10**6,
                             **_sizes())
    _, _, card = train("chunk-regress", ds, minutes=5, max_steps=60, batch=8, log_every=10**6,
                       lr=2e-3, **_sizes())
    assert card["train_steps"] == 60
    assert card["final_loss"] < 0.8 * card_short["final_loss"]


def _sizes() -> dict[str, int]:
    return {k: v for k, v in TINY.items() if k not in ("image_size", "chunk_size", "vocab_size")}


def test_registry_loads_a_rapid_train_checkpoint_by_path(tmp_path: Path) -> None:
    from rapid_env.agents.registry import POLICIES

    pol = tiny_policy("ar-token")
    save_checkpoint(tmp_path, pol.model, pol.tokenizer, {})
    loaded = POLICIES.create(f"ckpt:{tmp_path}", "reach", chunk_size=2)
    assert loaded.chunk_size == 2 and np.array_equal(loaded.act(obs()), pol.act(obs())[:2])
