"""Which weights a policy name stands for: the digest of its checkpoint, or None.

A results store records it, because the name alone does not say: ``chunk-regress`` moves to new
weights when a newer version ships, and a ``ckpt:<dir>`` folder can be trained again in place.
The folder comes from the policy registry's ``checkpoint`` extra
(:data:`~rapid_env.agents.registry.CHECKPOINT_EXTRA`), the digest from
:func:`~rapid_env.agents.vla.digest.checkpoint_digest`; neither loads a model or imports torch.
"""

from __future__ import annotations

from rapid_env.agents.registry import CHECKPOINT_EXTRA, POLICIES
from rapid_env.agents.vla.digest import checkpoint_digest
from rapid_env.agents.vla.shipped import VERSIONS


def policy_digest(policy: str) -> str | None:
    """The digest of the weights ``policy`` loads; None for a policy without a checkpoint.

    The scripted experts and plugins that register no ``checkpoint`` extra have none, and so
    does a checkpoint folder without weights or config (its loader names what is missing).

    Raises:
        UnknownNameError: ``policy`` is not a registered name (the message names the allowed
            ones).
        ValueError: a shipped name with an unknown version (``chunk-regress@v9``).
    """
    folder_of = POLICIES.extra(policy, CHECKPOINT_EXTRA)
    if folder_of is None:
        return None
    return checkpoint_digest(folder_of(policy))


def pinned_with_digest(policy: str, digest: str) -> list[str]:
    """The pinned shipped versions of ``policy``'s family (``chunk-regress@v1``) with ``digest``.

    After an upgrade the plain name loads new weights; this names the version that still loads
    the old ones, so a refusal can say exactly what to run. Empty for a name that is no shipped
    family, or when no pinned version has those weights.
    """
    family = policy.partition("@")[0]
    return [f"{family}@{v}" for v in VERSIONS.get(family, ())
            if policy_digest(f"{family}@{v}") == digest]
