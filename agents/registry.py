"""Registries of policies and deciders by name, shared by the CLI, the wrapper and W&B config."""

from __future__ import annotations

from collections.abc import Callable

from rapid_env.agents.bandwidth_adaptive import BandwidthAdaptiveDecider
from rapid_env.agents.chunk_threshold import ChunkThresholdDecider
from rapid_env.agents.expert import ScriptedExpert
from rapid_env.agents.fixed_split import FixedSplitDecider
from rapid_env.agents.learned import LearnedDecider
from rapid_env.agents.periodic import PeriodicDecider
from rapid_env.agents.policy import Policy
from rapid_env.agents.rapid import RapidDecider, make_rapid
from rapid_env.agents.static_split import StaticSplitDecider
from rapid_env.agents.vision_entropy import VisionEntropyDecider
from rapid_env.decision import Decider
from rapid_env.registry import Registry
from rapid_env.tasks.suite import get_task

DECIDERS: Registry[Decider] = Registry("agent")
DECIDERS.register("rapid", RapidDecider)
DECIDERS.register("rapid-acc-only", lambda: make_rapid("rapid-acc-only"))
DECIDERS.register("rapid-torque-only", lambda: make_rapid("rapid-torque-only"))
DECIDERS.register("rapid-fixed-weights", lambda: make_rapid("rapid-fixed-weights"))
DECIDERS.register("rapid-single-threshold", lambda: make_rapid("rapid-single-threshold"))
DECIDERS.register("rapid-no-preempt", lambda: make_rapid("rapid-no-preempt"))
DECIDERS.register("rapid-no-cooldown", lambda: make_rapid("rapid-no-cooldown"))
DECIDERS.register("rapid-link-aware", lambda: make_rapid("rapid-link-aware"))
DECIDERS.register("edge-only", lambda: FixedSplitDecider("edge"))
DECIDERS.register("cloud-only", lambda: FixedSplitDecider("cloud"))
DECIDERS.register("learned", LearnedDecider)  # the shipped PPO decider
# a folder written by rapid-train-decider --out
DECIDERS.register_prefix("sb3:", lambda path: LearnedDecider(path, name=f"sb3:{path}"))
DECIDERS.register("static-split", StaticSplitDecider)
DECIDERS.register("chunk-threshold", ChunkThresholdDecider)
DECIDERS.register("periodic", PeriodicDecider)
DECIDERS.register("vision-entropy", VisionEntropyDecider)
DECIDERS.register("bandwidth-adaptive", BandwidthAdaptiveDecider)

POLICIES: Registry[Policy] = Registry("policy")
POLICIES.register(
    "expert", lambda task, chunk_size=8: ScriptedExpert(get_task(task).env_key, chunk_size)
)


def _shipped(family: str) -> Callable[..., Policy]:
    def make(task: str, chunk_size: int = 8) -> Policy:
        from rapid_env.agents.vla.policy import VLAPolicy  # torch + transformers: import lazily

        return VLAPolicy.shipped(family, chunk_size)

    return make


for _family in ("ar-token", "flow", "chunk-regress"):
    POLICIES.register(_family, _shipped(_family))


def _checkpoint(path: str, task: str, chunk_size: int = 8) -> Policy:
    from rapid_env.agents.vla.policy import VLAPolicy

    return VLAPolicy.load(path, chunk_size=chunk_size)


def _hf(path: str, task: str, chunk_size: int = 8) -> Policy:
    from rapid_env.agents.hf_adapter import HFPolicyAdapter

    return HFPolicyAdapter(path, chunk_size=chunk_size)


POLICIES.register_prefix("ckpt:", _checkpoint)  # a checkpoint written by rapid-train
POLICIES.register_prefix("hf:", _hf)  # a user's transformers / LeRobot checkpoint directory
