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
