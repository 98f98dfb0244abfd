"""Episodes as Ray tasks, on a local Ray cluster or one the sweep joins (``--backend ray``).

Every episode job is one Ray task (:func:`_run_episode`, one CPU). Ray reuses worker processes
between tasks, so each worker keeps an :class:`~rapid_env.eval.execute.EpisodeRunner` (and the
controllers it built) in a module-level cache and sets ``torch.set_num_threads(1)`` once, like a
worker of the local backend. At most two tasks per cluster CPU are in flight (a sweep of 8640
episodes is not submitted at once, and the store receives records while the sweep runs); records
are yielded as :func:`ray.wait` returns them.

Faults:

* a worker process that dies under an episode (killed, by the kernel's OOM killer too, or its
  node lost) is a system failure: Ray runs the task again, up to :data:`MAX_RETRIES` more times,
  so a crash costs a retry of that episode only (the other workers' episodes go on). A worker
  that Ray's own memory monitor kills is retried under Ray's OOM policy instead (without limit by
  default; ``RAY_task_oom_retries`` on the cluster caps it);
* an episode's own faults never raise (:meth:`EpisodeRunner.run` turns them into
  ``episode_error`` records), and Ray does not retry application exceptions
  (``retry_exceptions=False``), so nothing runs twice for them;
* a task that still fails after its retries, or cannot run at all (a cluster node without
  ``rapid_env``), becomes an ``episode_error`` record rather than an exception, so the sweep
  finishes and exits 3.

Where it runs:

* ``address=None``: a fresh local cluster with ``workers`` CPUs (``ray.init(address="local")``:
  never someone else's cluster found in ``/tmp/ray`` or ``RAY_ADDRESS``), shut down by
  :meth:`RayBackend.close`;
* ``"auto"``, ``"host:port"`` or ``"ray://host:port"``: an existing cluster, which
  :meth:`RayBackend.close` only disconnects from. ``workers`` is then ignored: the cluster's CPUs
  set the parallelism (re-read every :data:`RESOURCE_REFRESH_S` seconds, so an autoscaling
  cluster that grows gets more tasks);
* either way, a process already connected to Ray (``ray.init`` called by the caller) uses that
  connection as it is, and :meth:`RayBackend.close` leaves it open.

The workers get ``MUJOCO_GL`` and ``WANDB_MODE`` (this process's values, else ``egl`` and
``offline``) through the job's ``runtime_env``; that is one environment for every task of the job,
so workers are shared by all its tasks (a per-task ``runtime_env`` would put its tasks in a worker
pool of their own).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from rapid_env.eval.execute import EpisodeRunner, error_record
from rapid_env.eval.jobs import EpisodeJob

MAX_RETRIES = 2
"""How often Ray reruns an episode whose worker process died (3 attempts in all, like local)."""

TASKS_PER_CPU = 2
"""Tasks in flight per cluster CPU: one running, one queued so no worker waits for the driver."""

RESOURCE_REFRESH_S = 10.0
"""How often the cluster's CPU count is re-read while a sweep runs."""

WORKER_ENV_DEFAULTS = {"MUJOCO_GL": "egl", "WANDB_MODE": "offline"}
"""Variables every worker process gets (this process's value, else the default)."""

NEEDS_RAY = "--backend ray needs Ray: pip install 'rapid-env[ray]' (or `make install`)"

_RUNNER: EpisodeRunner | None = None
"""The episode runner of this Ray worker process (kept between tasks: controllers are reused)."""


def _run_episode(job: EpisodeJob, imports: tuple[str, ...] = ()) -> dict[str, Any]:
    """The Ray task: one episode's record, run by this worker process's cached runner.

    ``imports`` (``--import`` modules) travel with every task, so a worker of a cluster this
    process did not start imports them too (importing twice is free).
    """
    global _RUNNER
    if _RUNNER is None:
        import torch

        torch.set_num_threads(1)
        _RUNNER = EpisodeRunner(imports=imports)
    else:
        _RUNNER.import_modules(imports)
    return _RUNNER.run(job)


LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's own switch: "0" makes every node address 127.0.0.1 (what it does on a laptop)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError(NEEDS_RAY) from None
    return ray


def worker_env() -> dict[str, str]:
    """The environment variables the job's worker processes get."""
    return {name: os.environ.get(name, default) for name, default in WORKER_ENV_DEFAULTS.items()}


class RayBackend:
    """Episode jobs as Ray tasks on a local cluster (``address=None``) or an existing one.

    Args:
        address: ``None`` to start a local cluster, or the address of a running cluster:
            ``auto``, ``host:port``, ``ray://host:port``. Unused when this process is connected
            to Ray already: that connection is used.
        workers: CPUs of a local cluster this backend starts; ignored for an existing cluster.
        runtime_env: more of the job's ``runtime_env`` (``working_dir``, ``py_modules``, a
            ``worker_process_setup_hook``, ...); its ``env_vars`` are added to
            :func:`worker_env`'s. Not applied to a Ray connection this process already had.
        token_file: ``remote:`` links' token file: its *path* reaches the workers as
            ``RAPID_SERVE_TOKEN_FILE`` (the file must exist at that path on every node that
            runs such episodes; otherwise set ``RAPID_SERVE_TOKEN`` on the nodes themselves).
        imports: ``--import`` modules; every task carries them and its worker imports them
            before building the episode (each must be importable on every node).

    Raises:
        ValueError: Ray is not installed, ``workers < 1``, or no cluster answers at ``address``.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int = 1,
        runtime_env: dict[str, Any] | None = None,
        token_file: str | None = None,
        imports: Sequence[str] = (),
    ) -> None:
        if workers < 1:
            raise ValueError(f"--workers {workers} must be >= 1")
        if address is None:
            # A cluster of this machine alone talks over loopback, never over the machine's
            # network interface: Ray reads this switch once, when it is first imported.
            os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
        ray = _import_ray()
        self._ray = ray
        self.address = address
        self.workers = workers
        self.imports = tuple(imports)
        self._connected = False  # ray.init was this backend's: close() shuts down / disconnects
        env = dict(runtime_env or {})
        env["env_vars"] = {**worker_env(), **env.get("env_vars", {})}
        if token_file is not None:
            from rapid_env.serve.transport import TOKEN_FILE_ENV

            env["env_vars"][TOKEN_FILE_ENV] = token_file
        if not ray.is_initialized():
            if address is None:
                ray.init(
                    address="local", num_cpus=workers, include_dashboard=False,
                    log_to_driver=False, logging_level=logging.ERROR, runtime_env=env,
                )
            else:
                try:
                    ray.init(address=address, log_to_driver=False,
                             logging_level=logging.WARNING, runtime_env=env)
                except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
                    raise ValueError(
                        f"--address {address}: cannot join a Ray cluster there "
                        f"({_first_line(exc)}); a cluster with token authentication needs "
                        "RAY_AUTH_MODE=token and its token here (docs/cluster.md)"
                    ) from None
            self._connected = True
        self._task = ray.remote(
            num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False
        )(_run_episode)
        self._cpus_at = -float("inf")
        self._cpus = 1

    def cluster_cpus(self) -> int:
        """The cluster's CPUs (at least 1), re-read at most every :data:`RESOURCE_REFRESH_S`."""
        now = time.monotonic()
        if now - self._cpus_at >= RESOURCE_REFRESH_S:
            self._cpus = max(1, int(self._ray.cluster_resources().get("CPU", 0)))
            self._cpus_at = now
        return self._cpus

    def run(self, jobs: Sequence[EpisodeJob]) -> Iterator[dict[str, Any]]:
        """Yield records as tasks finish; at most :data:`TASKS_PER_CPU` per cluster CPU in flight.

        Tasks still in flight when the caller stops early (Ctrl-C, an error) are not cancelled
        here: :meth:`close` ends this driver's job, and Ray stops a job's tasks with it
        (cancelling them just before ``ray.shutdown`` trips a check in Ray's core, exit code 1
        instead of 130). On a Ray connection this process already had, they run to the end
        and their records are dropped.
        """
        ray = self._ray
        todo = list(reversed(jobs))  # pop() from the end submits in the serial order
        running: dict[Any, EpisodeJob] = {}
        while todo or running:
            while todo and len(running) < TASKS_PER_CPU * self.cluster_cpus():
                job = todo.pop()
                running[self._task.remote(job, self.imports)] = job
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                job = running.pop(ref)
                try:
                    record = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    if _interrupted(exc, ray):  # Ctrl-C reached the workers too: stop, store none
                        raise KeyboardInterrupt from exc
                    record = _failed(job, exc, ray)
                yield record

    def close(self) -> None:
        """Shut down the cluster this backend started, or disconnect from the one it joined."""
        if self._connected and self._ray.is_initialized():
            self._ray.shutdown()  # stops a cluster ray.init started; a joined one keeps running
        self._connected = False


def _failed(job: EpisodeJob, exc: Exception, ray: Any) -> dict[str, Any]:
    """The ``episode_error`` record of a task that failed after its retries."""
    if isinstance(exc, ray.exceptions.WorkerCrashedError):
        reason = f"worker process died {MAX_RETRIES + 1} times running this episode"
    elif isinstance(exc, ray.exceptions.RayTaskError):  # the task raised (it could not start)
        cause = exc.cause if exc.cause is not None else exc
        reason = f"{type(cause).__name__}: {_first_line(cause)}"
    else:  # out of memory, node died, runtime env setup failed, cancelled, ...
        reason = f"ray {type(exc).__name__}: {_first_line(exc)}"
    return error_record(job, reason)


def _interrupted(exc: Exception, ray: Any) -> bool:
    """Whether the task was stopped on purpose (Ctrl-C in its worker, a cancellation)."""
    if isinstance(exc, ray.exceptions.TaskCancelledError):
        return True
    return isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, KeyboardInterrupt)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""
