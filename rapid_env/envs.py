"""Gymnasium registration of every environment id this package provides.

Ids (entry points are strings, so registering imports nothing heavy):

* ``rapid_env/<task>-v3`` for the ten MT10 tasks (``rapid_env/reach-v3``, ``rapid_env/push-v3``,
  ``rapid_env/pick-place-v3``, ...): the task alone, dict observation (image, proprio,
  instruction), Meta-World's 4-D action, one control tick per step;
* ``rapid_env/<suite>-<index>-v0`` for every LIBERO task (``rapid_env/libero_object-3-v0``, and
  LIBERO-PRO's variants such as ``rapid_env/libero_object_swap-3-v0``): two camera images
  (``agentview``, ``eye_in_hand``), 8-D state, raw joint readings and the instruction, LIBERO's
  7-D action, truncated at the suite's step limit;
* ``rapid_env/Rapid-v0``: the RAPID env, whose agent is the partition decider (keyword arguments
  are :class:`rapid_env.config.EnvConfig` fields, e.g. ``task="push"``, plus ``decider``,
  ``reward`` and ``render_mode``; built by :func:`rapid_env.compose.make_rapid_env`).

A process knows these ids only once it has imported ``rapid_env``: Gymnasium 1.x dropped the
plugin entry points that once imported registering packages on its own. Worker processes that are
handed only an id string (stable-baselines3's ``make_vec_env`` with ``SubprocVecEnv``, anything
started with ``forkserver`` or ``spawn``) get ``"rapid_env:rapid_env/Rapid-v0"``, the id with its
module, which ``gym.make`` imports before looking the id up.
"""

from __future__ import annotations

import gymnasium as gym

from rapid_env.tasks.libero_suite import gym_id, suite_names, suite_tasks
from rapid_env.tasks.suite import MT10

RAPID_ENV_ID = "rapid_env/Rapid-v0"


def register_envs() -> None:
    """Register all ids once (idempotent)."""
    for spec in MT10:
        if spec.gym_id not in gym.registry:
            gym.register(
                id=spec.gym_id,
                entry_point="rapid_env.tasks.metaworld_task:MetaWorldTask",
                kwargs={"task": spec.name},
                max_episode_steps=None,
            )
    for suite in suite_names():
        for i, name in enumerate(suite_tasks(suite)):
            if gym_id(suite, i) not in gym.registry:
                gym.register(
                    id=gym_id(suite, i),
                    entry_point="rapid_env.tasks.libero_task:LiberoTask",
                    kwargs={"task": name},
                    max_episode_steps=None,
                )
    if RAPID_ENV_ID not in gym.registry:
        gym.register(id=RAPID_ENV_ID, entry_point="rapid_env.compose:make_rapid_env")
