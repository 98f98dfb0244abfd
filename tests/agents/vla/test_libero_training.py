"""LIBERO demos (two cameras, 8-D proprio, 7-D chunks) and a model trained on them, tiny sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rapid_env.agents.vla.demos import DemoSet
from rapid_env.agents.vla.libero_demos import collect_libero_task
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.train import evaluate, parse_tasks, train
from tests.agents.vla.test_models import TINY

# the tiny model's sizes; what the demos decide (image, chunk, vocabulary) comes from them
SIZES = {k: v for k, v in TINY.items() if k not in ("image_size", "chunk_size", "vocab_size",
                                                       "max_text_tokens")}


@pytest.fixture(scope="module")
def demos() -> DemoSet:
    return collect_libero_task("libero_object/0", 1, chunk_size=3, image_size=32, record_every=2)


def test_libero_demos_hold_both_cameras_and_libero_shapes(demos: DemoSet, tmp_path: Path) -> None:
    n = len(demos)
    assert demos.images.shape == (n, 2, 32, 32, 3) and demos.images.dtype == np.uint8
    assert demos.proprio.shape == (n, 8) and demos.chunks.shape == (n, 3, 7)
    assert demos.cameras == ["agentview", "eye_in_hand"]
    assert demos.instructions == ["pick up the alphabet soup and place it in the basket"]
    assert np.all(np.abs(demos.chunks) <= 1.0)
    # every second tick is recorded: step t's third action is step t+1's first
    assert np.array_equal(demos.chunks[:-1, 2], demos.chunks[1:, 0])
    # the two cameras see different things
    assert not np.array_equal(demos.images[:, 0], demos.images[:, 1])
    demos.save(tmp_path / "d.npz")
    back = DemoSet.load(tmp_path / "d.npz")
    assert back.cameras == demos.cameras and back.instructions == demos.instructions


def test_libero_demo_seeds_are_kept_apart_from_evaluation_seeds() -> None:
    with pytest.raises(ValueError, match="allowed: >= 100000"):
        collect_libero_task("libero_object/0", 1, first_seed=3)


def test_parse_tasks_knows_libero_suites() -> None:
    assert parse_tasks("libero_object")[:2] == ["libero_object/0", "libero_object/1"]
    assert parse_tasks("reach,libero_spatial/3") == ["reach", "libero_spatial/3"]
    with pytest.raises(ValueError, match="libero_object/9"):
        parse_tasks("libero_object/12")


def test_a_model_trained_on_libero_demos_reads_the_suite_shapes(demos: DemoSet) -> None:
    model, tok, card = train("chunk-regress", demos, 100.0, max_steps=3, batch=4, quiet=True,
                             **SIZES)
    cfg = model.cfg
    assert cfg.cameras == ("agentview", "eye_in_hand") and cfg.proprio_dim == 8
    assert cfg.action_dim == 7 and cfg.image_size == 32
    assert "alphabet" in tok.get_vocab()  # the instruction's words are in the vocabulary
    assert "agentview + eye_in_hand" in card["data"]
    pol = VLAPolicy(model, tok, "tiny-libero")
    assert pol.cameras == ("eye_in_hand",)


@pytest.mark.slow
def test_evaluate_runs_a_libero_checkpoint_in_the_controller(demos: DemoSet) -> None:
    model, tok, _ = train("chunk-regress", demos, 100.0, max_steps=2, batch=4, quiet=True,
                          **SIZES)
    result = evaluate(VLAPolicy(model, tok), ["libero_object/0"], seeds=1, verbose=False)
    assert result["seeds"] == "1000-1000" and 0.0 <= result["mean"] <= 1.0


def test_shipped_libero_checkpoint_loads_by_name_and_is_documented() -> None:
    from rapid_env.agents.registry import POLICIES
    from rapid_env.agents.vla.checkpoint import shipped_checkpoint

    path = shipped_checkpoint("chunk-regress-libero")
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size <= 10e6, f"the LIBERO checkpoint is {size / 1e6:.1f} MB"
    pol = POLICIES.create("chunk-regress-libero", task="libero_object/0", chunk_size=8)
    assert isinstance(pol, VLAPolicy) and pol.cameras == ("eye_in_hand",)
    cfg = pol.model.cfg
    assert (cfg.proprio_dim, cfg.action_dim, cfg.family) == (8, 7, "chunk-regress")
    card = (path / "card.json").read_text()
    assert '"evaluation"' in card and "libero_object/9" in card
