"""The Policy seam: anything that turns an observation into an action chunk.

A VLA (small executable model, or a user's real checkpoint) and the scripted expert all implement
this protocol, so the controller never knows which it is running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from rapid_env.tasks.metaworld_task import MetaWorldTask


@dataclass(frozen=True)
class PolicyInput:
    """What a policy sees when it is asked for a chunk.

    Attributes:
        image: the (possibly noisy) camera frame, uint8 HxWx3, or None when the policy said it
            does not read images (``needs_image`` False) and nothing else rendered one.
        proprio: end-effector xyz and gripper opening.
        instruction: the task sentence.
        sim: privileged handle on the simulator. Only the scripted expert (a stand-in for a model)
            may read it; a learned policy must not.
    """

    image: np.ndarray | None
    proprio: np.ndarray
    instruction: str
    sim: MetaWorldTask | None = None


@runtime_checkable
class Policy(Protocol):
    """Emits action chunks: arrays of shape (chunk_size, 4) in Meta-World's action space."""

    name: str
    chunk_size: int
    needs_image: bool

    def reset(self, rng: np.random.Generator) -> None:
        """Start a new episode; all randomness comes from ``rng``."""
        ...

    def act(self, inp: PolicyInput) -> np.ndarray:
        """Return an action chunk of shape (chunk_size, 4), one action per control tick."""
        ...
