"""The MT10 task suite: names, Meta-World environment keys, instructions and Gymnasium ids.

A task here is *language-conditioned*: the policy receives an instruction sentence and a camera
image, never object or goal coordinates. The sentences follow the phrasing of the Meta-World paper's
task descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapid_env.registry import Registry

ID_NAMESPACE = "rapid_env"


@dataclass(frozen=True)
class TaskSpec:
    """Static description of one task.

    Attributes:
        name: the short name used on the command line and in records (``reach``).
        env_key: the Meta-World v3 environment key (``reach-v3``).
        instruction: the sentence given to the policy.
    """

    name: str
    env_key: str
    instruction: str

    @property
    def gym_id(self) -> str:
        """The Gymnasium id under which the task is registered (``rapid_env/reach-v3``)."""
        return f"{ID_NAMESPACE}/{self.env_key}"


MT10: tuple[TaskSpec, ...] = (
    TaskSpec("reach", "reach-v3", "reach the red goal marker"),
    TaskSpec("push", "push-v3", "push the puck to the red goal marker"),
    TaskSpec("pick-place", "pick-place-v3", "pick up the puck and place it at the red goal marker"),
    TaskSpec("door-open", "door-open-v3", "open the door by pulling its handle"),
    TaskSpec("drawer-open", "drawer-open-v3", "open the drawer"),
    TaskSpec("drawer-close", "drawer-close-v3", "push the drawer closed"),
    TaskSpec("button-press-topdown", "button-press-topdown-v3", "press the button from the top"),
    TaskSpec("peg-insert-side", "peg-insert-side-v3", "insert the peg into the hole from the side"),
    TaskSpec("window-open", "window-open-v3", "slide the window open"),
    TaskSpec("window-close", "window-close-v3", "slide the window closed"),
)

TASKS: Registry[TaskSpec] = Registry("task", plugin_group="rapid_env.tasks")
"""Tasks by name: MT10, then any a plugin registers (entry-point group ``rapid_env.tasks``)."""
for _spec in MT10:
    TASKS.register(_spec.name, lambda _s=_spec: _s)


def get_task(name: str) -> TaskSpec:
    """Return the spec of task ``name``; an unknown name raises with the allowed names."""
    return TASKS.create(name)


SUITE_NAMES = ("mt10",)
"""Names in ``--tasks`` that stand for a whole suite, besides every LIBERO suite's name."""


def check_task(name: str) -> str:
    """Return ``name`` if it is a task of any suite; ValueError naming the allowed ones.

    Meta-World tasks (and plugins' tasks) are in :data:`TASKS`; LIBERO's (``<suite>/<index>``)
    are checked against the shipped LIBERO table without importing robosuite.
    """
    from rapid_env.tasks.libero_suite import get_libero_task, is_libero

    if is_libero(name):
        get_libero_task(name)
        return name
    return TASKS.check(name)


def expand_tasks(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``--tasks`` as task names: ``mt10`` -> the ten, ``libero_object`` -> its ten tasks."""
    from rapid_env.tasks.libero_suite import is_libero, suite_tasks

    out: list[str] = []
    for name in names:
        if name == "mt10":
            out.extend(t.name for t in MT10)
        elif is_libero(name) and "/" not in name:
            out.extend(suite_tasks(name))
        else:
            out.append(check_task(name))
    return tuple(out)


def suite_episode_s(name: str, control_hz: float) -> float | None:
    """A task's own episode length in seconds (a LIBERO suite's step limit); None for MT10."""
    from rapid_env.tasks.libero_suite import is_libero, suite_ticks

    return suite_ticks(name, control_hz) / control_hz if is_libero(name) else None
