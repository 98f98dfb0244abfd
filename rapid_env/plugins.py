"""Adding policies, deciders and tasks from outside the repository: the public registration API.

Two ways to plug code in (``docs/plugging_in_a_policy.md``):

* **entry points** of an installed package, in the groups :data:`GROUPS` (``rapid_env.policies``,
  ``rapid_env.deciders``, ``rapid_env.tasks``): each names a module (importing it registers) or a
  callable (calling it registers). A group is loaded once per process, the first time its registry
  is asked for a name it does not have, or at once by :func:`load_plugins` (``rapid-eval`` calls it
  at start, so a broken plugin fails in the first second with one line naming it);
* ``rapid-eval --import MODULE``: a module on ``sys.path`` / ``PYTHONPATH`` imported before the
  sweep is planned (:func:`import_modules`), and again in every worker process.

Either way the module calls :func:`register_policy`, :func:`register_decider` or
:func:`register_task` (or the registries themselves: ``POLICIES``, ``DECIDERS``, ``TASKS``).

Example:
    >>> from rapid_env.plugins import register_decider
    >>> from rapid_env.decision import KEEP, DeciderBase
    >>> class Never(DeciderBase):
    ...     name = "never-doc"
    ...     def decide(self, obs):
    ...         return KEEP
    >>> register_decider("never-doc", Never)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rapid_env.agents.registry import DECIDERS, POLICIES
from rapid_env.decision import Decider
from rapid_env.policy import Policy
from rapid_env.registry import (
    PluginError,
    UnknownNameError,
    import_plugin_module,
    load_plugin_group,
)
from rapid_env.tasks.suite import TASKS, TaskSpec

__all__ = [
    "DECIDERS", "GROUPS", "POLICIES", "TASKS", "PluginError", "UnknownNameError",
    "import_modules", "load_plugins", "register_decider", "register_policy", "register_task",
]

GROUPS = ("rapid_env.policies", "rapid_env.deciders", "rapid_env.tasks")
"""The entry-point groups read for plugins (one per registry a plugin may add to)."""

def register_policy(name: str, factory: Callable[..., Policy]) -> None:
    """Register a robot policy under ``name`` (``rapid-eval --policy NAME``).

    Args:
        name: the name users write; must not be taken.
        factory: called as ``factory(task, chunk_size=..., trust_checkpoint_code=...)``, with the
            task's name (``rapid_env.tasks.suite.get_task(task)`` has its Meta-World key and
            instruction); returns a :class:`~rapid_env.policy.Policy`. Accept ``**kwargs`` to
            ignore the keywords you do not use.
    """
    POLICIES.register(name, factory)


def register_decider(
    name: str,
    factory: Callable[..., Decider],
    config: type | None = None,
    preset: object | None = None,
) -> None:
    """Register a partition decider under ``name`` (``rapid-eval --agents NAME``).

    Args:
        name: the name users write; must not be taken.
        factory: without ``config``, called with no arguments; with ``config``, called as
            ``factory(cfg, name=spec)`` where ``cfg`` is the config built from the spec
            (``NAME(key=value,...)`` overrides fields of ``preset``) and ``spec`` the text as given
            (use it as the decider's ``name``, so records say what ran).
        config: a frozen dataclass of the decider's settings (validated in ``__post_init__``).
        preset: the ``config`` instance the plain name stands for (default ``config()``).
    """
    if config is None:
        if preset is not None:
            raise ValueError(f"decider {name!r}: a preset needs a config class")
        DECIDERS.register(name, factory)
    else:
        DECIDERS.register_config(name, config, factory, preset=preset)


def register_task(name: str, env_key: str, instruction: str) -> TaskSpec:
    """Register a Meta-World v3 environment as task ``name`` (``rapid-eval --tasks NAME``).

    Args:
        name: the name users write; must not be taken.
        env_key: a Meta-World v3 environment key, e.g. ``"button-press-v3"``.
        instruction: the sentence the policy receives.
    """
    spec = TaskSpec(name, env_key, instruction)
    TASKS.register(name, lambda: spec)
    return spec


def load_plugins() -> dict[str, list[str]]:
    """Load every plugin group's entry points now (once per process); the names loaded by group.

    Raises:
        PluginError: a plugin failed to import or register; the message names it.
    """
    return {group: load_plugin_group(group) for group in GROUPS}


def import_modules(modules: Iterable[str]) -> None:
    """Import each module (``rapid-eval --import``) so that the names it registers exist.

    Raises:
        PluginError: a module cannot be imported; the message names it and why.
    """
    for module in modules:
        import_plugin_module(module)
