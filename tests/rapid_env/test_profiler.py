"""The offline profiler (``rapid_env.profiler``): its builders reproduce the shipped cache."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from rapid_env.cost import PROFILES
from rapid_env.cost.profiles import PROFILES_JSON, WRITE_COMMAND
from rapid_env.profiler.__main__ import main
from rapid_env.profiler.write import build_profiles, load_builders, write_profiles
from rapid_env.registry import UnknownNameError


def test_every_builder_is_cached_and_every_cached_profile_has_a_builder() -> None:
    assert sorted(load_builders()) == sorted(PROFILES)  # plain names, not file:<json>


def test_an_unknown_builder_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="unknown profile 'gpt-17'; allowed: openvla-7b"):
        build_profiles(["gpt-17"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["openvla-7b", "openvla-oft-7b", "pi0", "smolvla"])
def test_profile_regenerates_to_cached_json(name: str) -> None:
    cached = json.loads(PROFILES_JSON.read_text())["profiles"]
    rebuilt = build_profiles([name])[name].to_dict()
    _assert_close(rebuilt, cached[name])


def test_small_profile_regenerates_to_cached_json() -> None:
    # The fastest builder (~1 s after the torch import): always run, so the cache cannot drift.
    cached = json.loads(PROFILES_JSON.read_text())["profiles"]
    rebuilt = build_profiles(["octo-base"])["octo-base"].to_dict()
    _assert_close(rebuilt, cached["octo-base"])


def _assert_close(a: object, b: object, path: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for key in a:
            _assert_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert isinstance(b, (int, float)), path
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0), (path, a, b)
    else:
        assert a == b, (path, a, b)




def test_expert_flops_scale_with_step_count() -> None:
    # The counting itself: a tiny Gemma expert over a cached prefix, for 1 and 3 flow steps.
    torch = pytest.importorskip("torch")
    from transformers import GemmaConfig, GemmaModel

    from rapid_env.profiler.counting import count_expert_loop, decoder_prefill, layer_kv

    cfg = GemmaConfig(
        vocab_size=32,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
    )
    with torch.device("meta"):
        vlm, expert = GemmaModel(cfg).eval(), GemmaModel(cfg).eval()
        _, _, cache = decoder_prefill(vlm, torch.empty(1, 12, 64))
        kv = [layer_kv(cache, i) for i in range(2)]
        suffix = torch.empty(1, 5, 64)
        once, _ = count_expert_loop(expert.layers, suffix, kv, 1)
        thrice, out = count_expert_loop(expert.layers, suffix, kv, 3)
        # SmolVLA-style cross-attention layer: its k/v projections read the prefix KV (16-d).
        attn = expert.layers[1].self_attn
        attn.k_proj = torch.nn.Linear(16, 16, bias=False)
        attn.v_proj = torch.nn.Linear(16, 16, bias=False)
        cross, _ = count_expert_loop(expert.layers, suffix, kv, 1, [False, True])
    assert tuple(out.shape) == (1, 5, 64)
    assert all(t == pytest.approx(3 * o) for t, o in zip(thrice, once, strict=True))
    # Self-attention over prefix (12) + suffix (5) keys: per layer, 2*5*64 * (4*16 + 2*16) for
    # q/k/v, 2*5*64*64 for o, 3*2*5*64*128 for the MLP, 2 * 2*4*5*17*16 for QK^T and AV.
    mlp_o_q = 2 * 5 * 64 * 64 + 3 * 2 * 5 * 64 * 128 + 2 * 5 * 64 * 64
    assert once[0] == pytest.approx(mlp_o_q + 2 * 5 * 64 * 32 + 2 * 2 * 4 * 5 * 17 * 16)
    # Cross-attention: k/v re-projected over the 12 prefix tokens, 12 keys instead of 17.
    assert cross[1] == pytest.approx(mlp_o_q + 2 * 2 * 12 * 16 * 16 + 2 * 2 * 4 * 5 * 12 * 16)




def test_write_rebuilds_the_named_profile_and_keeps_the_others(tmp_path: Path) -> None:
    target = tmp_path / "profiles.json"
    shutil.copy(PROFILES_JSON, target)
    shipped = json.loads(PROFILES_JSON.read_text())
    data = json.loads(target.read_text())
    data["profiles"]["octo-base"]["source"] = "stale"
    target.write_text(json.dumps(data))
    write_profiles(target, ["octo-base"])
    written = json.loads(target.read_text())
    assert written["generated_by"] == WRITE_COMMAND
    assert list(written["profiles"]) == sorted(shipped["profiles"])
    for name, entry in shipped["profiles"].items():
        if name != "octo-base":
            assert written["profiles"][name] == entry  # untouched, bit for bit
    _assert_close(written["profiles"]["octo-base"], shipped["profiles"]["octo-base"])


def test_the_command_prints_the_cache_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smolvla"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("smolvla: ") and "flow loop x" in out
    with pytest.raises(SystemExit, match="'gpt-17' is not in the cache"):
        main(["gpt-17"])
