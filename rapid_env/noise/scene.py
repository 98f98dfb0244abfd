"""In-scene visual disturbances, seeded, with five severities each.

In-scene disturbances change what MuJoCo *renders* without touching the physics: they edit the
``MjvScene`` between ``update_scene`` and ``render`` (lights, the GL camera, extra decor geoms,
colours of the table and floor). The model and data are never modified, so there is nothing to
restore and the scripted expert and the physics see exactly the same world under any disturbance.

* ``lighting``: the scene's lights dimmed or brightened (factor ``1 +- 0.15 * severity``), tinted,
  their direction turned (up to ``8 * severity`` degrees), and from severity 3 flickering per frame.
* ``camera_shake``: the rendering camera's pose jittered every frame (position sigma
  ``2 mm * severity``, angle sigma ``0.3 deg * severity``).
* ``occlusion``: ``severity`` flat grey boxes floating between the camera and the workspace, each
  ``2 + severity`` cm across; from severity 3 they drift from frame to frame.
* ``distractor``: ``2 * severity`` coloured blocks, spheres and cylinders standing on the table, at
  least 8 cm from the task's object and goal positions.
* ``background``: the table and floor recoloured towards a random colour by ``0.18 * severity``.

All draws come from the episode's noise stream (``reset(task, rng)`` and each frame), so the same
seed gives the same disturbance and the task layout is untouched. Camera sensor faults, which act
on the delivered frame rather than the scene, are in :mod:`rapid_env.noise.sensor`.

A disturbance reads the task only through the :class:`~rapid_env.task.Task` protocol's scene
access (the camera's position, the points decor must keep clear of, the background geoms), never
a simulator's private fields. The scene edits themselves are MuJoCo's (they run inside a MuJoCo
task's render hook), so MuJoCo is imported where a scene is edited, not when this module is: the
control loop imports the noise package, and a task suite without MuJoCo must be able to run it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import mujoco

    from rapid_env.task import Task

SCENE_NAMES = ("lighting", "camera_shake", "occlusion", "distractor", "background")
DISTRACTOR_SHAPES = ("box", "sphere", "cylinder")
"""The distractors' shapes, drawn by index (MuJoCo's geom types ``mjGEOM_<SHAPE>``)."""


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation of ``v`` about unit ``axis`` by ``angle`` radians."""
    axis = axis / (np.linalg.norm(axis) + 1e-12)
    return (
        v * np.cos(angle)
        + np.cross(axis, v) * np.sin(angle)
        + axis * np.dot(axis, v) * (1 - np.cos(angle))
    )


def _add_geom(scene: mujoco.MjvScene, shape: str, size: np.ndarray, pos: np.ndarray,
              rgba: np.ndarray) -> None:
    """Append a decor geom (``box``, ``sphere``, ``cylinder``): visual only, not in the model."""
    import mujoco

    if scene.ngeom >= scene.maxgeom:
        return
    gtype = getattr(mujoco.mjtGeom, f"mjGEOM_{shape.upper()}")
    mujoco.mjv_initGeom(scene.geoms[scene.ngeom], gtype, size.astype(np.float64),
                        pos.astype(np.float64), np.eye(3).flatten(), rgba.astype(np.float32))
    scene.ngeom += 1


@dataclass
class SceneDisturbance:
    """Base: one named disturbance at one severity; ``reset`` per episode, ``apply`` per frame."""

    name: str
    severity: int
    state: dict[str, Any] = field(default_factory=dict)

    def reset(self, task: Task, rng: np.random.Generator) -> None:
        """Draw the episode's parameters."""

    def apply(self, scene: mujoco.MjvScene, rng: np.random.Generator) -> None:
        """Edit the scene before it is rendered."""


class Lighting(SceneDisturbance):
    """Intensity, colour, direction and (severity >= 3) flicker of the scene lights."""

    def reset(self, task: Task, rng: np.random.Generator) -> None:
        """Draw one dim/bright factor, tint and turn for the episode."""
        s = self.severity
        sign = rng.choice([-1.0, 1.0])
        self.state = {
            "factor": max(0.05, 1.0 + sign * 0.15 * s),
            "tint": 1.0 - rng.uniform(0.0, 0.08 * s, 3),
            "axis": rng.normal(size=3),
            "angle": np.deg2rad(rng.uniform(0.5, 1.0) * 8 * s),
        }

    def apply(self, scene: mujoco.MjvScene, rng: np.random.Generator) -> None:
        """Scale, tint and turn every light."""
        st = self.state
        flicker = 1.0 + (rng.normal(0.0, 0.05 * self.severity) if self.severity >= 3 else 0.0)
        gain = st["factor"] * max(0.0, flicker) * st["tint"]
        for i in range(scene.nlight):
            light = scene.lights[i]
            for attr in ("diffuse", "ambient", "specular"):
                setattr(light, attr, np.clip(np.asarray(getattr(light, attr)) * gain, 0, 1))
            light.dir = _rotate(np.asarray(light.dir, dtype=np.float64), st["axis"], st["angle"])


class CameraShake(SceneDisturbance):
    """Per-frame jitter of the rendering camera's position and viewing direction."""

    def apply(self, scene: mujoco.MjvScene, rng: np.random.Generator) -> None:
        """Move and turn both GL eyes by the same random amount."""
        s = self.severity
        dpos = rng.normal(0.0, 0.002 * s, 3)
        axis = rng.normal(size=3)
        angle = np.deg2rad(rng.normal(0.0, 0.3 * s))
        for cam in scene.camera:
            cam.pos = np.asarray(cam.pos, dtype=np.float64) + dpos
            cam.forward = _rotate(np.asarray(cam.forward, dtype=np.float64), axis, angle)
            cam.up = _rotate(np.asarray(cam.up, dtype=np.float64), axis, angle)


class Occlusion(SceneDisturbance):
    """Grey boxes between the camera and the workspace; drifting from severity 3."""

    def reset(self, task: Task, rng: np.random.Generator) -> None:
        """Place ``severity`` boxes along rays from the camera to the table."""
        cam = np.asarray(task.scene.camera_position(), dtype=np.float64)
        boxes = []
        for _ in range(self.severity):
            target = np.array([rng.uniform(-0.3, 0.3), rng.uniform(0.45, 0.85), 0.05])
            boxes.append(cam + rng.uniform(0.3, 0.6) * (target - cam))
        self.state = {"boxes": boxes, "half": 0.01 * (2 + self.severity) / 2}

    def apply(self, scene: mujoco.MjvScene, rng: np.random.Generator) -> None:
        """Add the boxes (after a small drift when moving)."""
        half = self.state["half"]
        for i, p in enumerate(self.state["boxes"]):
            if self.severity >= 3:
                self.state["boxes"][i] = p = p + rng.normal(0.0, 0.003, 3)
            _add_geom(scene, "box", np.array([half, half, half / 4]), p,
                      np.array([0.45, 0.45, 0.45, 1.0]))


class Distractor(SceneDisturbance):
    """Coloured objects on the table, away from the task's object and goal."""

    def reset(self, task: Task, rng: np.random.Generator) -> None:
        """Draw ``2 * severity`` objects at least 8 cm from task-relevant points."""
        points = np.asarray(task.scene.keep_out_points(), dtype=np.float64).reshape(-1, 3)
        keep_out = [p[:2] for p in points]
        items: list[tuple[str, float, np.ndarray, np.ndarray]] = []
        for _ in range(50 * self.severity):
            if len(items) >= 2 * self.severity:
                break
            xy = np.array([rng.uniform(-0.4, 0.4), rng.uniform(0.4, 0.9)])
            if min(np.linalg.norm(xy - k) for k in keep_out) < 0.08:
                continue
            r = rng.uniform(0.012, 0.025)
            shape = DISTRACTOR_SHAPES[int(rng.integers(0, 3))]
            items.append((shape, r, np.array([xy[0], xy[1], r]),
                          np.append(rng.uniform(0.1, 1.0, 3), 1.0)))
        self.state = {"items": items}

    def apply(self, scene: mujoco.MjvScene, rng: np.random.Generator) -> None:
        """Add the objects."""
        for kind, r, pos, rgba in self.state["items"]:
            _add_geom(scene, kind, np.array([r, r, r]), pos, rgba)


class Background(SceneDisturbance):
    """Table and floor colours pulled towards a random colour."""

    def reset(self, task: Task, rng: np.random.Generator) -> None:
        """Pick the colour and find the table and floor geoms."""
        ids = task.scene.background_geoms()
        self.state = {"ids": ids, "colour": rng.uniform(0.0, 1.0, 3),
                      "mix": min(1.0, 0.18 * self.severity)}

    def apply(self, scene: mujoco.MjvScene, rng: np.random.Generator) -> None:
        """Recolour the matching scene geoms."""
        import mujoco

        ids, colour, mix = self.state["ids"], self.state["colour"], self.state["mix"]
        for i in range(scene.ngeom):
            g = scene.geoms[i]
            if g.objtype == mujoco.mjtObj.mjOBJ_GEOM and g.objid in ids:
                rgba = np.asarray(g.rgba, dtype=np.float64)
                rgba[:3] = (1 - mix) * rgba[:3] + mix * colour
                g.rgba = rgba.astype(np.float32)


SCENE_CLASSES: dict[str, type[SceneDisturbance]] = {
    "lighting": Lighting,
    "camera_shake": CameraShake,
    "occlusion": Occlusion,
    "distractor": Distractor,
    "background": Background,
}
