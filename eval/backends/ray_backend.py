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

Joining never waits without bound: a ``host:port`` or ``ray://host:port`` address is first probed
with a plain TCP connect of at most :data:`CONNECT_TIMEOUT_S` (Ray's own connect retries for
minutes, holding Ctrl-C off meanwhile), and ``ray.init`` itself is given up after
:data:`INIT_TIMEOUT_S` (it runs in a helper thread, so Ctrl-C and SIGTERM act at once). A local
cluster shares this process's fate: Ray starts its head processes with a parent-death signal on
Linux (``kernel_fate_share``), and the agents its raylet starts (which outlive a killed raylet)
are killed by a :class:`~rapid_env.eval.backends.lifeline.Reaper`, so a ``kill -9`` of the sweep
takes the whole cluster with it.

The workers get ``MUJOCO_GL`` and ``WANDB_MODE`` (this process's values, else ``egl`` and
``offline``) through the job's ``runtime_env``; that is one environment for every task of the job,
so workers are shared by all its tasks (a per-task ``runtime_env`` would put its tasks in a worker
pool of their own).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from rapid_env.eval.backends.lifeline import Reaper
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

CONNECT_TIMEOUT_S = 5.0
"""How long the TCP probe of a cluster address waits for the port to answer."""

INIT_TIMEOUT_S = 45.0
"""How long ``ray.init`` may take to join a cluster whose port answered (then: exit 2)."""

T = TypeVar("T")

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


def check_local_cpus(workers: int) -> None:
    """ValueError unless ``workers`` CPUs suit a local cluster: 1 .. this machine's cores.

    Ray accepts any CPU count it is told, and this backend keeps two tasks per CPU in flight, so
    an unbounded count would submit a whole sweep at once on a machine that runs a few.
    """
    cores = os.cpu_count() or 1
    if not 1 <= workers <= cores:
        raise ValueError(
            f"--workers {workers}; allowed: 1..{cores} (this machine's cores) for a local Ray "
            "cluster; give --address to join a larger one"
        )


def probe_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """ValueError unless ``host:port`` (or ``ray://host:port``) accepts a TCP connection.

    ``auto`` is left to Ray (it names no port). Ctrl-C interrupts the probe like any socket call.
    """
    if address == "auto":
        return
    rest = address.removeprefix("ray://")
    host, sep, port_text = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(
            f"--address {address}; allowed: auto, host:port or ray://host:port (port 1..65535)"
        )
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout_s):
            pass
    except OSError as exc:
        why = (f"no answer within {timeout_s:g} s" if isinstance(exc, TimeoutError)
               else exc.strerror or str(exc))
        raise ValueError(f"--address {address}: no Ray cluster answers there ({why})") from None


def _bounded(seconds: float, what: str, call: Callable[[], T]) -> T:
    """``call()`` in a helper thread; ValueError if it has not returned within ``seconds``.

    ``ray.init`` blocks in Ray's C++ client for about 40 s per connection attempt, and Python
    sees Ctrl-C or SIGTERM only when it returns. Here the calling thread waits in short joins,
    so a signal is handled at once and the wait is bounded; a thread left behind is a daemon
    and does not hold the process at exit.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    quiet = _DropOffThreadWarning()
    worker_log = logging.getLogger("ray._private.worker")
    worker_log.addFilter(quiet)
    thread = threading.Thread(target=run, name="ray-init", daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + seconds
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(0.1)
    except BaseException:  # Ctrl-C or SIGTERM while Ray is still connecting
        if thread.is_alive():
            _skip_ray_shutdown_at_exit()
        raise
    finally:
        worker_log.removeFilter(quiet)
    if thread.is_alive():
        raise ValueError(f"{what}: no answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _skip_ray_shutdown_at_exit() -> None:
    """Drop Ray's ``atexit`` shutdown: it would wait for the connection attempt still running.

    Ray registers ``ray.shutdown`` at import. Interrupted while ``ray.init`` is still trying to
    reach a cluster, that handler blocks the exit for as long as the attempt lasts (about 40 s),
    although nothing was joined and there is nothing to shut down.
    """
    import atexit

    import ray

    atexit.unregister(ray.shutdown)


class _DropOffThreadWarning(logging.Filter):
    """Drops Ray's note that a driver started off the main thread sets no SIGTERM handler.

    The process keeps Python's own SIGTERM handling, which ends it at once: what is wanted.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def worker_env() -> dict[str, str]:
    """The environment variables the job's worker processes get."""
    return {name: os.environ.get(name, default) for name, default in WORKER_ENV_DEFAULTS.items()}


class RayBackend:
    """Episode jobs as Ray tasks on a local cluster (``address=None``) or an existing one.

    Args:
        address: ``None`` to start a local cluster, or the address of a running cluster:
            ``auto``, ``host:port``, ``ray://host:port``. Unused when this process is connected
            to Ray already: that connection is used.
        workers: CPUs of a local cluster this backend starts (1 .. this machine's cores);
            ignored for an existing cluster.
        runtime_env: more of the job's ``runtime_env`` (``working_dir``, ``py_modules``, a
            ``worker_process_setup_hook``, ...); its ``env_vars`` are added to
            :func:`worker_env`'s. Not applied to a Ray connection this process already had.
        token_file: ``remote:`` links' token file: its *path* reaches the workers as
            ``RAPID_SERVE_TOKEN_FILE`` (the file must exist at that path on every node that
            runs such episodes; otherwise set ``RAPID_SERVE_TOKEN`` on the nodes themselves).
        imports: ``--import`` modules; every task carries them and its worker imports them
            before building the episode (each must be importable on every node).

    Raises:
        ValueError: Ray is not installed, ``workers`` is out of range, ``address`` is malformed,
            nothing accepts a TCP connection there within :data:`CONNECT_TIMEOUT_S`, or
            ``ray.init`` fails or has not joined within :data:`INIT_TIMEOUT_S` (its thread is
            then left to Ray's own retries; this process should not use Ray afterwards).
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
        if address is None:
            check_local_cpus(workers)
        elif workers < 1:
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
        self._reaper: Reaper | None = None  # a local cluster's: kills its leftovers if we die
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
                self._reaper = Reaper()  # the raylet's agents outlive a killed driver otherwise
            else:
                probe_address(address)
                try:
                    _bounded(INIT_TIMEOUT_S, f"--address {address}: joining a Ray cluster",
                             lambda: ray.init(address=address, log_to_driver=False,
                                              logging_level=logging.WARNING, runtime_env=env))
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

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Run ``fn(item)`` for every item as a Ray task of one CPU; yield ``(index, result)``.

        Results come as the tasks finish; ``fn`` must be importable on the workers (a
        module-level function).

        What a sweep whose unit is not one episode runs on: ``rapid-fleet`` submits one fleet
        per task (its robots share a clock, so a fleet never spreads over workers). A task that
        fails raises its error here.
        """
        ray = self._ray
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(fn)
        todo = list(reversed(list(enumerate(items))))
        running: dict[Any, int] = {}
        while todo or running:
            while todo and len(running) < TASKS_PER_CPU * self.cluster_cpus():
                index, item = todo.pop()
                running[task.remote(item)] = index
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                index = running.pop(ref)
                try:
                    yield index, ray.get(ref)
                except ray.exceptions.RayError as exc:
                    if _interrupted(exc, ray):
                        raise KeyboardInterrupt from exc
                    raise

    def close(self) -> None:
        """Shut down the cluster this backend started, or disconnect from the one it joined."""
        if self._connected and self._ray.is_initialized():
            self._ray.shutdown()  # stops a cluster ray.init started; a joined one keeps running
        self._connected = False
        if self._reaper is not None:
            self._reaper.release()
            self._reaper = None


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
