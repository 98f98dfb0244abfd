"""``NoisyImage``: a noise scenario as a Gymnasium observation wrapper around a task env.

For using a noise spec outside the partitioned controller (which applies its ``ImageNoise``
itself): the wrapper parses the spec with :func:`rapid_env.noise.spec.parse_noise`, draws each
episode's disturbances from its own seeded ``np_random`` and corrupts the ``image`` key of the
dict observation.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rapid_env.noise.spec import parse_noise
from rapid_env.task import Task


class NoisyImage(
    gym.ObservationWrapper[dict[str, Any], np.ndarray, dict[str, Any]],
    gym.utils.RecordConstructorArgs,
):
    """Corrupt the ``image`` key of a dict observation with a seeded :class:`ImageNoise`.

    The wrapper's randomness comes from ``self.np_random``, seeded through ``reset(seed=...)``.

    Example:
        >>> from rapid_env.tasks.metaworld_task import MetaWorldTask
        >>> env = NoisyImage(MetaWorldTask("reach", image_size=32), "gaussian_noise:2")
    """

    def __init__(self, env: gym.Env[dict[str, Any], np.ndarray], noise: str) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, noise=noise)
        gym.ObservationWrapper.__init__(self, env)
        self.noise = parse_noise(noise)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset the env, then draw this episode's disturbances and re-render the first frame."""
        obs, info = self.env.reset(seed=seed, options=options)
        task = self.env.unwrapped
        if isinstance(task, Task):  # a task the loop could run: its scene can be disturbed
            self.noise.reset(task, self.np_random)
            if self.noise.scene:
                obs = {**obs, "image": task.render_image()}
        return self.observation(obs), info

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        """Return the observation with its image corrupted."""
        out = dict(observation)
        out["image"] = self.noise(observation["image"], self.np_random)
        return out
