"""What every whole policy served over a websocket shares: ``openpi:`` and ``vla-eval:``.

A served policy's name is ``<prefix>ws://host:port`` with an optional ``?key=value`` query that
is the client's own (``?actions=`` an action map); its calls are timed and classified the same
whatever the protocol. :class:`ServedPolicy` holds that common part, so each protocol's client
(:mod:`rapid_env.agents.openpi_policy`, :mod:`rapid_env.agents.vla_eval_policy`) only writes
how it connects, frames one request and reads one reply:

* **Observation**: the task's main camera, its wrist camera when the server reads one (Meta-World
  ``gripperPOV``, LIBERO ``eye_in_hand``), the proprio vector and the instruction, under the
  protocol's own keys. Frames carry the scenario's noise.
* **Actions**: the reply's actions in the task's action space, the first ``chunk_size`` rows; a
  wrong width is ``policy_bad_shape``, NaN ``policy_nonfinite_action`` (data about the served
  policy). ``?actions=<preset or .json path>`` maps native actions through an
  :class:`~rapid_env.agents.hf_adapter.actions.ActionMap` (:mod:`rapid_env.agents.action_maps`)
  and pads the chunk to ``chunk_size`` by repeating its last action.
* **Timing**: the wall-clock round trip and the server's ``server_timing.infer_ms`` (when it
  sends one) go to :attr:`ServedPolicy.last_round_trip`; with ``--policy-timing measured`` the
  transport of :mod:`rapid_env.agents.openpi_transport` turns them into virtual time.
* **Faults**: no server, a closed connection or no reply within the wait are the
  infrastructure's (``remote_error: ServerUnavailable`` / ``DeadlineExceeded``: the episode is
  invalid); the served model's own error is the policy's (``RequestRejected: INTERNAL``); a
  reply that cannot be read is ``CorruptReply``.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

import numpy as np

from rapid_env.agents.cameras import WRIST_CAMERA, suite_of
from rapid_env.agents.hf_adapter.actions import ActionMap, fit_chunk
from rapid_env.policy import PolicyActionFault, PolicyInput, RemotePolicyError

CONNECT_TIMEOUT_S = 5.0
"""The longest wall-clock wait for the connection and the server's greeting."""

REQUEST_TIMEOUT_S = 30.0
"""The longest wall-clock wait for one reply (a large model's first call compiles)."""


def server_url(name: str, prefix: str, form: str) -> str:
    """The ``ws://host:port`` of a served policy's name; ValueError naming ``form``.

    A query (``?actions=...``) is the client's, not the server's: it is not part of the URL.
    """
    url = name[len(prefix):] if name.startswith(prefix) else name
    url = url.partition("?")[0]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port = None
        parts = urlsplit("")
    if parts.scheme not in ("ws", "wss") or not parts.hostname or port is None or port == 0:
        raise ValueError(f"policy {name!r}: malformed URL; expected {form}, e.g. "
                         f"{prefix}ws://127.0.0.1:8000")
    return url


def query_params(name: str, keys: tuple[str, ...], form: str) -> dict[str, str]:
    """The ``?key=value&...`` of a served policy's name; ValueError naming the allowed ``keys``.

    Values are taken verbatim (no percent or ``+`` decoding), so a file path reads as written.
    """
    query = name.partition("?")[2]
    params: dict[str, str] = {}
    for item in query.split("&") if query else ():
        key, eq, value = item.partition("=")
        if key not in keys:
            raise ValueError(f"policy {name!r}: unknown query parameter {key!r}; allowed: "
                             f"{', '.join(keys)}")
        if not eq or not value or key in params:
            example = "libero7-to-metaworld" if key == "actions" else "<value>"
            raise ValueError(f"policy {name!r}: {key}= must be given once with a value, e.g. "
                             f"{form}?{key}={example}")
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


def classify(exc: BaseException, rejected: bool) -> RemotePolicyError:
    """The record's ``remote_error`` for a failed call (module docstring: whose fault it is).

    Args:
        exc: what the call raised.
        rejected: True when ``exc`` carries the served model's own error (its text, whose last
            non-empty line is kept: a traceback's last line names the exception).
    """
    from websockets.exceptions import WebSocketException

    text = str(exc).strip()
    if rejected:
        lines = [line for line in text.splitlines() if line.strip()]
        return RemotePolicyError("RequestRejected", "INTERNAL", lines[-1] if lines else "")
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, TimeoutError):
        return RemotePolicyError("DeadlineExceeded", "DEADLINE_EXCEEDED", detail)
    if isinstance(exc, OSError | WebSocketException):
        return RemotePolicyError("ServerUnavailable", "UNAVAILABLE", detail)
    return RemotePolicyError("CorruptReply", "INVALID_REPLY", detail)


class ServedPolicy:
    """A whole policy on a server, one call per request (module docstring).

    Connects when built, so a sweep whose server is not there fails before its first episode.
    A subclass names its protocol (the class variables) and writes :meth:`_connect`,
    :meth:`_request`, :meth:`remote_error` and the wire sizes the measured transport counts.

    Args:
        name: ``<prefix>ws://host:port``, optionally ``?actions=<preset or .json path>`` (and
            the protocol's other :attr:`query_keys`).
        task: the task it will drive (its suite picks the wrist camera and the action map's
            target).
        chunk_size: rows kept from each reply.
        timeout_s: the longest wait for one reply, wall clock.

    Raises:
        ValueError: a malformed URL or query, a bad action map, or no server reachable there.
    """

    prefix: ClassVar[str]
    """The registry prefix, ``openpi:``."""
    form: ClassVar[str]
    """How errors spell the name, ``openpi:ws://<host>:<port>``."""
    protocol: ClassVar[str]
    """The protocol's name in errors, ``openpi``."""
    query_keys: ClassVar[tuple[str, ...]] = ("actions",)
    """The query parameters a name may carry."""

    needs_image = True

    def __init__(self, name: str, task: str, chunk_size: int = 8,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.url = server_url(name, self.prefix, self.form)
        self.name = name
        self.task = task
        self.chunk_size = chunk_size
        self.timeout_s = timeout_s
        self.params = query_params(name, self.query_keys, self.form)
        self.suite = suite_of(task)
        self.cameras: tuple[str, ...] = (WRIST_CAMERA[self.suite],)
        self.action_map: ActionMap | None = None
        actions = self.params.get("actions")
        if actions is not None:  # checked before connecting: a bad map needs no server to see
            from rapid_env.agents.action_maps import load_action_map

            try:
                self.action_map = load_action_map(actions, self.suite)
            except ValueError as exc:
                raise ValueError(f"policy {name!r}: {exc}") from None
        self.last_round_trip: tuple[float, float | None] | None = None
        self.last_reply: dict[str, Any] | None = None  # the last call's reply map, as received
        self._client: Any = None
        try:
            self._client = self._connect()
        except RemotePolicyError as exc:
            raise ValueError(f"policy {name!r}: no {self.protocol} server reachable at "
                             f"{self.url} ({exc})") from None

    # -------------------------------------------------------------- the protocol's part
    def _connect(self) -> Any:
        """A new connection, greeted; RemotePolicyError when there is no server."""
        raise NotImplementedError

    def _prepare(self, inp: PolicyInput) -> None:
        """What the protocol sends before a request, outside its timing (nothing by default)."""

    def _request(self, inp: PolicyInput) -> dict[str, Any]:
        """One observation out, the reply map in (any exception: :meth:`remote_error`)."""
        raise NotImplementedError

    def remote_error(self, exc: BaseException) -> RemotePolicyError:
        """The ``remote_error`` of a failed call, by whose fault ``exc`` is."""
        return classify(exc, rejected=False)

    def _keeps_connection(self, exc: BaseException) -> bool:
        """Whether the connection is still usable after ``exc`` (not by default)."""
        return False

    def _drop(self) -> None:
        """Close the connection as it is; the next :meth:`act` connects again."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def wire_bytes_up(self, inp: PolicyInput) -> int:
        """Bytes of the request for ``inp`` as the wire frames it (the measured transport's)."""
        raise NotImplementedError

    def wire_bytes_down(self) -> int:
        """Bytes of the last reply as the wire framed it, 0 when none came."""
        raise NotImplementedError

    # -------------------------------------------------------------- shared
    def reset(self, rng: np.random.Generator) -> None:
        """Nothing to reseed by default (a protocol with a reset overrides it)."""

    def act(self, inp: PolicyInput) -> np.ndarray:
        """One call to the server; its actions as a chunk (RemotePolicyError when it fails)."""
        self.last_round_trip = self.last_reply = None
        if self._client is None:  # the last call failed: connect again
            self._client = self._connect()
        try:
            self._prepare(inp)
            t0 = time.perf_counter()
            reply = self._request(inp)
            rtt_s = time.perf_counter() - t0
        except Exception as exc:
            if not self._keeps_connection(exc):
                self._drop()
            raise self.remote_error(exc) from None
        actions = self._actions_of(reply)
        timing = reply.get("server_timing")
        infer_ms = timing.get("infer_ms") if isinstance(timing, dict) else None
        server_s = float(infer_ms) / 1e3 if isinstance(infer_ms, int | float) else None
        self.last_round_trip, self.last_reply = (rtt_s, server_s), reply
        if self.action_map is not None:
            return mapped_action_space(actions, self.action_map, self.chunk_size)
        return to_action_space(actions, self.chunk_size)

    def _actions_of(self, reply: dict[str, Any]) -> Any:
        """The reply's ``actions``; CorruptReply when it has none."""
        if "actions" not in reply:
            raise RemotePolicyError("CorruptReply", "INVALID_REPLY",
                                    f"the reply has no 'actions' (keys: {sorted(reply)})")
        return reply["actions"]

    def close(self) -> None:
        """Close the connection; the next :meth:`act` connects again."""
        self._drop()
