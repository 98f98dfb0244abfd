"""The scripted expert (``metaworld.policies``) as a chunk-emitting Policy.

Meta-World's experts are state-feedback controllers tuned for 80 Hz. To emit a chunk of K actions
for a 20 Hz controller, the expert *looks ahead*: it copies the physics state, runs itself at its
native rate for K ticks on the copy, averages its own actions over each tick (so a held tick action
moves the hand exactly as far as the expert would have), then restores the state. The chunk is
therefore what the expert would plan from this observation if nothing changed, the same thing an
open-loop chunking VLA predicts.
"""

from __future__ import annotations

import warnings

import mujoco
import numpy as np
from metaworld.policies import ENV_POLICY_MAP

from rapid_env.policy import PolicyInput
from rapid_env.tasks.metaworld_task import MetaWorldTask


class ScriptedExpert:
    """Meta-World's scripted expert for one task, emitting chunks by look-ahead."""

    needs_image = False

    def __init__(self, env_key: str, chunk_size: int = 8) -> None:
        if env_key not in ENV_POLICY_MAP:
            raise ValueError(f"no scripted expert for {env_key!r}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.name = "expert"
        self.env_key = env_key
        self.chunk_size = chunk_size
        self._policy = ENV_POLICY_MAP[env_key]()  # type: ignore[abstract]

    def reset(self, rng: np.random.Generator) -> None:
        """The expert is deterministic; nothing to draw."""

    def act(self, inp: PolicyInput) -> np.ndarray:
        """Plan ``chunk_size`` tick actions by rolling the expert forward on a state copy."""
        task = inp.sim
        if task is None:
            raise ValueError("the scripted expert needs the privileged simulator handle (sim)")
        if not isinstance(task, MetaWorldTask):
            raise ValueError(
                f"the scripted expert runs in a Meta-World task, got {type(task).__name__}; "
                "allowed: MetaWorldTask"
            )
        mw, m, d = task.mw, task.model, task.data
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        saved = np.empty(mujoco.mj_stateSize(m, spec))
        mujoco.mj_getState(m, d, saved, spec)
        saved_prev_obs = mw._prev_obs.copy()
        chunk = np.zeros((self.chunk_size, 4), dtype=np.float32)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the experts warn about their own gains
                for i in range(self.chunk_size):
                    acc = np.zeros(4)
                    for _ in range(task.n_mw):
                        a = np.clip(self._policy.get_action(mw._get_obs()), -1.0, 1.0)
                        acc += a
                        mw.set_xyz_action(a[:3])
                        d.ctrl[0] = a[3]
                        d.ctrl[1] = -a[3]
                        mujoco.mj_step(m, d, task.frame_skip)
                        mujoco.mj_forward(m, d)
                    chunk[i] = acc / task.n_mw
        finally:
            mujoco.mj_setState(m, d, saved, spec)
            mujoco.mj_forward(m, d)
            mw._prev_obs = saved_prev_obs
        return chunk
