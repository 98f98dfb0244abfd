"""The backend seam and the registry that picks one by name.

Every backend is an entry of :data:`BACKENDS` (a :class:`~rapid_env.registry.Registry`, like
every other named thing): its factory takes ``(workers, address, token_file, imports)`` and its
``check_workers`` extra says which ``--workers`` it accepts, so a new backend is one registration,
not another branch here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from rapid_env.eval.jobs import EpisodeJob
from rapid_env.registry import Registry


class Backend(Protocol):
    """Runs episode jobs and yields their records as they finish (in any order)."""

    name: str

    def run(self, jobs: Sequence[EpisodeJob]) -> Iterator[dict[str, Any]]:
        """Yield one record per job; a job whose worker died is retried, never lost or doubled."""
        ...

    def close(self) -> None:
        """Stop workers and release what the backend holds."""
        ...


BACKENDS: Registry[Backend] = Registry("backend")
"""``local``: this machine, ``--workers`` processes (1: this process); ``ray``: a Ray cluster.

A factory is called as ``factory(workers, address, token_file, imports)``: ``token_file`` is the
path of ``rapid-serve``'s bearer token for ``remote:`` links (the backends hand the path, never
the token, to their episode runners); ``imports`` are the ``--import`` modules every worker
imports before its first episode (they register names: ``docs/plugging_in_a_policy.md``)."""


def _local_workers(workers: int) -> None:
    cores = os.cpu_count() or 1
    if not 1 <= workers <= cores:
        raise ValueError(
            f"--workers {workers}; allowed: 1..{cores} (this machine's cores) with the local "
            "backend; use --backend ray for a cluster"
        )


def _local(
    workers: int, address: str | None, token_file: str | None, imports: tuple[str, ...]
) -> Backend:
    if address is not None:
        raise ValueError("--address applies to --backend ray only")
    if workers == 1:
        from rapid_env.eval.backends.serial import SerialBackend

        return SerialBackend(token_file, imports)
    from rapid_env.eval.backends.local import LocalBackend

    return LocalBackend(workers, token_file, imports)


def _ray(
    workers: int, address: str | None, token_file: str | None, imports: tuple[str, ...]
) -> Backend:
    from rapid_env.eval.backends.ray_backend import RayBackend

    return RayBackend(address=address, workers=workers, token_file=token_file, imports=imports)


BACKENDS.register("local", _local, check_workers=_local_workers)
BACKENDS.register("ray", _ray)


def check_workers(name: str, workers: int) -> None:
    """Raise ValueError unless ``workers`` suits the backend (local: 1 .. this machine's cores)."""
    check: Callable[[int], None] | None = BACKENDS.extra(name, "check_workers")
    if check is not None:
        check(workers)
    if workers < 1:
        raise ValueError(f"--workers {workers} must be >= 1")


def make_backend(
    name: str,
    workers: int = 1,
    address: str | None = None,
    token_file: str | None = None,
    imports: Sequence[str] = (),
) -> Backend:
    """The backend ``name`` with ``workers`` processes (local) or on ``address`` (ray).

    Raises:
        ValueError: an unknown name, or more local workers than this machine has cores.
    """
    check_workers(name, workers)
    return BACKENDS.create(name, workers, address, token_file, tuple(imports))
