"""The three executable families: shapes, training signal, and split == unsplit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rapid_env.agents.vla.base import ExecutableVLA
from rapid_env.agents.vla.components import llama_layer, random_shift
from rapid_env.agents.vla.families import build_model, default_config
from rapid_env.agents.vla.split import SplitRunner, deserialise, serialise

TINY = {
    "width": 32,
    "vision_layers": 2,
    "trunk_layers": 2,
    "heads": 2,
    "image_size": 32,
    "chunk_size": 3,
    "expert_width": 32,
    "expert_layers": 1,
    "vocab_size": 20,
    "flow_steps": 3,
    "max_text_tokens": 5,
}
CASES = [
    ("ar-token", {}),
    ("ar-token", {"decode": "parallel"}),
    ("flow", {}),
    ("chunk-regress", {}),
]


def tiny(family: str, **extra: object) -> ExecutableVLA:
    torch.manual_seed(0)
    return build_model(default_config(family, **{**TINY, **extra})).eval()


def raw_inputs(
    model: ExecutableVLA, b: int = 2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded (images, proprio, text ids) of the model's sizes."""
    g = torch.Generator().manual_seed(seed)
    s = model.cfg.image_size
    img = torch.randint(0, 256, (b, s, s, 3), generator=g, dtype=torch.uint8)
    prop = torch.rand(b, 4, generator=g)
    ids = torch.randint(0, model.cfg.vocab_size, (b, model.cfg.max_text_tokens), generator=g)
    return img, prop, ids


def inputs(model: ExecutableVLA, b: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    return model.prepare(*raw_inputs(model, b, seed), torch.Generator().manual_seed(seed + 1))


@pytest.mark.parametrize(("family", "extra"), CASES)
def test_forward_shape_and_blocks(family: str, extra: dict[str, object]) -> None:
    m = tiny(family, **extra)
    with torch.no_grad():
        a = m(inputs(m))
    assert a.shape == (2, 3, 4) and torch.isfinite(a).all()
    names = m.block_names()
    assert len(names) == m.n_blocks == len(set(names))


@pytest.mark.parametrize(("family", "extra"), CASES)
def test_split_fp32_is_bit_identical_at_every_k(family: str, extra: dict[str, object]) -> None:
    m = tiny(family, **extra)
    with torch.no_grad():
        ref = m(inputs(m))
    for k in range(m.n_blocks + 1):
        res = SplitRunner(m, k)(inputs(m))
        assert torch.equal(res.actions, ref), f"{family} split at {k} differs"
        assert (res.uplink_bytes == 0) == (k == m.n_blocks)


@pytest.mark.parametrize(("family", "extra"), CASES)
def test_compression_shrinks_boundary_and_stays_close(
    family: str, extra: dict[str, object]
) -> None:
    m = tiny(family, **extra)
    k = 2  # inside the vision encoder: a float activation crosses
    with torch.no_grad():
        ref = m(inputs(m))
    sizes = {}
    for comp in ("none", "fp16", "int8"):
        res = SplitRunner(m, k, comp)(inputs(m))
        sizes[comp] = res.uplink_bytes
        if family != "ar-token" or extra:  # token argmax may flip on a tiny perturbation
            assert torch.allclose(res.actions, ref, atol=0.2), comp
    assert sizes["int8"] < sizes["fp16"] < sizes["none"]


def test_serialise_keeps_integers_and_rejects_unknown_compression() -> None:
    state = {"ids": torch.arange(5), "x": torch.linspace(-1, 1, 7)}
    back = deserialise(serialise(state, "int8"))
    assert torch.equal(back["ids"], state["ids"])
    assert torch.allclose(back["x"], state["x"], atol=1 / 127)
    with pytest.raises(ValueError, match="allowed: none, fp16, int8"):
        serialise(state, "zip")
    with pytest.raises(ValueError, match="allowed: 0..7"):
        SplitRunner(tiny("chunk-regress"), 99)


@pytest.mark.parametrize(("family", "extra"), CASES)
def test_loss_falls_when_fitting_one_batch(family: str, extra: dict[str, object]) -> None:
    m = tiny(family, **extra).train()
    st = inputs(m, b=4)
    target = torch.rand(4, 3, 4, generator=torch.Generator().manual_seed(3)) * 1.6 - 0.8
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):  # the same flow times and noise every step: a fixed objective
        loss = m.loss(st, target, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_flow_noise_comes_from_the_generator() -> None:
    m = tiny("flow")
    with torch.no_grad():
        a = m(inputs(m, seed=1))
        b = m(inputs(m, seed=1))
        c = m(m.prepare(*raw_inputs(m, seed=1), torch.Generator().manual_seed(99)))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_ar_tokens_round_trip_bins() -> None:
    m = tiny("ar-token")
    a = torch.tensor([-1.0, -0.5, 0.0, 0.999, 1.0])
    back = m.centers[m.to_tokens(a)]
    assert (back - a).abs().max() <= 1.0 / (m.cfg.n_bins - 1) + 1e-6


def test_random_shift_copies_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, 16, 16, 3), generator=g, dtype=torch.uint8)
    out = random_shift(img, 2, g)
    assert out.shape == img.shape and out.dtype == torch.uint8
    assert torch.equal(random_shift(img, 0, g), img)
    centre = out[:, 4:12, 4:12]
    assert any(
        torch.equal(centre[i], img[i, 4 + dy : 12 + dy, 4 + dx : 12 + dx])
        for i in range(1)
        for dy in range(-2, 3)
        for dx in range(-2, 3)
    )


def test_ar_cached_greedy_decoding_matches_teacher_forcing() -> None:
    """Each token the KV-cached decoder emits is the argmax of the training-time forward."""
    m = tiny("ar-token")
    st = inputs(m)
    with torch.no_grad():
        actions = m(dict(st))
        tokens = m.to_tokens(actions.reshape(2, -1))
        h = m.run(dict(st), 0, 2 + m.cfg.vision_layers)["h"]
        p = h.shape[1]
        x = torch.cat([h, m.trunk.embed_tokens(tokens[:, :-1])], dim=1)
        for i in range(m.cfg.trunk_layers):
            x = llama_layer(m.trunk, i, x)
        forced = m.bin_head(m.trunk.norm(x[:, p - 1 :])).argmax(-1)
    assert torch.equal(forced, tokens)
