"""``rapid-profile``: counts the built-in profiles again from their config folders, and reports.

Everything runs on the meta device (no weights, nothing downloaded): the two shipped config
folders must give back the shipped profiles, block by block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rapid_env.cli.profile import EXIT_UNCOUNTED, main
from rapid_env.cost.profiles import load_profile_file, read_cache

pytest.importorskip("transformers")

CONFIGS = Path(__file__).resolve().parents[2] / "rapid_env" / "data" / "model_configs"
NUMBERS = ("flops", "weight_bytes", "activation_bytes", "decode_flops",
           "decode_activation_bytes", "kv_cache_bytes")


ACT_BAD = ('{"type": "act", "output_features": {"action": {"type": "ACTION", "shape": [7]}}, '
           '"input_features": {"observation.images.top": {"type": "VISUAL", "shape": [3, 64, 64]}}'
           ', %s}')
"""A minimal LeRobot ACT config with one field (the ``%s``) set to a value it refuses."""


def run(tmp_path: Path, config: Path, *flags: str) -> tuple[int, dict[str, Any] | None]:
    out = tmp_path / "out.json"
    code = main([str(config), "-o", str(out), *flags])
    return code, (json.loads(out.read_text()) if out.exists() else None)


def write_config(tmp_path: Path, name: str, config: dict[str, Any]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def shipped_config(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONFIGS / name / "config.json").read_text())
    return data


def within_one_percent(a: float, b: float) -> bool:
    return abs(a - b) <= 0.01 * max(abs(a), abs(b))


@pytest.mark.parametrize("name", ["openvla-7b", "smolvla", "pi0"])
def test_the_shipped_configs_give_back_the_shipped_profiles(tmp_path: Path, name: str) -> None:
    # pi0's is a LeRobot pi0 config.json as LeRobot writes it (two cameras + one empty slot).
    code, written = run(tmp_path, CONFIGS / name)
    assert code == 0 and written is not None
    assert written["uncounted"] == [] and written["family"] in ("openvla", "smolvla", "pi0")
    got, shipped = written["profile"], read_cache()[name]
    assert [b["name"] for b in got["blocks"]] == [b["name"] for b in shipped["blocks"]]
    for mine, theirs in zip(got["blocks"], shipped["blocks"], strict=True):
        for key in NUMBERS:
            assert within_one_percent(mine[key], theirs[key]), (mine["name"], key)
        assert mine["per_token"] == theirs["per_token"]
    for key in ("input_bytes", "output_bytes", "decode_steps", "token_bytes", "loop"):
        assert got[key] == shipped[key], key
    assert load_profile_file(tmp_path / "out.json").n_blocks == len(shipped["blocks"])


def test_fewer_llm_layers_give_proportionally_fewer_blocks_and_flops(tmp_path: Path) -> None:
    config = shipped_config("openvla-7b")
    config["text_config"]["num_hidden_layers"] = 8
    config["rapid_profile"]["name"] = "openvla-8-layers"
    code, written = run(tmp_path, write_config(tmp_path, "small", config))
    assert code == 0 and written is not None
    shipped = read_cache()["openvla-7b"]
    assert written["profile"]["name"] == "openvla-8-layers"
    blocks = {b["name"]: b for b in written["profile"]["blocks"]}
    assert len(blocks) == len(shipped["blocks"]) - 24
    layers = [b for name, b in blocks.items() if name.startswith("llm.layer.")]
    full = [b for b in shipped["blocks"] if b["name"].startswith("llm.layer.")]
    assert len(layers) == 8 and len(full) == 32
    assert within_one_percent(4 * sum(b["flops"] for b in layers), sum(b["flops"] for b in full))
    assert within_one_percent(4 * sum(b["weight_bytes"] for b in layers),
                              sum(b["weight_bytes"] for b in full))
    for name in ("vision.dinov2", "vision.siglip", "projector"):  # the rest is unchanged
        assert within_one_percent(blocks[name]["flops"],
                                  next(b for b in shipped["blocks"] if b["name"] == name)["flops"])


def test_a_smolvla_with_half_the_vlm_layers_halves_both_stacks(tmp_path: Path) -> None:
    config = shipped_config("smolvla")
    config["num_vlm_layers"] = 8
    code, written = run(tmp_path, write_config(tmp_path, "half", config))
    assert code == 0 and written is not None
    shipped = read_cache()["smolvla"]
    got = written["profile"]["blocks"]
    assert len(got) == len(shipped["blocks"]) - 16  # 8 VLM layers + 8 expert layers fewer
    for prefix in ("llm.layer.", "expert.layer."):
        mine = sum(b["flops"] for b in got if b["name"].startswith(prefix))
        theirs = sum(b["flops"] for b in shipped["blocks"] if b["name"].startswith(prefix))
        assert within_one_percent(2 * mine, theirs), prefix


def test_a_longer_chunk_and_more_steps_cost_more_in_the_loop(tmp_path: Path) -> None:
    config = shipped_config("smolvla")
    config.update(chunk_size=100, num_steps=20)
    code, written = run(tmp_path, write_config(tmp_path, "long", config))
    assert code == 0 and written is not None
    prof = written["profile"]
    assert prof["decode_steps"] == 19 and prof["output_bytes"] == 100 * 7 * 4
    shipped = read_cache()["smolvla"]
    out = next(b for b in prof["blocks"] if b["name"] == "expert.out")
    ref = next(b for b in shipped["blocks"] if b["name"] == "expert.out")
    assert within_one_percent(out["flops"], 4 * ref["flops"])  # 2x steps x 2x chunk


def test_a_module_without_counted_flops_is_named_and_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # SmolVLA's LM head is loaded but never run; without its declaration it is uncounted.
    import rapid_env.profiler.arch_smolvla as arch

    monkeypatch.setattr(arch, "resident_only", lambda module, why: None)
    code, written = run(tmp_path, CONFIGS / "smolvla")
    err = capsys.readouterr().err
    assert code == EXIT_UNCOUNTED and written is None
    assert "not counted: Linear(in_features=960, out_features=49280, bias=False): never run" in err
    assert "--allow-uncounted" in err
    code, written = run(tmp_path, CONFIGS / "smolvla", "--allow-uncounted")
    assert code == 0 and written is not None
    assert written["uncounted"] == [
        "Linear(in_features=960, out_features=49280, bias=False): never run"]


def test_ops_without_a_flop_rule_are_reported() -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    from rapid_env.profiler.counting import count_flops, param_bytes, track_coverage

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mix = nn.Bilinear(8, 8, 4)  # the counter has no rule for its op
            self.out = nn.Linear(4, 2)
            self.unused = nn.Linear(4, 4)

        def forward(self, x: Any) -> Any:
            return self.out(self.mix(x, x))

    with torch.device("meta"):
        head = Head()
        with track_coverage() as coverage:
            param_bytes(head)
            count_flops(lambda: head(torch.empty(3, 8)))
    assert coverage.uncounted() == [
        "Head.mix Bilinear(in1_features=8, in2_features=8, out_features=4, bias=True): ran, but "
        "no FLOP rule counted its work",
        "Head.unused Linear(in_features=4, out_features=4, bias=True): never run",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON (Expecting property name enclosed in double quotes at line 1)"),
        ('{"type": "diffusion"}', "type: no profile rule for LeRobot policy type 'diffusion'; "
                                  "allowed: smolvla, pi0, act"),
        ('{"type": "pi0", "paligemma_variant": "gemma_7b"}',
         "paligemma_variant: no profile rule for 'gemma_7b'; allowed: gemma_300m, gemma_2b"),
        ('{"type": "pi0"}', "input_features: pi0 needs at least one VISUAL feature"),
        ('{"type": "pi0", "image_resolution": [224, 256]}',
         "image_resolution: expected [side, side], got [224, 256]"),
        ('{"type": "act"}', "output_features: ACT needs an ACTION feature named 'action'"),
        (ACT_BAD % '"vision_backbone": "efficientnet_b0"',
         "vision_backbone: no profile rule for 'efficientnet_b0'; allowed: resnet18, resnet34, "
         "resnet50, resnet101, resnet152"),
        (ACT_BAD % '"replace_final_stride_with_dilation": true',
         "replace_final_stride_with_dilation: true needs a bottleneck ResNet"),
        (ACT_BAD % '"feedforward_activation": "glu"',
         "feedforward_activation: 'glu' is not modelled; allowed: relu, gelu"),
        (ACT_BAD % '"dim_model": 500', "dim_model: 500 must be even and divisible by n_heads=8"),
        (ACT_BAD % '"rapid_profile": {"text_tokens": 3}',
         "rapid_profile.text_tokens: unknown field; allowed: name, source"),
        ('{"model_type": "bert"}', "model_type: no profile rule for 'bert'"),
        ('{"model_type": "openvla", "timm_model_ids": ["vit_huge_patch14_foo"]}',
         "no profile rule for vision tower 'vit_huge_patch14_foo'; allowed: "
         "vit_large_patch14_reg4_dinov2.lvd142m"),
        ('{"type": "smolvla", "vlm_model_name": "me/my-vlm"}',
         "vlm_model_name: no config known for 'me/my-vlm'"),
        ('{"type": "smolvla", "num_vlm_layers": "16"}', "num_vlm_layers: expected int, got \"16\""),
        ('{"type": "smolvla", "rapid_profile": {"camras": 3}}',
         "rapid_profile.camras: unknown field; allowed: name, source"),
        ('{"model_type": "openvla", "arch_specifier": "no-align+qformer"}',
         "arch_specifier: no profile rule for projector 'qformer'"),
    ],
)
def test_a_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(text)
    code, written = run(tmp_path, folder)
    err = capsys.readouterr().err
    assert code == 2 and written is None
    assert err.count("\n") == 1 and err.startswith("rapid-profile: error: ") and message in err


def test_a_missing_config_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_a_saved_pi0_config_lists_its_empty_camera_and_counts_the_same(tmp_path: Path) -> None:
    # LeRobot adds the empty slots to input_features when it builds the policy; a config saved
    # after that lists them, and they must not be counted twice (nor sent as cameras).
    config = shipped_config("pi0")
    config["input_features"]["observation.images.empty_camera_0"] = {
        "type": "VISUAL", "shape": [3, 224, 224]}
    code, written = run(tmp_path, write_config(tmp_path, "pi0", config))
    assert code == 0 and written is not None
    shipped = read_cache()["pi0"]
    assert written["profile"]["input_bytes"] == shipped["input_bytes"]
    assert [b["flops"] for b in written["profile"]["blocks"]] == [
        b["flops"] for b in shipped["blocks"]]


def test_pi0_variants_chunk_and_steps_come_from_the_lerobot_fields(tmp_path: Path) -> None:
    config = shipped_config("pi0")
    config.update(paligemma_variant="gemma_300m", chunk_size=25, num_inference_steps=5,
                  empty_cameras=0, tokenizer_max_length=16)
    code, written = run(tmp_path, write_config(tmp_path, "small-pi0", config))
    assert code == 0 and written is not None
    prof, shipped = written["profile"], read_cache()["pi0"]
    assert prof["decode_steps"] == 4 and prof["output_bytes"] == 25 * 7 * 4
    blocks = {b["name"]: b for b in prof["blocks"]}
    ref = {b["name"]: b for b in shipped["blocks"]}
    # Two image slots instead of three: SigLIP's FLOPs scale with the images.
    assert within_one_percent(3 * blocks["vision.siglip"]["flops"],
                              2 * ref["vision.siglip"]["flops"])
    # A 1024-wide VLM (gemma_300m) holds about a quarter of Gemma-2B's layer weights or less.
    assert blocks["llm.layer.00"]["weight_bytes"] < 0.3 * ref["llm.layer.00"]["weight_bytes"]
    # The expert's last layer writes 25 action tokens x 1024 bf16 instead of 50.
    assert blocks["expert.layer.17"]["decode_activation_bytes"] == 25 * 1024 * 2


def test_the_shipped_act_config_counts_one_pass_with_nothing_uncounted(tmp_path: Path) -> None:
    code, written = run(tmp_path, CONFIGS / "act")
    assert code == 0 and written is not None
    prof = written["profile"]
    assert written["family"] == "act" and written["uncounted"] == []
    assert prof["loop"] == "none" and prof["decode_steps"] == 0
    assert [b["name"] for b in prof["blocks"]] == [
        "backbone.stem", "backbone.layer1", "backbone.layer2", "backbone.layer3",
        "backbone.layer4", "encoder.input", "encoder.layer.00", "encoder.layer.01",
        "encoder.layer.02", "encoder.layer.03", "decoder.layer.00", "action_head"]
    # Two 256 px uint8 cameras + an 8-d float32 state up; 100 x 7 float32 actions down.
    assert prof["input_bytes"] == 2 * 3 * 256 * 256 + 8 * 4
    assert prof["output_bytes"] == 100 * 7 * 4


def test_an_unchanged_config_writes_identical_profiles(tmp_path: Path) -> None:
    first = tmp_path / "a"
    second = tmp_path / "b"
    for out in (first, second):
        assert main([str(CONFIGS / "smolvla"), "-o", str(out)]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_text())["profile"]["source"].startswith(
        "counted by rapid-profile from smolvla")
