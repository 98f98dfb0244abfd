"""Run by LeRobot's own venv: parameter and FLOP counts per part of LeRobot's real ``ACTPolicy``.

``python lerobot_act_counts.py CONFIG_DIR`` builds ``ACTPolicy`` from the folder's ``config.json``
(LeRobot's own loader; no backbone weights downloaded), counts its parameters by the part names
of LeRobot's ``ACT`` module, runs one inference forward pass on the meta device under torch's
FLOP counter, and prints ``{"params": {...}, "flops": {...}}`` as JSON. The test compares this
with ``rapid_env.profiler.arch_act``, which re-creates the model without importing LeRobot.
"""

from __future__ import annotations

import json
import sys

import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from torch.utils.flop_counter import FlopCounterMode


def part(name: str) -> str:
    """LeRobot ``ACT`` parameter name -> the part the profiler's blocks group it in."""
    if name.startswith("vae_encoder"):
        return "vae_encoder"
    for prefix in ("backbone", "encoder", "decoder"):
        if name.startswith(prefix + "."):
            return prefix
    return "heads"  # input projections, position tables, action head


def main(folder: str) -> None:
    config = PreTrainedConfig.from_pretrained(folder)
    config.pretrained_backbone_weights = None
    config.device = "cpu"
    with torch.device("meta"):
        policy = ACTPolicy(config)
    model = policy.model.eval()
    params: dict[str, int] = {}
    for name, p in model.named_parameters():
        params[part(name)] = params.get(part(name), 0) + p.numel()
    params["backbone_buffers"] = sum(
        b.numel() for name, b in model.named_buffers() if name.startswith("backbone.")
    )
    batch = {}
    with torch.device("meta"):
        if config.robot_state_feature:
            batch["observation.state"] = torch.empty(1, *config.robot_state_feature.shape)
        if config.env_state_feature:
            batch["observation.environment_state"] = torch.empty(
                1, *config.env_state_feature.shape)
        batch["observation.images"] = [
            torch.empty(1, *feature.shape) for feature in config.image_features.values()
        ]
        if not batch["observation.images"]:
            del batch["observation.images"]
        if "observation.state" not in batch:  # ACT takes the latent's device from the state
            batch["observation.state"] = torch.empty(1, 1)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(batch)
    counts = counter.get_flop_counts()
    flops = {key: float(sum(counts.get(f"ACT.{key}", {}).values()))
             for key in ("backbone", "encoder", "decoder")}
    flops["heads"] = float(sum(counts["Global"].values())) - sum(flops.values())
    print(json.dumps({"params": params, "flops": flops}))


if __name__ == "__main__":
    main(sys.argv[1])
