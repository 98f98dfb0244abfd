"""Image augmentation for behaviour cloning: colour jitter and the harness's own corruptions.

Random shifts (:func:`rapid_env.agents.vla.components.random_shift`) teach a policy that a few
pixels of camera placement do not matter. These two teach it that colour and mild image damage do
not either, so that a policy's success under a noise scene measures the trigger, not only the
policy's fragility:

* :func:`color_jitter`: per-image brightness, contrast and per-channel gain, drawn from a torch
  generator (one draw per image; cameras of one sample are jittered independently).
* :func:`corrupt_some`: a share of the images go through one of the named ImageNet-C
  corruptions (:mod:`rapid_env.noise.corruptions`) at a low severity, drawn from a numpy
  Generator. The families named here are the ones *seen* in training; a noise family left out
  is the honest test of generalisation (the shipped checkpoints' cards name both).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rapid_env.noise.corruptions import CORRUPTIONS, corrupt


def check_corruptions(names: Sequence[str]) -> tuple[str, ...]:
    """The names, each checked against the corruption list (ValueError naming the allowed)."""
    for n in names:
        if n not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {n!r}; allowed: {', '.join(CORRUPTIONS)}")
    return tuple(names)


def color_jitter(images: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Jitter (..., H, W, 3) uint8 images: brightness, contrast, channel gains within +-strength.

    Every image (every leading index) gets its own draw; returns uint8 of the same shape.
    """
    if strength <= 0:
        return images
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:]).float()
    n = flat.shape[0]

    def draw(*shape: int) -> torch.Tensor:
        return 1.0 + strength * (2.0 * torch.rand(n, *shape, generator=gen) - 1.0)

    mean = flat.mean(dim=(1, 2, 3), keepdim=True)
    out = (flat - mean) * draw(1, 1, 1) + mean  # contrast about the image's mean
    out = out * draw(1, 1, 1) * draw(1, 1, 3)  # brightness, then per-channel gain
    return out.clamp(0, 255).round().to(torch.uint8).reshape(*lead, *images.shape[-3:])


def corrupt_some(
    images: torch.Tensor,
    names: Sequence[str],
    share: float,
    max_severity: int,
    rng: np.random.Generator,
) -> torch.Tensor:
    """Corrupt a ``share`` of the (..., H, W, 3) uint8 images, each with a random named family.

    Each image is picked with probability ``share`` and gets a family from ``names`` and a
    severity 1..``max_severity``, all drawn from ``rng``. Returns a new tensor.
    """
    if not names or share <= 0:
        return images
    flat = images.reshape(-1, *images.shape[-3:]).numpy().copy()
    picked = np.flatnonzero(rng.random(flat.shape[0]) < share)
    for i in picked:
        name = names[int(rng.integers(len(names)))]
        flat[i] = corrupt(name, flat[i], int(rng.integers(1, max_severity + 1)), rng)
    return torch.from_numpy(flat).reshape(images.shape)
