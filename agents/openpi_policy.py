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

from typing import Any

import numpy as np

from rapid_env.agents.served_policy import (
    CONNECT_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    ServedPolicy,
    classify,
    mapped_action_space,
    to_action_space,
)
from rapid_env.agents.served_policy import query_params as _query_params
from rapid_env.agents.served_policy import server_url as _server_url
from rapid_env.policy import PolicyInput, RemotePolicyError

__all__ = [
    "CONNECT_TIMEOUT_S", "FORM", "PREFIX", "QUERY_KEYS", "REQUEST_TIMEOUT_S", "OpenPIPolicy",
    "mapped_action_space", "query_params", "remote_error", "server_url", "to_action_space",
]

PREFIX = "openpi:"
FORM = "openpi:ws://<host>:<port>"
QUERY_KEYS = ("actions",)
"""The query parameters an ``openpi:`` name may carry (``?actions=...``)."""

INSTALL_HINT = "pip install ./packages/rapid-policy-server (make install does)"


def server_url(name: str) -> str:
    """The ``ws://host:port`` of an ``openpi:`` policy name; ValueError naming the form.

    A query (``?actions=...``) is the client's, not the server's: it is not part of the URL.
    """
    return _server_url(name, PREFIX, FORM)


def query_params(name: str) -> dict[str, str]:
    """The ``?key=value&...`` of an ``openpi:`` policy name; ValueError naming the allowed keys.

    Values are taken verbatim (no percent or ``+`` decoding), so a file path reads as written.
    """
    return _query_params(name, QUERY_KEYS, FORM)


def remote_error(exc: BaseException) -> RemotePolicyError:
    """The record's ``remote_error`` for a failed call (module docstring: whose fault it is)."""
    from rapid_policy_server import ServerError

    # the served model raised: openpi sends its traceback, whose last line names the error
    return classify(exc, rejected=isinstance(exc, ServerError))


class OpenPIPolicy(ServedPolicy):
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

    prefix = PREFIX
    form = FORM
    protocol = "openpi"
    query_keys = QUERY_KEYS

    def __init__(self, name: str, task: str, chunk_size: int = 8,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        super().__init__(name, task, chunk_size, timeout_s)
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

    def _request(self, inp: PolicyInput) -> dict[str, Any]:
        return dict(self._client.infer(self.observation(inp)))

    def remote_error(self, exc: BaseException) -> RemotePolicyError:
        """The ``remote_error`` of a failed call (:func:`remote_error`)."""
        return remote_error(exc)

    def wire_bytes_up(self, inp: PolicyInput) -> int:
        """Bytes of ``inp``'s observation as openpi's wire frames it (msgpack with numpy)."""
        from rapid_policy_server import packb

        return len(packb(self.observation(inp)))

    def wire_bytes_down(self) -> int:
        """Bytes of the last reply as openpi's wire frames it, 0 when none came."""
        from rapid_policy_server import packb

        return len(packb(self.last_reply)) if self.last_reply is not None else 0
