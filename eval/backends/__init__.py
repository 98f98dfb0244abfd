"""Where a sweep's episodes run: in this process, in local worker processes, or on a Ray cluster.

Every backend takes episode jobs (:mod:`rapid_env.eval.jobs`) and yields their records as they
finish, in any order; the results store orders them and keys them, so every backend gives the
records a serial run gives. Each backend lives in its own module and is imported only when asked
for (Ray is an optional dependency).
"""

from __future__ import annotations

from rapid_env.eval.backends.base import BACKENDS, Backend, check_workers, make_backend

__all__ = ["BACKENDS", "Backend", "check_workers", "make_backend"]
