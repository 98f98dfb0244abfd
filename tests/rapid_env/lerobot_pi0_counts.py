"""Run by LeRobot's own venv: parameter counts of LeRobot's real ``PI0Policy``, by part.

``python lerobot_pi0_counts.py CONFIG_DIR`` builds ``PI0Policy`` from the folder's
``config.json`` on the meta device (no weights, nothing downloaded) and prints
``{"parts": {...}}``: parameters of the PaliGemma VLM (vision tower, projector, language model),
of the action expert, of the action/state/time projections, and of the two language-model heads,
which pi0 never runs (it decodes no text) but LeRobot builds.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.factory import get_policy_class


def part(name: str) -> str:
    """A ``PI0Policy`` parameter name -> its part."""
    if ".lm_head." in name:
        return "lm_heads"
    if ".paligemma.model.vision_tower." in name:
        return "vision"
    if ".paligemma.model.multi_modal_projector." in name:
        return "projector"
    if ".paligemma.model.language_model." in name:
        return "llm"
    if ".gemma_expert.model." in name:
        return "expert"
    return "projections"  # state/action in, action out, the time MLP


def main(folder: str) -> None:
    cfg = PreTrainedConfig.from_pretrained(folder)
    cfg.device = "meta"
    with torch.device("meta"):
        policy = get_policy_class(cfg.type)(cfg)
    parts: Counter[str] = Counter()
    for name, param in policy.named_parameters():
        parts[part(name)] += param.numel()
    print(json.dumps({"parts": dict(parts)}))


if __name__ == "__main__":
    main(sys.argv[1])
