"""The composition module: the one place in the core's folder that wires agents in by name.

The core (the loop, the RAPID env, link, noise, cost, metrics) knows policies and deciders only
through their protocols (:class:`~rapid_env.policy.Policy`, :class:`~rapid_env.decision.Decider`);
the agents layer implements them and registers them by name. Something has to turn a *name* into
an object and hand it to the core: that is this module, and no other module under ``rapid_env/``
may import :mod:`rapid_env.agents` (an import-linter contract in ``pyproject.toml`` enforces it;
see ``docs/architecture.md``).

``gym.make("rapid_env/Rapid-v0", ...)`` calls :func:`make_rapid_env`; the evaluation layer builds
its controllers and deciders with :func:`build_controller` and :func:`build_decider`.

Example:
    >>> import gymnasium as gym, rapid_env
    >>> env = gym.make(  # doctest: +SKIP
    ...     "rapid_env/Rapid-v0", task="push", policy="expert", decider="rapid(high_threshold=6)"
    ... )
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rapid_env.agents.registry import (
    DECIDERS,
    MEASURED_TIMING_EXTRA,
    POLICIES,
    TORCH_DEVICE_EXTRA,
)
from rapid_env.build import assemble_controller, validate_core_names
from rapid_env.config import LATE_FIELDS, EnvConfig
from rapid_env.controller import PartitionedController
from rapid_env.decision import Decider
from rapid_env.link import link_transport
from rapid_env.policy import Policy
from rapid_env.wrapper import RapidEnv, RewardConfig, as_reward_config


def validate_names(cfg: EnvConfig) -> None:
    """Raise ValueError naming the first unknown name in ``cfg`` (policy included)."""
    validate_core_names(cfg)
    POLICIES.check(cfg.policy)


def check_policy_timing(cfg: EnvConfig) -> None:
    """Raise ValueError unless ``cfg.policy_timing`` can be honoured for its policy and link.

    ``measured`` needs a policy that runs elsewhere and registered a transport that times it
    (:data:`~rapid_env.agents.registry.MEASURED_TIMING_EXTRA`: ``openpi:``, ``vla-eval:``), or a
    link that runs over a transport (``remote:<host:port>``), whose requests are measured anyway.
    Any other policy runs in this process: there is no round trip to measure, and silently timing
    it by the profile would mislabel the records.
    """
    if cfg.policy_timing != "measured":
        return
    if POLICIES.extra(cfg.policy, MEASURED_TIMING_EXTRA) is not None:
        return
    if link_transport(cfg.link) is not None:
        return
    raise ValueError(
        f"policy_timing='measured' (--policy-timing measured) with policy {cfg.policy!r}: it "
        "runs in this process, there is no round trip to measure; allowed: a policy served "
        "elsewhere (openpi:ws://<host>:<port>, vla-eval:ws://<host>:<port>) or a "
        "remote:<host:port> link, else policy_timing='profile'"
    )


def build_policy(cfg: EnvConfig) -> Policy:
    """The robot policy ``cfg.policy`` names, for ``cfg.task`` and ``cfg.chunk_size``.

    ``cfg.trust_checkpoint_code`` is the user's own switch (``--trust-checkpoint-code``); a
    checkpoint folder's files can never turn it on. ``cfg.device`` and ``cfg.dtype`` go to the
    entries that run a torch model (registered with ``torch_device=True``); another policy
    refuses any but the defaults, which it would not honour.

    Raises:
        ValueError: an unknown name, an absent device, or a device/dtype the policy cannot take.
    """
    placement = {"device": cfg.device, "dtype": cfg.dtype}
    if POLICIES.extra(cfg.policy, TORCH_DEVICE_EXTRA, False):
        return POLICIES.create(
            cfg.policy, cfg.task, chunk_size=cfg.chunk_size,
            trust_checkpoint_code=cfg.trust_checkpoint_code, **placement,
        )
    asked = [f"{k}={v!r}" for k, v in placement.items() if v != LATE_FIELDS[k]]
    if asked:
        raise ValueError(
            f"policy {cfg.policy!r} runs no torch model it could place, so {', '.join(asked)} "
            "would not be honoured; allowed: device='cpu', dtype='float32' (--device/--dtype "
            "apply to ar-token, flow, chunk-regress, ckpt:<dir>, hf:<dir> and plugins registered "
            "with torch_device=True)"
        )
    return POLICIES.create(
        cfg.policy, cfg.task, chunk_size=cfg.chunk_size,
        trust_checkpoint_code=cfg.trust_checkpoint_code,
    )


def build_decider(spec: str) -> Decider:
    """The decider a spec names: ``rapid``, ``rapid(high_threshold=6)``, ``sb3:<dir>`` ..."""
    return DECIDERS.create(spec)


def build_controller(cfg: EnvConfig, decider_needs_image: bool = False) -> PartitionedController:
    """The control loop with every part ``cfg`` names, its policy included.

    With ``cfg.policy_timing="measured"`` the requests go through the transport the policy's
    registry entry builds (:func:`check_policy_timing`), as a ``remote:`` link's controller does:
    virtual time then follows the measured round trips.
    """
    validate_names(cfg)
    check_policy_timing(cfg)
    policy = build_policy(cfg)
    controller = assemble_controller(cfg, policy, decider_needs_image)
    make = POLICIES.extra(cfg.policy, MEASURED_TIMING_EXTRA)
    if cfg.policy_timing == "measured" and make is not None:
        controller.transport = make(policy, controller.action_dim)
    return controller


def make_rapid_env(
    config: EnvConfig | None = None,
    reward: RewardConfig | Mapping[str, Any] | None = None,
    render_mode: str | None = None,
    decider: str | Decider | None = None,
    **overrides: Any,
) -> RapidEnv:
    """Build the RAPID env from names (the entry point of ``rapid_env/Rapid-v0``).

    Args:
        config: the base configuration (defaults: :class:`EnvConfig`'s).
        reward: reward weights: a :class:`RewardConfig` or a dict of its fields.
        render_mode: ``rgb_array`` or None.
        decider: a decider spec (or a built decider) whose action on each observation goes into
            ``info["decider_action"]``; its ``needs_image`` decides whether frames are rendered.
        **overrides: :class:`EnvConfig` fields, e.g. ``task="push"``, ``link="wifi"``.
    """
    unknown = sorted(set(overrides) - set(EnvConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"unknown keyword(s) {', '.join(unknown)}; allowed: config, reward, render_mode, "
            f"decider, {', '.join(EnvConfig.__dataclass_fields__)}"
        )
    cfg = replace(config or EnvConfig(), **overrides)
    reward = as_reward_config(reward)  # checked before anything is built
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode={render_mode!r}; allowed: None, 'rgb_array'")
    built = build_decider(decider) if isinstance(decider, str) else decider
    needs_image = bool(built.needs_image) if built is not None else False
    controller = build_controller(cfg, decider_needs_image=needs_image)
    return RapidEnv(controller, cfg, reward, render_mode, built)
