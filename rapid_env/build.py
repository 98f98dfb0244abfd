"""Assemble the core parts an :class:`~rapid_env.config.EnvConfig` names around a given policy.

The core resolves its own names (task, visual noise, link, cost profile and devices), each against
its registry, so a typo fails before any episode runs. The *policy* is handed in as an object:
policies are agents, a layer above the core, and only :mod:`rapid_env.compose` (or an agent's own
trainer) turns a policy name into one.

This is the one module of the loop's side that imports a task suite: it builds the task, and
everything after it (the controller, the recorder, the noise, the oracle) sees only the
:class:`~rapid_env.task.Task` protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rapid_env.config import EnvConfig
from rapid_env.controller import PartitionedController, PlacementOption
from rapid_env.policy import Policy
from rapid_env.task import Task

if TYPE_CHECKING:
    from rapid_env.cost.model import Placement

GIB = 2**30
"""Bytes per GiB: edge budgets are in GiB, the reading docs/paper.md gives the paper's "GB"."""


def validate_core_names(cfg: EnvConfig) -> None:
    """Raise ValueError naming the first unknown core name in ``cfg`` and the allowed ones.

    Everything but the policy, which is checked where policies are known (:mod:`rapid_env.compose`).
    """
    from rapid_env.cost import DEVICES
    from rapid_env.cost.profiles import check_profile
    from rapid_env.link import parse_link
    from rapid_env.noise import parse_noise
    from rapid_env.tasks.suite import check_task

    check_task(cfg.task)
    check_profile(cfg.profile)
    DEVICES.check(cfg.edge)
    DEVICES.check(cfg.cloud)
    scene_task(cfg.task, parse_noise(cfg.noise).variant)
    parse_link(cfg.link)


def scene_task(task: str, variant: str | None) -> str:
    """The task to build: ``task``, or its LIBERO-PRO variant when the noise names one.

    ``libero_object/3`` under ``pro-swap`` is ``libero_object_swap/3``: the same task with its
    objects' positions swapped. A variant of a Meta-World task, or of a task that is already a
    variant, is refused.
    """
    from rapid_env.tasks.libero_suite import base_suite, get_libero_task, is_libero
    from rapid_env.tasks.suite import check_task

    if variant is None:
        return task
    spec = get_libero_task(task) if is_libero(task) else None
    if spec is None or spec.suite != base_suite(spec.suite):
        raise ValueError(
            f"a LIBERO-PRO scene variant ({variant}) on task {task!r}; allowed: a task of a base "
            "LIBERO suite (libero_spatial, libero_object, libero_goal, libero_10, libero_90)"
        )
    return check_task(f"{spec.suite}_{variant}/{spec.index}")


def build_task(cfg: EnvConfig) -> Task:
    """The task ``cfg`` names, of its suite: Meta-World's or LIBERO's.

    Meta-World's default camera means nothing in a LIBERO scene: a LIBERO task given it uses
    its own main camera (``agentview``).
    """
    from rapid_env.noise import parse_noise
    from rapid_env.tasks.libero_suite import is_libero
    from rapid_env.tasks.limits import DEFAULT_CAMERA

    name = scene_task(cfg.task, parse_noise(cfg.noise).variant)
    if is_libero(name):
        from rapid_env.tasks.libero_task import LiberoTask

        return LiberoTask(
            name,
            image_size=cfg.image_size,
            camera="agentview" if cfg.camera == DEFAULT_CAMERA else cfg.camera,
            control_hz=cfg.control_hz,
            quality=cfg.quality,
            max_episode_s=cfg.max_episode_s,
        )
    from rapid_env.tasks.metaworld_task import MetaWorldTask

    return MetaWorldTask(
        cfg.task,
        image_size=cfg.image_size,
        camera=cfg.camera,
        control_hz=cfg.control_hz,
        quality=cfg.quality,
        max_episode_s=cfg.max_episode_s,
    )


def assemble_controller(
    cfg: EnvConfig, policy: Policy, decider_needs_image: bool = False
) -> PartitionedController:
    """Build the task, cost model, link and noise named by ``cfg`` and run ``policy`` in them.

    The cost model follows ``cfg.placement`` and ``cfg.loop_cost``; with an edge budget, the
    fixed partition is the deepest split of that placement within it. ``placement="best"``
    gives the controller both placements (edge-prefix its own, edge-suffix the alternative).
    """
    from rapid_env.cost import build_cost_model
    from rapid_env.link import parse_link
    from rapid_env.noise import parse_noise

    validate_core_names(cfg)
    task = build_task(cfg)
    own: Placement = "edge-suffix" if cfg.placement == "edge-suffix" else "edge-prefix"
    cost = build_cost_model(
        profile=cfg.profile, edge=cfg.edge, cloud=cfg.cloud, placement=own,
        loop_cost=cfg.loop_cost,
    )
    budget = cfg.edge_budget_gib
    partition = None if budget is None else cost.deepest_split_within(budget * GIB)
    alternative = None
    if cfg.placement == "best":  # the controller picks the cheaper placement per request
        tail = cost.with_readings(placement="edge-suffix")
        alternative = PlacementOption(
            tail, None if budget is None else tail.deepest_split_within(budget * GIB)
        )
    return PartitionedController(
        task,
        policy,
        cost,
        parse_link(cfg.link, episode_s=cfg.max_episode_s),  # warns on a dead trace
        parse_noise(cfg.noise),
        cfg.control,
        decider_needs_image=decider_needs_image,
        partition=partition,
        alternative=alternative,
        action_contract=cfg.action_contract,
    )
