"""Running one episode job in one process: the work every backend does, and its faults.

:class:`EpisodeRunner` builds (and keeps, for the next jobs of the same environment) the
controller a job needs, builds the decider from its spec, runs the episode with the core's
:func:`~rapid_env.episode.run_episode` and returns the record. A fault of the harness itself
(a checkpoint that cannot be read, a simulator that cannot start) becomes a record with
``fault = "episode_error: ..."`` instead of an exception, so one bad cell never loses a sweep;
a policy's own faults are already data inside the episode (:func:`rapid_env.policy.run_policy`).
Only ``KeyboardInterrupt`` (Ctrl-C) passes through: the user asked to stop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rapid_env.compose import build_controller, build_decider
from rapid_env.config import EnvConfig
from rapid_env.controller import PartitionedController
from rapid_env.episode import run_episode
from rapid_env.eval.jobs import KEY_FIELD, EpisodeJob
from rapid_env.link import link_transport
from rapid_env.observer import EpisodeObserver
from rapid_env.record import EPISODE_ERROR, assemble, is_episode_error
from rapid_env.registry import import_plugin_module
from rapid_env.serve import remote_link  # noqa: F401  (registers the remote: link)

__all__ = [
    "EPISODE_ERROR", "EpisodeRunner", "error_record", "is_episode_error",
    "job_identity", "with_oracle",
]


def with_oracle(jobs: Sequence[EpisodeJob], tolerances: Sequence[float]) -> list[EpisodeJob]:
    """``jobs`` with the oracle option set to ``tolerances`` (none: ``jobs`` as they are)."""
    tols = tuple(float(t) for t in tolerances)
    if not tols:
        return list(jobs)
    return [replace(job, oracle=tols) for job in jobs]


def job_identity(job: EpisodeJob) -> dict[str, Any]:
    """The fields that open the job's record: its head (cell, seed, model setup) and its key."""
    return {**job.head(), KEY_FIELD: job.key()}


def error_record(job: EpisodeJob, why: str) -> dict[str, Any]:
    """The record of a job whose episode could not run: ``fault`` is ``episode_error: <why>``."""
    return assemble(job=job_identity(job), error=why)


class EpisodeRunner:
    """Runs jobs one after another, reusing the controllers of recent environments.

    Building a controller loads MuJoCo, a renderer and the policy, which costs more than a short
    episode; every episode resets it from its own seed streams, so a reused controller gives the
    same record as a fresh one (the golden-record test runs through this reuse).

    A job whose link runs over a transport (its registry entry's
    :class:`~rapid_env.link.LinkTransport`, e.g. ``remote:<host:port>``) gets the controller that
    transport builds: for ``remote:``, requests run the policy's cloud half on that
    ``rapid-serve``; its records are then measured on the wall clock, not bit-deterministic.

    Args:
        keep: how many built controllers to keep (least recently used ones are closed).
        token_file: the bearer token's file for ``remote:`` links (None: the file named by
            ``$RAPID_SERVE_TOKEN_FILE``, else ``$RAPID_SERVE_TOKEN``). Only the path is kept;
            the token is read when a remote controller is built and never enters a record.
        imports: modules to import before the first job (``rapid-eval --import``): they
            register the policies, deciders or tasks the jobs name. A worker process builds its
            runner with them, so names registered by a user's module exist there too.
    """

    def __init__(
        self, keep: int = 2, token_file: str | None = None, imports: Sequence[str] = ()
    ) -> None:
        self.keep = keep
        self.token_file = token_file
        self.import_modules(imports)
        self._controllers: OrderedDict[tuple[EnvConfig, bool], PartitionedController] = (
            OrderedDict()
        )

    @staticmethod
    def import_modules(modules: Sequence[str]) -> None:
        """Import each module (once per process) so that the names it registers exist here."""
        for module in modules:
            import_plugin_module(module)

    def run(self, job: EpisodeJob, media_dir: Path | None = None) -> dict[str, Any]:
        """The record of one job: its head, its key and the episode's fields (or the fault).

        With ``media_dir`` (or a job whose ``media_dir`` option is set), the episode is traced
        and its video, series and still are written under that folder
        (:mod:`rapid_env.eval.media`); the record then also has ``media``, their paths relative
        to the folder's parent (``OUT``), or ``media_error`` if writing failed. Every other
        field is the one the episode has without media.

        A job with ``oracle`` tolerances runs the redundancy oracle (:mod:`rapid_env.oracle`) too
        and adds its fields (``redundant_share_<tol>``, ``trigger_precision_<tol>``, ...).
        """
        identity = job_identity(job)
        if media_dir is None and job.media_dir:
            media_dir = Path(job.media_dir)
        trace = None
        oracle = None
        try:
            decider = build_decider(job.agent)
            controller = self._controller(job.config, bool(decider.needs_image))
            if media_dir is not None:
                from rapid_env.trace import EpisodeTrace

                trace = EpisodeTrace(frames=True)
            if job.oracle:
                from functools import partial

                from rapid_env.agents.refill import refill_due
                from rapid_env.oracle import RedundancyOracle

                # the decider's own refill rule: a pipelined refill is not its trigger
                depth = getattr(getattr(decider, "config", None), "max_in_flight", 1)
                due = partial(refill_due, max_in_flight=depth if isinstance(depth, int) else 1)
                oracle = RedundancyOracle(job.oracle, refill_due=due)
            observers: list[EpisodeObserver] = [o for o in (trace, oracle) if o is not None]
            body = run_episode(controller, decider, job.seed, observers=observers)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit from a user's module too: record, go on
            return error_record(job, f"{type(exc).__name__}: {exc}")
        record = assemble(job=identity, episode=body)
        if trace is not None and media_dir is not None:
            record = assemble(job=identity, episode=body, media=_media(trace, record, media_dir))
        return record

    def _controller(self, cfg: EnvConfig, needs_image: bool) -> PartitionedController:
        key = (cfg, needs_image)
        if key in self._controllers:
            self._controllers.move_to_end(key)
            return self._controllers[key]
        while len(self._controllers) >= self.keep:
            _, old = self._controllers.popitem(last=False)
            _close(old)
        transport = link_transport(cfg.link)
        if transport is not None:  # remote:<host:port> and any other transport's link
            self._controllers[key] = transport.controller(cfg, needs_image, self.token_file)
        else:
            self._controllers[key] = build_controller(cfg, needs_image)
        return self._controllers[key]

    def close(self) -> None:
        """Release every kept controller's renderer (and a remote one's connection)."""
        while self._controllers:
            _, c = self._controllers.popitem()
            _close(c)


def _close(controller: PartitionedController) -> None:
    controller.task.close()
    for part in (controller.transport, controller.policy):  # a remote one's connection
        close = getattr(part, "close", None)
        if callable(close):
            close()


def _media(trace: Any, record: dict[str, Any], media_dir: Path) -> dict[str, Any]:
    """Write the episode's media; ``{"media": paths}``, or ``{"media_error": why}``."""
    try:
        from rapid_env.eval.media import MEDIA_FIELD, write_media

        return {MEDIA_FIELD: write_media(trace, record, media_dir)}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a video that cannot be written loses no episode
        return {"media_error": f"{type(exc).__name__}: {exc}"}
