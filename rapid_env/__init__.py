"""rapid-env: edge-cloud partitioned VLA control inside MuJoCo manipulation tasks, in virtual time.

Importing the package sets ``MUJOCO_GL=egl`` when it is unset, because MuJoCo picks its rendering
backend at import time and this harness runs headless.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
