"""The policy's camera: the task's rendered frame with the scenario's visual noise, once per tick.

Rendering costs more than a physics tick, so a frame is rendered only when someone reads it (the
policy, or a decider that declares ``needs_image``) and then shared by every reader of that tick.

A task with more cameras (:class:`~rapid_env.task.MultiCameraTask`, e.g. LIBERO's wrist view)
renders the extra ones only for a policy that names them (its ``cameras``). Every corruption
applies to every camera: pixel noise draws from the same noise stream after the main frame, and
a sensor fault freezes each camera on its own last frame (the faults' intervals are shared, as
one camera bus failing would).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from rapid_env.noise import ImageNoise
from rapid_env.policy import Policy, PolicyInput
from rapid_env.task import MultiCameraTask, Task


class NoisyCamera:
    """Renders the task's camera through an :class:`ImageNoise`, at most once per tick."""

    def __init__(self, task: Task, noise: ImageNoise) -> None:
        self.task = task
        self.noise = noise
        self._rng = np.random.default_rng(0)
        self._frame: np.ndarray | None = None
        self._extra: dict[str, np.ndarray] = {}
        self._extra_last: dict[str, list[np.ndarray | None]] = {}

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode: the noise draws from ``rng`` (the episode's noise stream)."""
        self.noise.reset(self.task, rng)
        self._rng = rng
        self._frame = None
        self._extra = {}
        self._extra_last = {}

    def next_tick(self) -> None:
        """The scene moved: the cached frames are stale."""
        self._frame = None
        self._extra = {}

    def frame(self) -> np.ndarray:
        """This tick's noisy frame, rendered on first read."""
        if self._frame is None:
            self._frame = self.noise(self.task.render_image(), self._rng)
        return self._frame

    def extra_frame(self, name: str) -> np.ndarray:
        """This tick's noisy frame of the task's camera ``name`` (rendered on first read).

        The main frame is read first, so the noise stream's order (main camera, then the others
        in the order asked) does not depend on who reads first. Sensor faults run on a
        per-camera copy of their last frame.
        """
        main = self.frame()
        task = self.task
        names = task.camera_names if isinstance(task, MultiCameraTask) else ()
        if names and name == names[0]:
            return main
        if name not in self._extra:
            if not isinstance(task, MultiCameraTask):
                raise ValueError(
                    f"camera {name!r}: this task has one camera; allowed: a policy without "
                    "extra cameras"
                )
            self._extra[name] = self._noisy(name, task.render_camera(name))
        return self._extra[name]

    def _noisy(self, name: str, image: np.ndarray) -> np.ndarray:
        """``image`` through the noise, with the sensor faults' last frame kept per camera."""
        sensors = list(getattr(self.noise, "sensors", ()))
        if not sensors:
            return self.noise(image, self._rng)
        mine = self._extra_last.setdefault(name, [None] * len(sensors))
        shared = [f.last for f in sensors]
        for f, last in zip(sensors, mine, strict=True):
            f.last = last
        try:
            out = self.noise(image, self._rng)
            mine[:] = [f.last for f in sensors]
        finally:
            for f, last in zip(sensors, shared, strict=True):
                f.last = last
        return out

    def policy_input(self, policy: Policy, peek: bool = False) -> PolicyInput:
        """What ``policy`` is fed now: the frames it reads, proprioception, the instruction.

        ``peek=True`` builds it as :meth:`peek` does, consuming nothing (the oracle's shadow
        plans).
        """
        task = self.task
        image: np.ndarray | None = None
        images: dict[str, np.ndarray] = {}
        if policy.needs_image:
            cameras = tuple(getattr(policy, "cameras", ()) or ())
            if peek and (self._frame is None or any(n not in self._extra for n in cameras)):
                with self._noise_kept():
                    return self.policy_input(policy)
            image = self.frame()
            for name in cameras:
                images[name] = self.extra_frame(name)
        return PolicyInput(image, task.proprio_vector(), task.instruction, task, images)

    def peek(self) -> np.ndarray:
        """This tick's frame, exactly as a reader would get it, without consuming anything.

        :meth:`frame` draws the noise from the episode's noise stream, so reading it on a tick
        where nobody else does would shift every later draw and change the episode. A frame
        already rendered this tick is returned as it is; otherwise it is rendered with the noise
        stream's state (and the noise's own per-frame state: drifting occluders, a frozen
        sensor's last frame) saved before and put back after, and the cache is left empty, so
        the next real read renders the same frame from the same draws. For recordings and
        ``render()``: a render that fails gives a black frame (a recording never ends an episode).
        """
        if self._frame is not None:
            return self._frame
        try:
            with self._noise_kept():
                return self.frame()
        except Exception:  # noqa: BLE001 - a recording must not end the episode
            h, w = self.task.image_hw
            return np.zeros((h, w, 3), dtype=np.uint8)

    @contextmanager
    def _noise_kept(self) -> Iterator[None]:
        """Put the noise stream, the noise's per-frame state and the frame cache back."""
        rng_state = self._rng.bit_generator.state
        saved: list[tuple[object, str, Any]] = []
        for d in getattr(self.noise, "scene", ()):  # scene disturbances: per-frame state (drift)
            saved.append((d, "state", copy.deepcopy(d.state)))
        for f in getattr(self.noise, "sensors", ()):  # sensor faults: the last delivered frame
            saved.append((f, "last", f.last))
        extra_last = copy.deepcopy(self._extra_last)
        frame, extra = self._frame, dict(self._extra)
        try:
            yield
        finally:
            self._rng.bit_generator.state = rng_state
            for obj, name, value in saved:
                setattr(obj, name, value)
            self._frame, self._extra = frame, extra  # what was rendered before stays
            self._extra_last = extra_last
