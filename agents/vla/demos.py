"""Demonstrations from the scripted experts, the training data of every executable family.

One demo step is what the policy will see at that tick (camera image, proprio, instruction) and
the label it should predict: the next ``chunk_size`` clean expert tick actions along the visited
trajectory (ACT-style chunk labels). With ``dart_sigma`` > 0 the *executed* action carries seeded
Gaussian noise (DART, Laskey et al. 2017) so the data covers the states a slightly wrong learner
reaches, while the label stays the expert's clean action.

Demos use training seeds only; evaluation seeds are disjoint (see ``TRAIN_SEED_BASE``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rapid_env.agents.expert import ScriptedExpert
from rapid_env.policy import Policy, PolicyInput
from rapid_env.task import Task
from rapid_env.tasks.metaworld_task import MetaWorldTask
from rapid_env.tasks.suite import MT10, get_task

TRAIN_SEED_BASE = 100_000  # demo seeds are TRAIN_SEED_BASE + i; evaluation uses seeds < 100_000
POST_SUCCESS_TICKS = 4  # keep recording a little after success so chunks end in a settled state


@dataclass
class DemoSet:
    """Stacked demo steps of one or more tasks.

    Attributes:
        images: uint8 (N, H, W, 3) of one camera, (N, C, H, W, 3) of C cameras.
        proprio: float32 (N, P): Meta-World's end-effector xyz and gripper opening (P = 4),
            LIBERO's eef xyz, axis-angle and finger joints (P = 8).
        chunks: float32 (N, K, A), the label chunk for each step (A = 4 Meta-World, 7 LIBERO).
        task_index: int16 (N,), index into ``tasks``.
        episode: int32 (N,), a running episode id (for splits by episode).
        tasks: the task names, in index order.
        instructions: each task's instruction, in index order; empty for sets written before
            they were stored (Meta-World's, whose instructions the trainer looks up).
        cameras: the camera of each image slot (the first is the task's main camera).
        targets: float32 (N, D) privileged labels for an auxiliary localisation loss (Meta-World:
            object, second object and goal xyz, :meth:`MetaWorldTask.object_targets`), or None
            for sets recorded without them. Never a policy input.
    """

    images: np.ndarray
    proprio: np.ndarray
    chunks: np.ndarray
    task_index: np.ndarray
    episode: np.ndarray
    tasks: list[str]
    instructions: list[str] = field(default_factory=list)
    cameras: list[str] = field(default_factory=lambda: ["main"])
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` (uncompressed: loading speed matters more than disk here)."""
        arrays: dict[str, np.ndarray] = {
            "images": self.images,
            "proprio": self.proprio,
            "chunks": self.chunks,
            "task_index": self.task_index,
            "episode": self.episode,
            "tasks": np.array(self.tasks),
            "instructions": np.array(self.instructions, dtype=str),
            "cameras": np.array(self.cameras),
        }
        if self.targets is not None:
            arrays["targets"] = self.targets
        np.savez(path, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> DemoSet:
        """Read a set written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            return cls(
                z["images"],
                z["proprio"],
                z["chunks"],
                z["task_index"],
                z["episode"],
                [str(t) for t in z["tasks"]],
                [str(t) for t in z["instructions"]] if "instructions" in z else [],
                [str(c) for c in z["cameras"]] if "cameras" in z else ["main"],
                z["targets"] if "targets" in z else None,
            )

    def select(
        self, tasks: list[str] | None = None, cameras: list[str] | None = None
    ) -> DemoSet:
        """The steps of ``tasks`` (all if None) seen through ``cameras`` (all if None), re-indexed.

        Ablations train on subsets of one recorded set this way, so every row sees the same
        episodes. ValueError names a task or camera the set does not hold.
        """
        tasks = list(self.tasks) if tasks is None else list(tasks)
        cameras = list(self.cameras) if cameras is None else list(cameras)
        for t in tasks:
            if t not in self.tasks:
                raise ValueError(f"task {t!r} not in this demo set; allowed: {self.tasks}")
        for c in cameras:
            if c not in self.cameras:
                raise ValueError(f"camera {c!r} not in this demo set; allowed: {self.cameras}")
        keep = np.isin(self.task_index, [self.tasks.index(t) for t in tasks])
        images = self.images[keep]
        if self.images.ndim == 5:
            slots = [self.cameras.index(c) for c in cameras]
            images = images[:, slots[0]] if len(slots) == 1 else images[:, slots]
        remap = np.full(len(self.tasks), -1, dtype=np.int16)
        remap[[self.tasks.index(t) for t in tasks]] = np.arange(len(tasks), dtype=np.int16)
        said = dict(zip(self.tasks, self.instructions, strict=False))
        return DemoSet(
            np.ascontiguousarray(images), self.proprio[keep], self.chunks[keep],
            remap[self.task_index[keep]], self.episode[keep], tasks,
            [said[t] for t in tasks] if self.instructions else [], cameras,
            None if self.targets is None else self.targets[keep],
        )

    @classmethod
    def concat(cls, parts: list[DemoSet]) -> DemoSet:
        """Join sets, re-indexing tasks and episodes so they stay unique."""
        tasks: list[str] = []
        said: dict[str, str] = {}
        for p in parts:
            tasks += [t for t in p.tasks if t not in tasks]
            said.update(zip(p.tasks, p.instructions, strict=False))
            if p.cameras != parts[0].cameras:
                raise ValueError(f"demo sets of cameras {p.cameras} and {parts[0].cameras}")
        ti, ep, off = [], [], 0
        for p in parts:
            remap = np.array([tasks.index(t) for t in p.tasks], dtype=np.int16)
            ti.append(remap[p.task_index])
            ep.append(p.episode + off)
            off += int(p.episode.max()) + 1 if len(p) else 0
        return cls(
            np.concatenate([p.images for p in parts]),
            np.concatenate([p.proprio for p in parts]),
            np.concatenate([p.chunks for p in parts]),
            np.concatenate(ti),
            np.concatenate(ep),
            tasks,
            [said[t] for t in tasks] if all(t in said for t in tasks) else [],
            list(parts[0].cameras),
            np.concatenate([p.targets for p in parts])  # type: ignore[misc]
            if all(p.targets is not None for p in parts) else None,
        )


def chunk_labels(actions: np.ndarray, chunk_size: int) -> np.ndarray:
    """(T, A) tick actions -> (T, chunk_size, A): each tick's next ``chunk_size`` actions.

    The episode's last action is repeated past its end (the robot holds still once done).
    """
    padded = np.concatenate([actions, np.repeat(actions[-1:], chunk_size - 1, axis=0)])
    idx = np.arange(len(actions))[:, None] + np.arange(chunk_size)[None, :]
    return padded[idx]


def collect_task(
    task: str,
    n_demos: int,
    chunk_size: int = 8,
    image_size: int = 64,
    dart_sigma: float = 0.0,
    seed: int = 0,
    first_seed: int = TRAIN_SEED_BASE,
    successful_only: bool = True,
    cameras: tuple[str, ...] = ("main",),
    targets: bool = False,
) -> DemoSet:
    """Record ``n_demos`` expert episodes of ``task`` on seeds ``first_seed + i``.

    ``seed`` seeds the DART noise stream (together with ``first_seed`` and the task, so a task's
    demos do not depend on which worker collected them); layouts come from the episode seeds.
    ``cameras``: ``main`` (the task's ``corner4``) and any other Meta-World camera by name
    (``gripperPOV``); ``targets`` records the privileged object/goal positions as auxiliary
    labels.
    """
    if n_demos < 1:
        raise ValueError(f"n_demos must be >= 1, got {n_demos}")
    spec = get_task(task)
    env = MetaWorldTask(task, image_size=image_size)
    for c in cameras[1:]:
        if c not in env.camera_names[1:]:
            env.close()
            raise ValueError(f"unknown camera {c!r}; allowed: {', '.join(env.camera_names[1:])}")
    if cameras[0] != "main":
        env.close()
        raise ValueError(f"the first camera must be 'main' (the task's), got {cameras[0]!r}")

    def frame() -> np.ndarray:
        if len(cameras) == 1:
            return env.render_image()
        return np.stack([env.render_image(), *(env.render_camera(c) for c in cameras[1:])])

    expert = ScriptedExpert(spec.env_key, chunk_size=1)
    task_no = [t.name for t in MT10].index(spec.name) if spec in MT10 else 0
    rng = np.random.default_rng(np.random.SeedSequence([seed, first_seed, task_no]))
    try:
        return record_demos(
            env, expert, task, spec.instruction, frame, n_demos=n_demos,
            first_seed=first_seed, chunk_size=chunk_size, dart_sigma=dart_sigma, rng=rng,
            successful_only=successful_only, cameras=cameras,
            targets=env.object_targets if targets else None,
        )
    finally:
        env.close()


def record_demos(
    env: Task,
    expert: Policy,
    task: str,
    instruction: str,
    frame: Callable[[], np.ndarray],
    *,
    n_demos: int,
    first_seed: int,
    chunk_size: int,
    dart_sigma: float,
    rng: np.random.Generator,
    record_every: int = 1,
    successful_only: bool = True,
    action_dtype: type[np.floating] = np.float32,
    cameras: tuple[str, ...] = ("main",),
    targets: Callable[[], np.ndarray] | None = None,
) -> DemoSet:
    """Run the expert (one-action chunks) for ``n_demos`` episodes of ``env`` and stack them.

    Each suite's collector builds the task, the expert and the noise stream; the recipe is
    shared: episode ``i`` starts from seed ``first_seed + i``; every ``record_every``-th tick
    records ``frame()`` and the proprio; with ``dart_sigma`` > 0 the executed action's
    translation carries seeded noise (DART) while the label stays the clean expert action; an
    episode runs :data:`POST_SUCCESS_TICKS` past success; failed episodes are dropped unless
    ``successful_only`` is False. ``action_dtype`` is the precision the noise is added in.
    ``targets`` (if given) is read beside every recorded frame: auxiliary training labels.

    Raises:
        RuntimeError: no episode succeeded.
    """
    imgs, props, chunks, eps, tgts = [], [], [], [], []
    kept = 0
    for i in range(n_demos):
        env.reset(seed=first_seed + i)
        ep_img, ep_prop, ep_act, ep_tgt = [], [], [], []
        after = 0
        for t in range(env.max_ticks):
            prop = env.proprio_vector()
            if t % record_every == 0:
                ep_img.append(frame())
                ep_prop.append(prop)
                if targets is not None:
                    ep_tgt.append(targets())
            a = expert.act(PolicyInput(None, prop, instruction, sim=env))[0]
            ep_act.append(a)
            executed = np.array(a, dtype=action_dtype)
            if dart_sigma > 0:
                executed[:3] += rng.normal(0.0, dart_sigma, 3)
            env.advance(np.clip(executed, -1, 1))
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
        tgts.append(np.asarray(ep_tgt, dtype=np.float32))
        kept += 1
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
        [instruction],
        list(cameras),
        np.concatenate(tgts) if targets is not None else None,
    )


def main() -> None:
    """Collect demos of some tasks into one ``.npz`` (a worker of ``rapid-train collect``)."""
    import argparse

    p = argparse.ArgumentParser(description="collect scripted-expert demos")
    p.add_argument("--tasks", required=True)
    p.add_argument("--demos", type=int, default=100)
    p.add_argument("--chunk-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--dart-sigma", type=float, default=0.1)
    p.add_argument("--first-seed", type=int, default=TRAIN_SEED_BASE)
    p.add_argument("--record-every", type=int, default=2, help="LIBERO: record every n-th tick")
    p.add_argument("--cameras", default="main", help="Meta-World: main[,gripperPOV...]")
    p.add_argument("--targets", action="store_true", help="record object/goal positions")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    parts = []
    for t in a.tasks.split(","):
        t0 = time.perf_counter()
        if t.startswith("libero_"):  # LIBERO's simulator and expert load only when asked for
            from rapid_env.agents.vla.libero_demos import collect_libero_task

            ds = collect_libero_task(
                t, a.demos, a.chunk_size, a.image_size, a.dart_sigma, seed=0,
                first_seed=a.first_seed, record_every=a.record_every,
            )
        else:
            ds = collect_task(
                t, a.demos, a.chunk_size, a.image_size, a.dart_sigma, seed=0,
                first_seed=a.first_seed, cameras=tuple(a.cameras.split(",")),
                targets=a.targets,
            )
        dt = time.perf_counter() - t0
        print(
            f"{t}: {len(ds)} steps, {ds.episode.max() + 1} demos, {dt:.0f} s "
            f"({1000 * dt / len(ds):.1f} ms/step)",
            flush=True,
        )
        parts.append(ds)
    DemoSet.concat(parts).save(a.out)


if __name__ == "__main__":
    main()
