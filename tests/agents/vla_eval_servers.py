"""vla-eval's own model server (``vla_eval.model_servers.serve.serve_async``) for the tests.

Real servers on 127.0.0.1, on a port the OS picks, in a thread (an anyio blocking portal), stopped
by the test: :func:`vla_eval_serving`. :class:`Recording` is a ``PredictModelServer`` that keeps
every EPISODE_START / EPISODE_END payload and observation it was sent; :class:`ServedRapidPolicy`
serves one of this project's policies behind it, reading vla-eval's LIBERO keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import numpy as np
from anyio.from_thread import start_blocking_portal
from vla_eval.model_servers.base import SessionContext
from vla_eval.model_servers.predict import PredictModelServer
from vla_eval.model_servers.serve import serve_async
from vla_eval.specs import IMAGE_RGB, LANGUAGE, RAW, DimSpec


class Recording(PredictModelServer):
    """Answers ``{"actions": make(obs)}``; keeps what it was sent; can stop its own server.

    Args:
        make: the chunk (or single action) for an observation; may raise (the model's failure).
        observation_params: what its HELLO reply asks the benchmark to send.
        stop_after: answer this many observations, then stop the whole server (gone mid-run).
    """

    def __init__(self, make: Callable[[dict[str, Any]], Any],
                 observation_params: dict[str, Any] | None = None,
                 stop_after: int | None = None, chunk_size: int | None = None) -> None:
        super().__init__(chunk_size=chunk_size)
        self.make = make
        self.params = dict(observation_params or {})
        self.stop_after = stop_after
        self.stop: Callable[[], None] | None = None  # set by vla_eval_serving
        self.starts: list[dict[str, Any]] = []
        self.ends: list[dict[str, Any]] = []
        self.seen: list[dict[str, Any]] = []
        self.sessions: set[str] = set()

    def get_observation_params(self) -> dict[str, Any]:
        return dict(self.params)

    def get_action_spec(self) -> dict[str, DimSpec]:
        return {"actions": RAW}

    def get_observation_spec(self) -> dict[str, DimSpec]:
        return {"agentview": IMAGE_RGB, "language": LANGUAGE}

    async def on_episode_start(self, config: dict[str, Any], ctx: SessionContext) -> None:
        await super().on_episode_start(config, ctx)
        self.starts.append(config)

    async def on_episode_end(self, result: dict[str, Any], ctx: SessionContext) -> None:
        await super().on_episode_end(result, ctx)
        self.ends.append(result)

    async def on_observation(self, obs: dict[str, Any], ctx: SessionContext) -> None:
        if self.stop_after is not None and len(self.seen) >= self.stop_after:
            assert self.stop is not None
            self.stop()  # cancels serve_async: every connection closes, nothing answers
            return
        await super().on_observation(obs, ctx)

    def predict(self, obs: dict[str, Any], ctx: SessionContext) -> dict[str, Any]:
        self.seen.append(obs)
        self.sessions.add(ctx.session_id)
        return {"actions": self.make(obs)}


class ServedRapidPolicy(Recording):
    """One of this project's policies (an ``OpenPIAdapter``) behind vla-eval's model server.

    It reads the keys vla-eval's LIBERO benchmark sends (``images.agentview``, ``images.wrist``,
    ``states``, ``task_description``) and reseeds the policy from EPISODE_START's ``seed``.
    """

    def __init__(self, adapter: Any, **kw: Any) -> None:
        params = {"send_state": True}
        if adapter.cameras:
            params["send_wrist_image"] = True
        super().__init__(self._infer, observation_params=params, **kw)
        self.adapter = adapter

    async def on_episode_start(self, config: dict[str, Any], ctx: SessionContext) -> None:
        await super().on_episode_start(config, ctx)
        if "seed" in config:
            self.adapter.policy.reset(np.random.default_rng(config["seed"]))

    def _infer(self, obs: dict[str, Any]) -> np.ndarray:
        openpi = {"observation/image": obs["images"]["agentview"],
                  "observation/state": obs["states"], "prompt": obs["task_description"]}
        if "wrist" in obs["images"]:
            openpi["observation/wrist_image"] = obs["images"]["wrist"]
        return np.asarray(self.adapter.infer(openpi)["actions"])


@contextmanager
def vla_eval_serving(model_server: Recording) -> Iterator[str]:
    """``serve_async(model_server)`` on 127.0.0.1 in a thread; its URL; stopped on exit."""

    async def run(*, task_status: Any) -> None:
        with anyio.CancelScope() as scope:
            model_server.stop = scope.cancel
            await serve_async(model_server, "127.0.0.1", 0, task_status=task_status)

    with start_blocking_portal() as portal:
        future, port = portal.start_task(run)
        try:
            yield f"ws://127.0.0.1:{port}"
        finally:
            future.cancel()
