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


def check_workers(name: str, workers: int) -> None:
    """Raise ValueError unless ``workers`` suits the backend (local: 1 .. this machine's cores)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; allowed: {', '.join(BACKENDS)}")
    cores = os.cpu_count() or 1
    if name == "local" and not 1 <= workers <= cores:
        raise ValueError(
            f"--workers {workers}; allowed: 1..{cores} (this machine's cores) with the local "
            "backend; use --backend ray for a cluster"
        )
    if workers < 1:
        raise ValueError(f"--workers {workers} must be >= 1")


def make_backend(
    name: str, workers: int = 1, address: str | None = None, token_file: str | None = None
) -> Backend:
    """The backend ``name`` with ``workers`` processes (local) or on ``address`` (ray).

    ``token_file`` (``--token-file``) is the path of ``rapid-serve``'s bearer token for
    ``remote:`` links; the backends hand the path (never the token) to their episode runners.

    Raises:
        ValueError: an unknown name, or more local workers than this machine has cores.
    """
    check_workers(name, workers)
    if name == "local":
        if address is not None:
            raise ValueError("--address applies to --backend ray only")
        if workers == 1:
            from rapid_env.eval.backends.serial import SerialBackend

            return SerialBackend(token_file)
        from rapid_env.eval.backends.local import LocalBackend

        return LocalBackend(workers, token_file)
    if name == "ray":
        from rapid_env.eval.backends.ray_backend import RayBackend

        return RayBackend(address=address, workers=workers, token_file=token_file)
    raise ValueError(f"unknown backend {name!r}; allowed: {', '.join(BACKENDS)}")
