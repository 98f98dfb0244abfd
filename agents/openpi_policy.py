"""A whole policy served elsewhere over openpi's websocket protocol: ``openpi:ws://host:port``.

Physical Intelligence's openpi serves VLAs (pi0, pi0-FAST, pi0.5 ...) as a websocket server that
sends its metadata on connect and answers each observation map with ``{"actions": (chunk, dim),
"server_timing": {...}}``; ``rapid-policy-server`` serves this project's policies the same way.
:class:`OpenPIPolicy` is a :class:`~rapid_env.policy.Policy` whose ``act`` is one such call:

* **Observation** (openpi's LIBERO-example keys): ``observation/image`` the task's main camera,
  ``observation/wrist_image`` its wrist camera (Meta-World ``gripperPOV``, LIBERO
  ``eye_in_hand``), ``observation/state`` the task's proprio vector (Meta-World 4-D: hand xyz and
  gripper opening; LIBERO 8-D), ``prompt`` the instruction. Frames carry the scenario's noise.
* **Actions**: the reply's ``actions`` in the task's action space, unchanged: Meta-World 4-D
  (xyz delta, gripper effort), LIBERO 7-D (xyz delta, axis-angle delta, gripper -1 open .. +1
  close), the first ``chunk_size`` rows. Any other width is a ``policy_bad_shape`` fault, NaN a
  ``policy_nonfinite_action`` one: data about the served policy.
* **Action maps**: ``openpi:ws://host:port?actions=<preset or .json path>`` maps a policy's
  native actions to the task's through an :class:`~rapid_env.agents.hf_adapter.actions.ActionMap`
  (:mod:`rapid_env.agents.action_maps`): the first ``chunk_size`` rows are mapped and the chunk
  is padded to ``chunk_size`` by repeating its last action. The map is part of the policy's name,
  so of every record's key. A reply the map cannot take (its width) is ``policy_bad_shape`` with
  the reply's shape, a non-finite one ``policy_nonfinite_action``, as without a map.
* **Timing**: the request is timed in virtual time by the sweep's cost profile like any
  in-process policy (records stay deterministic); the measured wall-clock round trip and the
  server's ``server_timing.infer_ms`` go to ``measured_rtt_ms_mean`` and ``server_ms_mean``
  (:attr:`last_round_trip`). With ``policy_timing="measured"`` virtual time follows the measured
  round trip instead (:mod:`rapid_env.agents.openpi_transport`, which reads :attr:`last_reply`).
* **Faults**: a server that cannot be reached, closes the connection or does not answer within
  :data:`REQUEST_TIMEOUT_S` is the infrastructure's (``remote_error: ServerUnavailable`` /
  ``DeadlineExceeded``: the episode is invalid); a server whose model raised (openpi sends the
  traceback as a text frame) is the policy's (``remote_error: RequestRejected: INTERNAL``).

The protocol has no reset: a served model's own randomness is not reseeded per episode.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from rapid_env.agents.cameras import WRIST_CAMERA, suite_of
from rapid_env.agents.hf_adapter.actions import ActionMap, fit_chunk
from rapid_env.policy import PolicyActionFault, PolicyInput, RemotePolicyError

PREFIX = "openpi:"
FORM = "openpi:ws://<host>:<port>"
QUERY_KEYS = ("actions",)
"""The query parameters an ``openpi:`` name may carry (``?actions=...``)."""

CONNECT_TIMEOUT_S = 5.0
"""The longest wall-clock wait for the connection and the server's metadata."""

REQUEST_TIMEOUT_S = 30.0
"""The longest wall-clock wait for one reply (a large model's first call compiles)."""


INSTALL_HINT = "pip install ./packages/rapid-policy-server (make install does)"


def server_url(name: str) -> str:
    """The ``ws://host:port`` of an ``openpi:`` policy name; ValueError naming the form.

    A query (``?actions=...``) is the client's, not the server's: it is not part of the URL.
    """
    url = name[len(PREFIX):] if name.startswith(PREFIX) else name
    url = url.partition("?")[0]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port = None
        parts = urlsplit("")
    if parts.scheme not in ("ws", "wss") or not parts.hostname or port is None or port == 0:
        raise ValueError(f"policy {name!r}: malformed URL; expected {FORM}, e.g. "
                         "openpi:ws://127.0.0.1:8000")
    return url


def query_params(name: str) -> dict[str, str]:
    """The ``?key=value&...`` of an ``openpi:`` policy name; ValueError naming the allowed keys.

    Values are taken verbatim (no percent or ``+`` decoding), so a file path reads as written.
    """
    query = name.partition("?")[2]
    params: dict[str, str] = {}
    for item in query.split("&") if query else ():
        key, eq, value = item.partition("=")
        if key not in QUERY_KEYS:
            raise ValueError(f"policy {name!r}: unknown query parameter {key!r}; allowed: "
                             f"{', '.join(QUERY_KEYS)}")
        if not eq or not value or key in params:
            raise ValueError(f"policy {name!r}: {key}= must be given once with a value, e.g. "
                             f"{FORM}?{key}=libero7-to-metaworld")
        params[key] = value
    return params


def to_action_space(actions: Any, chunk_size: int) -> np.ndarray:
    """The reply's actions as a chunk: float32, at most ``chunk_size`` rows, widths unchanged.

    A single action (a vector) is a one-row chunk; the width is checked by the loop
    (:func:`~rapid_env.policy.run_policy`), so a wrong one is recorded, not raised.
    """
    chunk = np.array(actions, dtype=np.float32)
    if chunk.ndim == 1:
        chunk = chunk[None]
    return chunk[:chunk_size] if chunk.ndim == 2 else chunk


def mapped_action_space(actions: Any, action_map: ActionMap, chunk_size: int) -> np.ndarray:
    """The reply's native actions through ``action_map``: ``(chunk_size, action_map.width)``.

    The first ``chunk_size`` rows are checked as the loop would check them, but against the
    map: a reply whose width the map cannot take raises a ``policy_bad_shape`` fault naming the
    reply's shape, a non-finite one ``policy_nonfinite_action`` (:class:`PolicyActionFault`), so
    the mapped chunk never hides them (the map may drop a NaN's dim, or clip it away). A reply
    that is not one action or a chunk is handed on unmapped, for the loop to record.
    """
    chunk = np.array(actions, dtype=np.float64)
    if chunk.ndim == 1:
        chunk = chunk[None]
    if chunk.ndim != 2 or chunk.shape[0] < 1:
        return chunk.astype(np.float32)
    chunk = chunk[:chunk_size]
    try:
        action_map.check_width(chunk.shape[1])
    except ValueError:
        raise PolicyActionFault(f"policy_bad_shape: {chunk.shape}") from None
    if not np.all(np.isfinite(chunk)):
        raise PolicyActionFault("policy_nonfinite_action")
    return fit_chunk(action_map(chunk), chunk_size)


def remote_error(exc: BaseException) -> RemotePolicyError:
    """The record's ``remote_error`` for a failed call (module docstring: whose fault it is)."""
    from rapid_policy_server import ServerError
    from websockets.exceptions import WebSocketException

    text = str(exc).strip()
    if isinstance(exc, ServerError):  # the served model raised: the last line of its traceback
        lines = [line for line in text.splitlines() if line.strip()]
        return RemotePolicyError("RequestRejected", "INTERNAL", lines[-1] if lines else "")
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, TimeoutError):
        return RemotePolicyError("DeadlineExceeded", "DEADLINE_EXCEEDED", detail)
    if isinstance(exc, OSError | WebSocketException):
        return RemotePolicyError("ServerUnavailable", "UNAVAILABLE", detail)
    return RemotePolicyError("CorruptReply", "INVALID_REPLY", detail)


class OpenPIPolicy:
    """The policy an openpi server runs, queried once per request (module docstring).

    Connects when built, so a sweep whose server is not there fails before its first episode.

    Args:
        name: ``openpi:ws://host:port``, optionally ``?actions=<preset or .json path>``.
        task: the task it will drive (its suite picks the wrist camera and the action map's
            target).
        chunk_size: rows kept from each reply.
        timeout_s: the longest wait for one reply, wall clock.

    Raises:
        ValueError: a malformed URL or query, a bad action map, no server reachable there, or
            rapid-policy-server missing.
    """

    needs_image = True

    def __init__(self, name: str, task: str, chunk_size: int = 8,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.url = server_url(name)
        self.name = name
        self.chunk_size = chunk_size
        self.timeout_s = timeout_s
        suite = suite_of(task)
        self.cameras: tuple[str, ...] = (WRIST_CAMERA[suite],)
        self.action_map: ActionMap | None = None
        actions = query_params(name).get("actions")
        if actions is not None:  # checked before connecting: a bad map needs no server to see
            from rapid_env.agents.action_maps import load_action_map

            try:
                self.action_map = load_action_map(actions, suite)
            except ValueError as exc:
                raise ValueError(f"policy {name!r}: {exc}") from None
        self.last_round_trip: tuple[float, float | None] | None = None
        self.last_reply: dict[str, Any] | None = None  # the last call's reply map, as received
        try:
            self._client: Any = self._connect()
        except RemotePolicyError as exc:
            raise ValueError(f"policy {name!r}: no openpi server reachable at {self.url} "
                             f"({exc})") from None
        self.metadata: dict[str, Any] = dict(self._client.metadata)

    def _connect(self) -> Any:
        try:
            from rapid_policy_server import PolicyClient
        except ImportError:
            raise ValueError(f"policy {self.name!r} needs the rapid-policy-server package: "
                             f"{INSTALL_HINT}") from None
        try:
            return PolicyClient(self.url, CONNECT_TIMEOUT_S, self.timeout_s)
        except Exception as exc:  # refused, unknown host, handshake or metadata failed
            raise remote_error(exc) from None

    def reset(self, rng: np.random.Generator) -> None:
        """Nothing to reseed: openpi's protocol has no reset (the server's noise is its own)."""

    def observation(self, inp: PolicyInput) -> dict[str, Any]:
        """The openpi observation map of ``inp`` (module docstring)."""
        obs: dict[str, Any] = {
            "observation/image": inp.image,
            "observation/state": np.asarray(inp.proprio),
            "prompt": inp.instruction,
        }
        wrist = inp.images.get(self.cameras[0])
        if wrist is not None:
            obs["observation/wrist_image"] = wrist
        return obs

    def act(self, inp: PolicyInput) -> np.ndarray:
        """One call to the server; its actions as a chunk (RemotePolicyError when it fails)."""
        self.last_round_trip = self.last_reply = None
        obs = self.observation(inp)
        if self._client is None:  # the last call failed: connect again
            self._client = self._connect()
        t0 = time.perf_counter()
        try:
            reply = self._client.infer(obs)
        except Exception as exc:
            self.close()
            raise remote_error(exc) from None
        rtt_s = time.perf_counter() - t0
        if "actions" not in reply:
            raise RemotePolicyError("CorruptReply", "INVALID_REPLY",
                                    f"the reply has no 'actions' (keys: {sorted(reply)})")
        timing = reply.get("server_timing")
        infer_ms = timing.get("infer_ms") if isinstance(timing, dict) else None
        server_s = float(infer_ms) / 1e3 if isinstance(infer_ms, int | float) else None
        self.last_round_trip, self.last_reply = (rtt_s, server_s), reply
        if self.action_map is not None:
            return mapped_action_space(reply["actions"], self.action_map, self.chunk_size)
        return to_action_space(reply["actions"], self.chunk_size)

    def close(self) -> None:
        """Close the connection; the next :meth:`act` connects again."""
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()
