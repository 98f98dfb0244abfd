"""Which camera is each suite's wrist camera, for policies that read the main and the wrist view.

Real VLA checkpoints are trained on two views, a scene camera and a wrist camera (openpi's
``observation/image`` / ``observation/wrist_image``, LeRobot's ``observation.images.<name>``).
The main view is the task's own camera (``PolicyInput.image``); the wrist view is asked for by
name through a policy's ``cameras`` attribute, and that name differs per suite.
"""

from __future__ import annotations

from rapid_env.tasks.libero_suite import is_libero

WRIST_CAMERA = {"metaworld": "gripperPOV", "libero": "eye_in_hand"}
"""The suite's wrist camera, by suite."""

WRIST_WORDS = ("wrist", "hand")
"""A checkpoint's camera key containing one of these is its wrist camera (LeRobot's names:
``observation.images.wrist_image``, ``observation.images.hand`` ...)."""


def suite_of(task: str) -> str:
    """``"libero"`` for a LIBERO task name, else ``"metaworld"``."""
    return "libero" if is_libero(task) else "metaworld"


def wrist_camera(task: str) -> str:
    """The name of ``task``'s wrist camera in ``PolicyInput.images``."""
    return WRIST_CAMERA[suite_of(task)]


def is_wrist_key(key: str) -> bool:
    """Whether a checkpoint's camera key names a wrist camera (:data:`WRIST_WORDS`)."""
    return any(word in key.lower() for word in WRIST_WORDS)
