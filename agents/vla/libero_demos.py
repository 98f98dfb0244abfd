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
from rapid_env.agents.vla.demos import DemoSet, chunk_labels
from rapid_env.policy import PolicyInput
from rapid_env.tasks.libero_suite import CAMERAS, DEMO_SEED_BASE, get_libero_task
from rapid_env.tasks.libero_task import LiberoTask

POST_SUCCESS_TICKS = 4  # a little after success, so late chunks end in a settled state


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
    imgs, props, chunks, eps = [], [], [], []
    kept = 0
    try:
        for i in range(n_demos):
            env.reset(seed=first_seed + i)
            ep_img, ep_prop, ep_act = [], [], []
            after = 0
            for t in range(env.max_ticks):
                prop = env.proprio_vector()
                if t % record_every == 0:
                    ep_img.append(np.stack([env.render_camera(c) for c in CAMERAS]))
                    ep_prop.append(prop)
                a = expert.act(PolicyInput(None, prop, spec.instruction, sim=env))[0]
                ep_act.append(a)
                executed = a.astype(np.float64)
                if dart_sigma > 0:
                    executed[:3] += rng.normal(0.0, dart_sigma, 3)
                env.advance(np.clip(executed, -1.0, 1.0))
                if env.success:
                    after += 1
                    if after > POST_SUCCESS_TICKS:
                        break
            if successful_only and not env.success:
                continue
            labels = chunk_labels(np.asarray(ep_act, dtype=np.float32), chunk_size)
            imgs.append(np.asarray(ep_img, dtype=np.uint8))
            props.append(np.asarray(ep_prop, dtype=np.float32))
            chunks.append(labels[::record_every])
            eps.append(np.full(len(ep_img), kept, dtype=np.int32))
            kept += 1
    finally:
        env.close()
    if not imgs:
        raise RuntimeError(f"no successful demos of {task!r} in {n_demos} tries")
    n = sum(len(x) for x in imgs)
    return DemoSet(
        np.concatenate(imgs),
        np.concatenate(props),
        np.concatenate(chunks),
        np.zeros(n, dtype=np.int16),
        np.concatenate(eps),
        [task],
        [spec.instruction],
        list(CAMERAS),
    )
