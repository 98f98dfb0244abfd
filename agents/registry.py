"""Registries of policies and deciders by name, shared by the CLI, the wrapper and W&B config.

Every decider is registered with its frozen config dataclass, so ``DECIDERS.create`` accepts the
plain name (today's behaviour and ``name``) and ``name(key=value,...)`` specs that override
fields of the name's preset (:mod:`rapid_env.specs`); the built decider's ``name`` is the spec as
given, so records and logs say exactly what ran. Policies take no options (see
``docs/deciders.md``).

Both registries read plugins: installed packages' entry points in the groups
``rapid_env.deciders`` and ``rapid_env.policies`` are loaded the first time a name is missing
(:mod:`rapid_env.plugins`, ``docs/plugging_in_a_policy.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rapid_env.agents.bandwidth_adaptive import BandwidthAdaptiveConfig, BandwidthAdaptiveDecider
from rapid_env.agents.chunk_threshold import ChunkThresholdConfig, ChunkThresholdDecider
from rapid_env.agents.expert import ScriptedExpert
from rapid_env.agents.fixed_split import FixedSplitConfig, FixedSplitDecider
from rapid_env.agents.learned import LearnedConfig, LearnedDecider
from rapid_env.agents.periodic import PeriodicConfig, PeriodicDecider
from rapid_env.agents.rapid import VARIANTS, RapidConfig, RapidDecider
from rapid_env.agents.static_split import StaticSplitConfig, StaticSplitDecider
from rapid_env.agents.vision_entropy import VisionEntropyConfig, VisionEntropyDecider
from rapid_env.agents.vla.shipped import SHIPPED_NAMES, shipped_checkpoint
from rapid_env.decision import Decider
from rapid_env.policy import Policy
from rapid_env.registry import ConfigRegistry, Registry
from rapid_env.tasks.libero_suite import is_libero
from rapid_env.tasks.suite import get_task
from rapid_env.transport import RemotePolicyTransport

DECIDERS: ConfigRegistry[Decider] = ConfigRegistry("agent", plugin_group="rapid_env.deciders")


def _rapid(config: RapidConfig, name: str) -> Decider:
    return RapidDecider(config, name=name)


def _fixed(where: str) -> Callable[..., Decider]:
    def make(config: FixedSplitConfig, name: str) -> Decider:
        return FixedSplitDecider(where, config, name=name)

    return make


def _learned(config: LearnedConfig, name: str) -> Decider:
    return LearnedDecider(None, name=name, config=config)  # the shipped PPO decider


# RAPID and every variant (ablations, our link-aware extension): a spec overrides the preset
for _variant, _preset in VARIANTS.items():
    DECIDERS.register_config(_variant, RapidConfig, _rapid, preset=_preset)
DECIDERS.register_config("edge-only", FixedSplitConfig, _fixed("edge"))
DECIDERS.register_config("cloud-only", FixedSplitConfig, _fixed("cloud"))
DECIDERS.register_config("learned", LearnedConfig, _learned)
DECIDERS.register_config("static-split", StaticSplitConfig, StaticSplitDecider)
DECIDERS.register_config("chunk-threshold", ChunkThresholdConfig, ChunkThresholdDecider)
DECIDERS.register_config("periodic", PeriodicConfig, PeriodicDecider)
DECIDERS.register_config("vision-entropy", VisionEntropyConfig, VisionEntropyDecider)
DECIDERS.register_config("bandwidth-adaptive", BandwidthAdaptiveConfig, BandwidthAdaptiveDecider)
# a folder written by rapid-train-decider --out (a path: never parsed as a spec)
DECIDERS.register_prefix("sb3:", lambda path: LearnedDecider(path, name=f"sb3:{path}"))

POLICIES: Registry[Policy] = Registry("policy", plugin_group="rapid_env.policies")
"""Robot policies by name. Every factory is called as ``factory(task, chunk_size=...,
trust_checkpoint_code=...)``; only checkpoint loaders that can import code use the last one. An
entry registered with the extra ``torch_device=True`` runs a torch model and also takes
``device=`` and ``dtype=`` (:data:`TORCH_DEVICE_EXTRA`).

An entry backed by a checkpoint folder has the extra ``checkpoint``: a callable that takes the
full policy name and returns that folder without loading anything, so the weights' digest of a
results store (:func:`rapid_env.agents.policy_digest.policy_digest`) needs no torch. A plugin
may register one too."""

CHECKPOINT_EXTRA = "checkpoint"
"""The :data:`POLICIES` extra that names an entry's checkpoint folder (see above)."""

TORCH_DEVICE_EXTRA = "torch_device"
"""The :data:`POLICIES` extra that says an entry's factory takes ``device=`` (``cpu``, ``cuda``,
``cuda:N``, ``mps``) and ``dtype=`` (``float32``, ``bfloat16``, ``float16``), as
``rapid-eval --device/--dtype`` pass them. Entries without it (the scripted expert, plugins
written before the flags) are called as before, and refuse a device or dtype other than the
defaults, since they would not honour it."""

MEASURED_TIMING_EXTRA = "measured_transport"
"""The :data:`POLICIES` extra of an entry whose policy runs elsewhere and can be timed on the wall
clock (``rapid-eval --policy-timing measured``): a callable ``(policy, action_dim)`` that returns
the :class:`~rapid_env.transport.RemotePolicyTransport` timing its requests by what was measured.
``openpi:`` and ``vla-eval:`` have it; an entry without it refuses ``measured``."""


def _expert(task: str, chunk_size: int = 8, trust_checkpoint_code: bool = False) -> Policy:
    if is_libero(task):  # LIBERO: the BDDL-goal pick-and-place / knob expert
        from rapid_env.agents.libero_expert import LiberoExpert

        return LiberoExpert(chunk_size)
    return ScriptedExpert(get_task(task).env_key, chunk_size)


POLICIES.register("expert", _expert)


def _shipped(name: str) -> Callable[..., Policy]:
    def make(
        task: str, chunk_size: int = 8, trust_checkpoint_code: bool = False,
        device: str = "cpu", dtype: str = "float32",
    ) -> Policy:
        from rapid_env.agents.vla.policy import VLAPolicy  # torch + transformers: import lazily

        return VLAPolicy.shipped(name, chunk_size, device=device, dtype=dtype)

    return make


# ar-token, flow, chunk-regress (each family's newest Meta-World checkpoint), then
# chunk-regress-libero (trained on libero_object: both cameras, 8-D state, 7-D actions), then
# the pinned versions (chunk-regress@v1, ...), which always load the same weights
for _name in SHIPPED_NAMES:
    POLICIES.register(_name, _shipped(_name), checkpoint=shipped_checkpoint, torch_device=True)


def _checkpoint(
    path: str, task: str, chunk_size: int = 8, trust_checkpoint_code: bool = False,
    device: str = "cpu", dtype: str = "float32",
) -> Policy:
    from rapid_env.agents.vla.policy import VLAPolicy

    return VLAPolicy.load(path, chunk_size=chunk_size, device=device, dtype=dtype)


def _hf(
    path: str, task: str, chunk_size: int = 8, trust_checkpoint_code: bool = False,
    device: str = "cpu", dtype: str = "float32",
) -> Policy:
    from rapid_env.agents.cameras import wrist_camera
    from rapid_env.agents.hf_adapter import HFPolicyAdapter
    from rapid_env.agents.torch_device import check_device

    check_device(device)  # one line naming what is here, before gigabytes of weights load
    # the user's switch (--trust-checkpoint-code), never the checkpoint's: without it a predict
    # named in the folder's rapid_env_adapter.json is refused before any import. The dtype is
    # always given (float32 by default), so the weights run in the precision records name,
    # whatever precision the folder saved them in.
    return HFPolicyAdapter(
        path, chunk_size=chunk_size, device=device, dtype=dtype,
        trust_checkpoint_code=trust_checkpoint_code, wrist_camera=wrist_camera(task),
    )


def _after_prefix(name: str) -> Path:
    """The folder of a ``prefix:<dir>`` policy name (what its loader opens)."""
    return Path(name.partition(":")[2])


# a checkpoint written by rapid-train
POLICIES.register_prefix("ckpt:", _checkpoint, checkpoint=_after_prefix, torch_device=True)
# a user's transformers / LeRobot checkpoint directory
POLICIES.register_prefix("hf:", _hf, checkpoint=_after_prefix, torch_device=True)


def _openpi(
    url: str, task: str, chunk_size: int = 8, trust_checkpoint_code: bool = False
) -> Policy:
    from rapid_env.agents.openpi_policy import PREFIX, OpenPIPolicy

    return OpenPIPolicy(f"{PREFIX}{url}", task, chunk_size=chunk_size)


def _served_transport(policy: Policy, action_dim: int) -> RemotePolicyTransport:
    from rapid_env.agents.openpi_transport import OpenPITransport

    return OpenPITransport(policy, action_dim)


# a whole policy served elsewhere over openpi's websocket protocol (openpi, rapid-policy-server)
POLICIES.register_prefix("openpi:", _openpi, form="openpi:ws://<host>:<port>",
                         measured_transport=_served_transport)


def _vla_eval(
    url: str, task: str, chunk_size: int = 8, trust_checkpoint_code: bool = False
) -> Policy:
    from rapid_env.agents.vla_eval_policy import PREFIX, VLAEvalPolicy

    return VLAEvalPolicy(f"{PREFIX}{url}", task, chunk_size=chunk_size)


# a whole policy behind allenai's vla-evaluation-harness model server (vla-eval's protocol),
# timed on the wall clock by the same transport as openpi: under --policy-timing measured
POLICIES.register_prefix("vla-eval:", _vla_eval, form="vla-eval:ws://<host>:<port>",
                         measured_transport=_served_transport)
