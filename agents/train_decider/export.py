"""The decider folder :class:`~rapid_env.agents.learned.LearnedDecider` loads, from a trained PPO.

The actor's linear layers and the normaliser's statistics go to safetensors (deciding needs no
torch, no SB3, no unpickling); the full SB3 zip rides along for resuming or inspection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rapid_env.agents.learned import CONFIG_FILE, FORMAT, SB3_FILE, WEIGHTS_FILE
from rapid_env.features import FEATURE_NAMES
from rapid_env.wrapper import COMPACT_ACTIONS

if TYPE_CHECKING:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize


def export(
    model: PPO, venv: VecNormalize, out: Path, config: dict[str, Any]
) -> None:
    """Write the decider folder: SB3 zip, actor weights + normaliser (safetensors), config."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    from stable_baselines3.common.running_mean_std import RunningMeanStd
    from torch import nn

    policy = model.policy
    linears = [m for m in policy.mlp_extractor.policy_net if isinstance(m, nn.Linear)]
    action_net = policy.action_net
    rms = venv.obs_rms
    if not isinstance(action_net, nn.Linear) or not isinstance(rms, RunningMeanStd):
        raise ValueError("expected a Discrete-action MlpPolicy over a Box observation")
    tensors: dict[str, np.ndarray] = {}
    for name, layer in [(f"pi.{i}", m) for i, m in enumerate(linears)] + [("action", action_net)]:
        tensors[f"{name}.weight"] = layer.weight.detach().cpu().numpy().astype(np.float32)
        tensors[f"{name}.bias"] = layer.bias.detach().cpu().numpy().astype(np.float32)
    tensors["obs_mean"] = np.asarray(rms.mean, dtype=np.float64)
    tensors["obs_var"] = np.asarray(rms.var, dtype=np.float64)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out / WEIGHTS_FILE))
    (out / WEIGHTS_FILE).chmod(0o644)  # safetensors writes 0600; package data must be readable
    model.save(out / SB3_FILE)
    config = {
        **config,
        "format": FORMAT,
        "actions": list(COMPACT_ACTIONS),
        "feature_names": list(FEATURE_NAMES),
        "net_arch": [int(layer.out_features) for layer in linears],
        "activation": "tanh",  # SB3 MlpPolicy's default activation_fn
        "obs_clip": float(venv.clip_obs),
        "obs_eps": float(venv.epsilon),
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
