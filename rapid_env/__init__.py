"""rapid-env: edge-cloud partitioned VLA control inside MuJoCo manipulation tasks, in virtual time.

Importing the package sets ``MUJOCO_GL=egl`` when it is unset, because MuJoCo picks its rendering
backend at import time and this harness runs headless.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"

from rapid_env.envs import RAPID_ENV_ID, register_envs  # noqa: E402

register_envs()

__all__ = ["RAPID_ENV_ID", "register_envs", "__version__"]
