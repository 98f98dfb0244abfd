"""Run with LeRobot's Python: build an ACT checkpoint from its config, or check normalisation.

``python lerobot_checkpoint.py make DIR [--zero-head]`` builds a small ACT policy from config
with random weights (seeded; no pretrained backbone, so nothing is downloaded) for Meta-World's
interface (4-D state, the main and wrist cameras at 3x64x64, 4-D actions, chunks of 8 of which 6
are executed) and saves it as LeRobot does: ``config.json``, ``model.safetensors`` and the pre-
and post-processors with the :data:`STATS` below. ``--zero-head`` zeroes the action head, so the
model's normalised output is exactly 0 and the served action is exactly the action mean.

``python lerobot_checkpoint.py check DIR`` loads DIR with ``rapid_policy_server.lerobot``,
records what the model is fed for a known observation and prints it as JSON.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

STATS = {
    "observation.state": {"mean": [0.0, 0.6, 0.2, 0.5], "std": [0.1, 0.1, 0.1, 0.5]},
    "action": {"mean": [0.1, -0.2, 0.3, -0.4], "std": [0.5, 0.5, 0.5, 1.0]},
    "observation.images.image": {"mean": 0.5, "std": 0.25},
    "observation.images.wrist_image": {"mean": 0.4, "std": 0.2},
}


def _stats() -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for key, s in STATS.items():
        if key.startswith("observation.images"):  # per channel, broadcast over H and W
            out[key] = {k: torch.full((3, 1, 1), float(v)) for k, v in s.items()}
        else:
            out[key] = {k: torch.tensor(v) for k, v in s.items()}
    return out


def make(path: str, zero_head: bool) -> None:
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    image = PolicyFeature(FeatureType.VISUAL, (3, 64, 64))
    cfg = ACTConfig(
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (4,)),
                        "observation.images.image": image,
                        "observation.images.wrist_image": image},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (4,))},
        chunk_size=8, n_action_steps=6, pretrained_backbone_weights=None, device="cpu",
        dim_model=64, n_heads=2, dim_feedforward=128, n_encoder_layers=1, n_decoder_layers=1,
        use_vae=False)
    torch.manual_seed(0)
    policy = ACTPolicy(cfg)
    if zero_head:
        torch.nn.init.zeros_(policy.model.action_head.weight)
        torch.nn.init.zeros_(policy.model.action_head.bias)
    pre, post = make_pre_post_processors(cfg, dataset_stats=_stats())
    for part in (policy, pre, post):
        part.save_pretrained(path)


def check(path: str) -> None:
    from rapid_policy_server.lerobot import LeRobotPolicy

    served = LeRobotPolicy(path)
    seen: dict[str, list[float]] = {}

    def hook(_module: object, args: tuple[dict[str, torch.Tensor], ...]) -> None:
        batch = args[0]
        seen["state"] = batch["observation.state"][0].tolist()
        image, wrist = batch["observation.images"]  # (1, 3, H, W) each, in config order
        seen["image"] = image[0, :, 0, 0].tolist()
        seen["wrist"] = wrist[0, :, 0, 0].tolist()
        seen["image_shape"] = list(image.shape)

    served.policy.model.register_forward_pre_hook(hook)
    obs = {"observation/state": np.array([0.2, 0.5, 0.4, 1.5], np.float32),
           "observation/image": np.full((32, 32, 3), 51, np.uint8),  # 0.2 after /255, resized
           "observation/wrist_image": np.full((64, 64, 3), 204, np.uint8),  # 0.8
           "prompt": "reach the goal"}
    actions = served.infer(obs)["actions"]
    print(json.dumps({**seen, "actions_shape": list(actions.shape),
                      "metadata": served.metadata()}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], "--zero-head" in sys.argv[3:])
    elif sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r}; allowed: make, check")
