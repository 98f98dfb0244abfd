"""ACT's profile (``rapid_env.profiler.arch_act``), checked against LeRobot's own ``ACTPolicy``.

The builder re-creates LeRobot's ACT in plain torch; LeRobot lives in its own venv
(``.venv-lerobot``), so the cross-check runs its real model there (a subprocess, on the meta
device, no weights) and compares parameters and FLOPs part by part. Without that venv the
cross-check is skipped, saying why; the other tests need only torch.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rapid_env.profiler.arch_act import ActSpec, act_param_counts, count_act
from rapid_env.profiler.counting import track_coverage
from rapid_env.profiler.from_config import count_config, read_config

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "rapid_env" / "data" / "model_configs"
LEROBOT_PYTHON = Path(os.environ.get("RAPID_LEROBOT_PYTHON",
                                     ROOT / ".venv-lerobot" / "bin" / "python"))
SCRIPT = Path(__file__).with_name("lerobot_act_counts.py")
needs_lerobot = pytest.mark.skipif(
    not LEROBOT_PYTHON.exists(),
    reason=f"no LeRobot venv at {LEROBOT_PYTHON}: make lerobot-venv (or set RAPID_LEROBOT_PYTHON)")

VARIANT = {
    # Every other path of the builder: a bottleneck ResNet with a dilated layer4, pre-norm with
    # its final encoder norm, gelu, a deeper decoder, no VAE, an environment-state token, three
    # non-square cameras and no robot state.
    "vision_backbone": "resnet50",
    "replace_final_stride_with_dilation": True,
    "pre_norm": True,
    "feedforward_activation": "gelu",
    "dim_model": 256,
    "n_heads": 4,
    "dim_feedforward": 1024,
    "n_encoder_layers": 2,
    "n_decoder_layers": 3,
    "use_vae": False,
    "chunk_size": 20,
    "n_action_steps": 20,
    "input_features": {
        "observation.images.a": {"type": "VISUAL", "shape": [3, 96, 128]},
        "observation.images.b": {"type": "VISUAL", "shape": [3, 96, 128]},
        "observation.images.c": {"type": "VISUAL", "shape": [3, 96, 128]},
        "observation.environment_state": {"type": "ENV", "shape": [10]},
    },
    "output_features": {"action": {"type": "ACTION", "shape": [14]}},
}


def act_config(tmp_path: Path, changes: dict[str, Any] | None = None) -> Path:
    """The shipped LeRobot ACT config folder, or a copy with ``changes``."""
    if not changes:
        return CONFIGS / "act"
    config, _ = read_config(CONFIGS / "act")
    config.update(changes)
    folder = tmp_path / "act-variant"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    return folder


def part_flops(blocks: list[Any]) -> dict[str, float]:
    """The profile's FLOPs grouped as LeRobot's ``ACT`` module names its parts."""
    groups = {"backbone": 0.0, "encoder": 0.0, "decoder": 0.0, "heads": 0.0}
    for block in blocks:
        prefix = block.name.split(".")[0]
        if block.name == "encoder.input" or prefix == "action_head":
            prefix = "heads"
        groups[prefix] += block.flops
    return groups


@needs_lerobot
@pytest.mark.parametrize("changes", [None, VARIANT], ids=["shipped", "variant"])
def test_parameters_and_flops_match_lerobots_act_part_by_part(
    tmp_path: Path, changes: dict[str, Any] | None
) -> None:
    folder = act_config(tmp_path, changes)
    done = subprocess.run([str(LEROBOT_PYTHON), str(SCRIPT), str(folder)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    counted = count_config(folder)
    from rapid_env.profiler.from_config import act_spec

    spec = act_spec(read_config(folder)[0], "act", "test")
    mine = act_param_counts(spec)
    assert {k: v for k, v in mine.items() if v} == theirs["params"]
    for part, flops in part_flops(list(counted.profile.blocks)).items():
        assert flops == pytest.approx(theirs["flops"][part], rel=1e-9), part


@needs_lerobot
def test_the_shipped_configs_are_lerobots_own() -> None:
    # LeRobot's loader reads them back field for field (a hand-written config could drift).
    code = (
        "import sys; from lerobot.configs.policies import PreTrainedConfig\n"
        "import lerobot.policies.act.configuration_act, lerobot.policies.pi0.configuration_pi0\n"
        "for folder in sys.argv[1:]:\n"
        "    c = PreTrainedConfig.from_pretrained(folder)\n"
        "    print(c.type, c.chunk_size, len(c.image_features))\n"
    )
    done = subprocess.run(
        [str(LEROBOT_PYTHON), "-c", code, str(CONFIGS / "act"), str(CONFIGS / "pi0")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == ["act 100 2", "pi0 50 2"]


def test_the_vae_encoder_is_resident_but_never_run() -> None:
    with track_coverage() as coverage:
        with_vae = count_act(ActSpec())
    without = count_act(replace(ActSpec(), use_vae=False))
    assert coverage.uncounted() == [] and with_vae.total_flops == without.total_flops
    vae_bytes = 2 * act_param_counts(ActSpec())["vae_encoder"] + 2 * (1 + 100 + 1) * 512
    assert with_vae.weight_bytes - without.weight_bytes == vae_bytes
    block = next(b for b in with_vae.blocks if b.name == "encoder.input")
    assert block.streamed_bytes == block.weight_bytes - vae_bytes  # loaded, not read


def test_backbone_flops_scale_with_cameras_and_pixels() -> None:
    base = count_act(ActSpec())
    more = count_act(replace(ActSpec(), cameras=4, image_height=128, image_width=128))
    for a, b in zip(base.blocks[:5], more.blocks[:5], strict=True):
        assert b.flops == pytest.approx(a.flops / 2)  # 2x the images, a quarter of the pixels
    assert more.input_bytes == 4 * 3 * 128 * 128 + 8 * 4


def test_a_cut_between_decoder_layers_ships_the_encoder_output() -> None:
    prof = count_act(replace(ActSpec(), n_decoder_layers=2))
    first, second = (b for b in prof.blocks if b.name.startswith("decoder.layer."))
    tokens = 1 + 1 + 2 * 8 * 8  # latent + state + two 8 x 8 feature maps
    assert second.activation_bytes == 100 * 512 * 2
    assert first.activation_bytes == (100 + tokens) * 512 * 2
