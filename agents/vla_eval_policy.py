"""A whole policy served over vla-eval's websocket protocol: ``vla-eval:ws://host:port``.

allenai's vla-evaluation-harness (``vla-eval``) runs a VLA as a *model server* (its
``ModelServer`` / ``PredictModelServer`` behind ``serve``) that benchmarks drive over a websocket.
:class:`VLAEvalPolicy` is a :class:`~rapid_env.policy.Policy` that talks to such a server as
vla-eval's own benchmark client (``vla_eval.connection.Connection`` with its sync episode runner)
does, in the message framing of :mod:`rapid_env.agents.vla_eval_wire`:

* **HELLO** on connect (``protocol_version`` 1); the server's HELLO reply is kept in
  :attr:`~VLAEvalPolicy.server_info`. Its ``observation_params`` say what to send, as vla-eval's
  orchestrator merges them into the benchmark's parameters: ``send_wrist_image`` adds the wrist
  camera, ``send_state`` the proprio vector (both off unless asked, as in vla-eval's LIBERO
  benchmark). A server that answers with another protocol version, or not in vla-eval's framing
  (an openpi server), is refused when the policy is built, with one line.
* **EPISODE_START** once per episode, just before its first OBSERVATION (where vla-eval's runner
  sends it: after the episode's first observation is taken), with the task metadata vla-eval's
  benchmarks send, ``{"task": {"name": <instruction>, "task_id": <task>, "suite": <suite>},
  "seed": <int>}``. Unlike openpi's protocol this is a real reset: the server's
  ``on_episode_start`` runs (a ``PredictModelServer`` drops its action buffer), and ``seed`` is
  drawn from the episode's policy stream in :meth:`~VLAEvalPolicy.reset`, so a server that seeds
  its sampler from it gives the same episode for the same sweep seed (vla-eval's own servers do
  not read it; it is an extra key they ignore).
* **OBSERVATION -> ACTION** per request, in the keys vla-eval's LIBERO benchmark sends:
  ``images`` ``{"agentview": <main camera>, "wrist": <wrist camera>}``, ``states`` the task's
  proprio vector (Meta-World 4-D, LIBERO 8-D), ``task_description`` the instruction. Images are
  PNG (vla-eval's default, lossless) or, with ``?images=raw``, plain arrays. The reply's
  ``actions`` (or ``action``, as vla-eval's LIBERO benchmark also reads) become the chunk as for
  ``openpi:`` (:mod:`rapid_env.agents.served_policy`: ``?actions=`` maps, widths checked). A
  ``PredictModelServer`` with ``chunk_size`` unset answers the whole chunk; with one set it
  answers one action per observation, a one-row chunk.
* **EPISODE_END**: the :class:`~rapid_env.policy.Policy` protocol has no end-of-episode hook, so
  it is sent just before the next episode's EPISODE_START and when the policy is closed (the end
  of a cell), with ``{"requests": <OBSERVATIONs the episode sent on this connection>}``: the
  policy does not see the episode's outcome, so it sends no metrics.
* **ERROR**: a server whose model raised answers with an ERROR message and keeps the connection;
  that is the model's fault (``remote_error: RequestRejected: INTERNAL: observation_failed:
  ...``), a valid episode. A server that cannot be reached, closes or does not answer within the
  wait is the infrastructure's (``ServerUnavailable`` / ``DeadlineExceeded``: the episode is
  invalid); the next request connects again, greets and sends EPISODE_START again (the server's
  session is per connection), with the same task and seed.

Timing is as for ``openpi:``: the cost profile by default, the measured round trip with
``--policy-timing measured`` (:mod:`rapid_env.agents.openpi_transport`); vla-eval's replies carry
no ``server_timing``, so the whole round trip is the cloud's there (unless a server adds one).
"""

from __future__ import annotations

import time
from typing import Any, cast

import numpy as np

from rapid_env import __version__
from rapid_env.agents.served_policy import (
    CONNECT_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    ServedPolicy,
    classify,
    query_params,
)
from rapid_env.agents.vla_eval_wire import (
    IMAGE_FORMATS,
    PROTOCOL_VERSION,
    ImageFormat,
    pack_message,
    unpack_message,
)
from rapid_env.policy import PolicyInput, RemotePolicyError

PREFIX = "vla-eval:"
FORM = "vla-eval:ws://<host>:<port>"
QUERY_KEYS = ("actions", "images")
"""The query parameters a ``vla-eval:`` name may carry: ``?actions=<map>``, ``?images=png|raw``."""


class ServerRejected(RuntimeError):
    """The server answered with an ERROR message: its model failed (the message is its text)."""


class NotVLAEval(ValueError):
    """The server's greeting is not vla-eval's HELLO, or speaks another protocol version."""


class VLAEvalConnection:
    """One greeted connection to a vla-eval model server, with bounded waits.

    Args:
        url: ``ws://host:port``.
        hello: the HELLO payload to send.
        open_timeout_s: the longest wait for the connection and the server's HELLO reply.

    Raises:
        OSError, TimeoutError, websockets.exceptions.WebSocketException: no server, or no
            greeting in time.
        NotVLAEval: the server greeted in another protocol or version.
    """

    def __init__(self, url: str, hello: dict[str, Any], open_timeout_s: float) -> None:
        from websockets.sync.client import connect

        self._seq = 0
        self.sent_bytes = self.received_bytes = 0  # of the last frame each way
        # as vla-eval's client: no compression, no size limit, no keep-alive pings
        self._ws = connect(url, compression=None, max_size=None, open_timeout=open_timeout_s,
                           close_timeout=1.0, ping_interval=None)
        try:
            self.send("hello", hello)
            try:
                kind, payload, _ = self.recv(open_timeout_s)
            except ValueError as exc:
                raise NotVLAEval(f"the server does not speak vla-eval's protocol ({exc})"
                                 ) from None
            if kind != "hello":
                raise NotVLAEval(f"the server's first message is {kind!r}, not vla-eval's hello")
            version = payload.get("protocol_version")
            if version != PROTOCOL_VERSION:
                raise NotVLAEval(f"the server speaks vla-eval protocol_version {version!r}; "
                                 f"allowed: {PROTOCOL_VERSION}")
        except BaseException:
            self._ws.close()
            raise
        self.server_info: dict[str, Any] = payload

    def send(self, kind: str, payload: dict[str, Any], image_format: ImageFormat = "png") -> int:
        """Send one message; its sequence number (numbered from 1, as vla-eval's client does)."""
        self._seq += 1
        frame = pack_message(kind, payload, self._seq, image_format)
        self.sent_bytes = len(frame)
        self._ws.send(frame)
        return self._seq

    def recv(self, timeout_s: float) -> tuple[str, dict[str, Any], int]:
        """The next message ``(type, payload, seq)``; TimeoutError after ``timeout_s``."""
        frame = self._ws.recv(timeout=timeout_s)
        if isinstance(frame, str):
            raise ValueError(f"a text frame, not a vla-eval message: {frame[:200]!r}")
        self.received_bytes = len(frame)
        return unpack_message(frame)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._ws.close()


class VLAEvalPolicy(ServedPolicy):
    """The policy a vla-eval model server runs, queried once per request (module docstring).

    Connects and greets when built, so a sweep whose server is not there fails before its first
    episode.

    Args:
        name: ``vla-eval:ws://host:port``, optionally ``?actions=<preset or .json path>`` and
            ``?images=png|raw`` (joined by ``&``).
        task: the task it will drive (its suite picks the wrist camera and the action map's
            target; its name is EPISODE_START's ``task_id``).
        chunk_size: rows kept from each reply.
        timeout_s: the longest wait for one reply, wall clock.

    Raises:
        ValueError: a malformed URL or query, a bad action map, no server reachable there, or a
            server that does not speak vla-eval's protocol version 1.
    """

    prefix = PREFIX
    form = FORM
    protocol = "vla-eval"
    query_keys = QUERY_KEYS

    def __init__(self, name: str, task: str, chunk_size: int = 8,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.image_format: ImageFormat = self._image_format(name) or "png"
        self._seed: int | None = None
        self._episode_sent = False  # this episode's EPISODE_START went out on this connection
        self._episode_open = False  # the server has an episode that no EPISODE_END closed
        self._requests = 0  # OBSERVATIONs sent in the open episode
        super().__init__(name, task, chunk_size, timeout_s)
        self.server_info: dict[str, Any] = dict(self._client.server_info)
        params = self.server_info.get("observation_params")
        params = params if isinstance(params, dict) else {}
        self.send_wrist_image = bool(params.get("send_wrist_image", False))
        self.send_state = bool(params.get("send_state", False))
        if not self.send_wrist_image:
            self.cameras = ()  # the loop renders no wrist camera nobody reads

    @staticmethod
    def _image_format(name: str) -> ImageFormat | None:
        """``?images=``'s value, checked before connecting; None when not given."""
        value = query_params(name, QUERY_KEYS, FORM).get("images")
        if value is not None and value not in IMAGE_FORMATS:
            raise ValueError(f"policy {name!r}: images={value!r}; allowed: "
                             f"{', '.join(IMAGE_FORMATS)}")
        return cast(ImageFormat | None, value)

    def _connect(self) -> VLAEvalConnection:
        hello = {"harness_version": f"rapid-env {__version__}",
                 "protocol_version": PROTOCOL_VERSION, "benchmark": f"rapid-env:{self.suite}"}
        try:
            return VLAEvalConnection(self.url, hello, CONNECT_TIMEOUT_S)
        except NotVLAEval as exc:
            raise ValueError(f"policy {self.name!r}: {exc} at {self.url}") from None
        except Exception as exc:  # refused, unknown host, handshake or greeting failed
            raise classify(exc, rejected=False) from None

    def reset(self, rng: np.random.Generator) -> None:
        """A new episode: its seed is drawn from ``rng``; EPISODE_START goes with its first call."""
        self._seed = int(rng.integers(2**31))
        self._episode_sent = False

    def episode_start(self, instruction: str) -> dict[str, Any]:
        """The EPISODE_START payload of an episode with ``instruction`` (module docstring)."""
        payload: dict[str, Any] = {
            "task": {"name": instruction, "task_id": self.task, "suite": self.suite}}
        if self._seed is not None:
            payload["seed"] = self._seed
        return payload

    def observation(self, inp: PolicyInput) -> dict[str, Any]:
        """The OBSERVATION payload of ``inp``: vla-eval's LIBERO keys (module docstring)."""
        images: dict[str, Any] = {"agentview": inp.image}
        if self.send_wrist_image:
            wrist = inp.images.get(self.cameras[0])
            if wrist is not None:
                images["wrist"] = wrist
        obs: dict[str, Any] = {"images": images, "task_description": inp.instruction}
        if self.send_state:
            obs["states"] = np.asarray(inp.proprio)
        return obs

    def _prepare(self, inp: PolicyInput) -> None:
        """Close the last episode and start this one on the server, once per episode."""
        if self._episode_sent:
            return
        if self._episode_open:
            self._client.send("episode_end", {"requests": self._requests})
            self._episode_open = False
        self._client.send("episode_start", self.episode_start(inp.instruction))
        self._episode_sent = self._episode_open = True
        self._requests = 0

    def _request(self, inp: PolicyInput) -> dict[str, Any]:
        """OBSERVATION out; its ACTION (or ERROR) in, matched by ``seq`` within the wait."""
        client: VLAEvalConnection = self._client
        seq = client.send("observation", self.observation(inp), self.image_format)
        self._requests += 1
        deadline = time.monotonic() + self.timeout_s
        earlier_error: str | None = None
        while True:
            kind, payload, reply_seq = client.recv(max(deadline - time.monotonic(), 0.0))
            if kind == "error" and reply_seq < seq and earlier_error is None:
                # EPISODE_START failed on the server (its on_episode_start raised): the model's
                # fault, reported with this request once its own reply is read
                earlier_error = str(payload.get("error", payload))
            if reply_seq != seq or kind not in ("action", "error"):
                continue  # not this request's answer
            if kind == "error":
                raise ServerRejected(str(payload.get("error", payload)))
            if earlier_error is not None:
                raise ServerRejected(earlier_error)
            return payload

    def _actions_of(self, reply: dict[str, Any]) -> Any:
        """The reply's ``actions`` (or ``action``); CorruptReply when it has neither."""
        if "actions" not in reply and "action" in reply:
            return reply["action"]
        return super()._actions_of(reply)

    def remote_error(self, exc: BaseException) -> RemotePolicyError:
        """The served model's ERROR is the policy's fault; the rest by kind (openpi's rules)."""
        return classify(exc, rejected=isinstance(exc, ServerRejected))

    def _keeps_connection(self, exc: BaseException) -> bool:
        """An ERROR reply leaves the connection in step (vla-eval's server keeps it open)."""
        return isinstance(exc, ServerRejected)

    def _drop(self) -> None:
        """Close as it is: the server's session ends, so the episode starts again on the next."""
        self._episode_sent = self._episode_open = False
        super()._drop()

    def wire_bytes_up(self, inp: PolicyInput) -> int:
        """Bytes of the last OBSERVATION frame sent, or of ``inp``'s framed now if none was."""
        client = self._client
        if client is not None and self.last_reply is not None:
            return int(client.sent_bytes)
        return len(pack_message("observation", self.observation(inp), 0, self.image_format))

    def wire_bytes_down(self) -> int:
        """Bytes of the last ACTION frame received, 0 when none came."""
        if self._client is None or self.last_reply is None:
            return 0
        return int(self._client.received_bytes)

    def close(self) -> None:
        """EPISODE_END for an episode still open, then close; the next call connects again."""
        if self._client is not None and self._episode_open:
            try:
                self._client.send("episode_end", {"requests": self._requests})
            except Exception:  # the server is gone: there is nothing to end there
                pass
        self._drop()
