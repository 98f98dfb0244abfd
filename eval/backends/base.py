"""The backend seam and the factory that picks one by name."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from rapid_env.eval.jobs import EpisodeJob

BACKENDS = ("local", "ray")
"""``local``: this machine, ``--workers`` processes (1: this process); ``ray``: a Ray cluster."""


class Backend(Protocol):
    """Runs episode jobs and yields their records as they finish (in any order)."""

    name: str

    def run(self, jobs: Sequence[EpisodeJob]) -> Iterator[dict[str, Any]]:
        """Yield one record per job; a job whose worker died is retried, never lost or doubled."""
        ...

    def close(self) -> None:
        """Stop workers and release what the backend holds."""
        ...


def make_backend(name: str, workers: int = 1, address: str | None = None) -> Backend:
    """The backend ``name`` with ``workers`` processes (local) or on ``address`` (ray).

    Raises:
        ValueError: an unknown name, or more local workers than this machine has cores.
    """
    if name == "local":
        cores = os.cpu_count() or 1
        if not 1 <= workers <= cores:
            raise ValueError(
                f"--workers {workers}; allowed: 1..{cores} (this machine's cores) with the local "
                "backend; use --backend ray for a cluster"
            )
        if address is not None:
            raise ValueError("--address applies to --backend ray only")
        if workers == 1:
            from rapid_env.eval.backends.serial import SerialBackend

            return SerialBackend()
        from rapid_env.eval.backends.local import LocalBackend

        return LocalBackend(workers)
    if name == "ray":
        from rapid_env.eval.backends.ray_backend import RayBackend

        return RayBackend(address=address, workers=workers)
    raise ValueError(f"unknown backend {name!r}; allowed: {', '.join(BACKENDS)}")
