"""One frozen configuration for an environment instance, and the builder that resolves its names.

Every field is a name or a number that the CLI, the wrapper and W&B config share; building checks
each name against its registry up front, so a typo fails before any episode runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rapid_env.controller import ControlConfig, PartitionedController
from rapid_env.tasks.markers import DEFAULT_CAMERA


@dataclass(frozen=True)
class EnvConfig:
    """Everything that defines an episode besides the seed and the decider."""

    task: str = "reach"
    policy: str = "chunk-regress"  # a trained family drives the robot unless told otherwise
    noise: str = "clean"
    link: str = "constant:20:40"
    profile: str = "openvla-7b"
    edge: str = "jetson-agx-orin"
    cloud: str = "a100"
    image_size: int = 64
    camera: str = DEFAULT_CAMERA
    quality: str = "fast"
    control_hz: float = 20.0
    chunk_size: int = 8
    max_episode_s: float = 10.0
    control: ControlConfig = field(default_factory=ControlConfig)

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for W&B config and records."""
        return asdict(self)


def validate_names(cfg: EnvConfig) -> None:
    """Raise ValueError naming the first unknown name in ``cfg`` and the allowed ones."""
    from rapid_env.agents.registry import POLICIES
    from rapid_env.cost import DEVICES, PROFILES
    from rapid_env.link import parse_link
    from rapid_env.noise import parse_noise
    from rapid_env.tasks.suite import TASKS

    TASKS.check(cfg.task)
    POLICIES.check(cfg.policy)
    PROFILES.check(cfg.profile)
    DEVICES.check(cfg.edge)
    DEVICES.check(cfg.cloud)
    parse_noise(cfg.noise)
    parse_link(cfg.link)


def build_controller(cfg: EnvConfig, decider_needs_image: bool = False) -> PartitionedController:
    """Build the task, policy, cost model, link and noise named by ``cfg``."""
    from rapid_env.agents.registry import POLICIES
    from rapid_env.cost import build_cost_model
    from rapid_env.link import parse_link
    from rapid_env.noise import parse_noise
    from rapid_env.tasks.metaworld_task import MetaWorldTask

    validate_names(cfg)
    task = MetaWorldTask(
        cfg.task,
        image_size=cfg.image_size,
        camera=cfg.camera,
        control_hz=cfg.control_hz,
        quality=cfg.quality,
        max_episode_s=cfg.max_episode_s,
    )
    policy = POLICIES.create(cfg.policy, cfg.task, chunk_size=cfg.chunk_size)
    cost = build_cost_model(profile=cfg.profile, edge=cfg.edge, cloud=cfg.cloud)
    return PartitionedController(
        task,
        policy,
        cost,
        parse_link(cfg.link),
        parse_noise(cfg.noise),
        cfg.control,
        decider_needs_image=decider_needs_image,
    )
