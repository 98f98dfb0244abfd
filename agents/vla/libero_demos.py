"""LIBERO demonstrations from the scripted expert, the training data of the LIBERO checkpoints.

The recipe is Meta-World's (:mod:`rapid_env.agents.vla.demos`): the label of a step is the next
``chunk_size`` clean expert tick actions along the visited trajectory, and with ``dart_sigma`` >
0 the *executed* action carries seeded Gaussian noise on its translation (DART), so the data shows
recoveries from the states a slightly wrong learner reaches. What LIBERO changes:

* both cameras (``agentview``, ``eye_in_hand``) are recorded, as (N, 2, H, W, 3);
* the proprio is LIBERO's 8-D state and the labels are 7-D OSC-pose deltas;
* the expert acts from the simulator (its per-tick controller, :class:`LiberoExpert` with
  one-action chunks, reading privileged state through ``PolicyInput.sim``);
* layouts: demo seeds (``>= DEMO_SEED_BASE``) make :class:`LiberoTask` draw a fresh layout from
  the task's placement regions, never one of the 50 fixed initial states the evaluation seeds
  pick, so a checkpoint is always scored on layouts it never saw;
* ``record_every``: rendering two cameras on a CPU costs several times the physics tick, so by
  default every second tick is recorded (all ticks still label the chunks): twice the episodes,
  hence twice the layouts, for the same collection time.
"""

from __future__ import annotations

import numpy as np

from rapid_env.agents.libero_expert import LiberoExpert
from rapid_env.agents.vla.demos import DemoSet, record_demos
from rapid_env.tasks.libero_suite import CAMERAS, DEMO_SEED_BASE, get_libero_task
from rapid_env.tasks.libero_task import LiberoTask


def collect_libero_task(
    task: str,
    n_demos: int,
    chunk_size: int = 8,
    image_size: int = 64,
    dart_sigma: float = 0.1,
    seed: int = 0,
    first_seed: int = DEMO_SEED_BASE,
    record_every: int = 2,
    successful_only: bool = True,
) -> DemoSet:
    """Record ``n_demos`` expert episodes of LIBERO ``task`` on demo seeds ``first_seed + i``.

    ``seed`` seeds the DART noise (with ``first_seed`` and the task's suite index, so a task's
    demos do not depend on which worker collected them). Failed episodes are dropped unless
    ``successful_only`` is False.

    Raises:
        ValueError: ``n_demos`` or ``record_every`` < 1, or ``first_seed`` is an evaluation seed.
        RuntimeError: no episode succeeded.
    """
    if n_demos < 1:
        raise ValueError(f"n_demos must be >= 1, got {n_demos}")
    if record_every < 1:
        raise ValueError(f"record_every must be >= 1, got {record_every}")
    if first_seed < DEMO_SEED_BASE:
        raise ValueError(
            f"first_seed={first_seed} is an evaluation seed; allowed: >= {DEMO_SEED_BASE}"
        )
    spec = get_libero_task(task)
    env = LiberoTask(task, image_size=image_size)
    expert = LiberoExpert(chunk_size=1)
    rng = np.random.default_rng(np.random.SeedSequence([seed, first_seed, spec.index, 7]))
    try:
        return record_demos(
            env, expert, task, spec.instruction,
            lambda: np.stack([env.render_camera(c) for c in CAMERAS]), n_demos=n_demos,
            first_seed=first_seed, chunk_size=chunk_size, dart_sigma=dart_sigma, rng=rng,
            record_every=record_every, successful_only=successful_only,
            action_dtype=np.float64, cameras=CAMERAS,
        )
    finally:
        env.close()
