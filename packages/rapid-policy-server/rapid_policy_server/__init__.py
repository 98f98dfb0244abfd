"""Serve any Python robot policy over Physical Intelligence's openpi websocket protocol.

``serve(policy, host, port, metadata=...)`` blocks; :class:`PolicyServer` runs in a thread and
stops on request. A policy object has ``predict(obs) -> actions`` or ``infer(obs) -> dict``; an
observation is openpi's map (``observation/image``, ``observation/wrist_image``,
``observation/state``, ``prompt``). :class:`PolicyClient` is a blocking client with bounded waits.
Needs only numpy, websockets and msgpack.
"""

from rapid_policy_server.client import PolicyClient, ServerError
from rapid_policy_server.server import DEFAULT_HOST, PolicyServer, policy_reply, serve
from rapid_policy_server.wire import packb, unpackb

__all__ = ["DEFAULT_HOST", "PolicyClient", "PolicyServer", "ServerError", "packb", "policy_reply",
           "serve", "unpackb"]
