"""Wall-clock timing for a served policy: virtual time follows what was measured.

By default a request to a policy served over openpi's or vla-eval's protocol (``openpi:``,
``vla-eval:``, :class:`~rapid_env.agents.served_policy.ServedPolicy`) is timed by the sweep's cost
profile, so records stay deterministic and the measured round trip is only reported. With
``policy_timing="measured"`` (``rapid-eval --policy-timing measured``) the controller's requests
go through :class:`OpenPITransport` instead, a :class:`~rapid_env.transport.RemotePolicyTransport`
as ``--links remote:`` uses, so a user with a real GPU server sees what their robot would see::

    arrival = t + rtt    (the call as this host saw it: upload, the server's compute, download)

Nothing runs on the edge (``edge_s = 0``: the whole model is on the server), ``cloud_s`` is the
server's own compute (``server_timing.infer_ms`` of the reply, at most the round trip) or, when
the server does not report one, the whole round trip, and ``up_s = down_s`` split the rest evenly
(one clock cannot tell the directions apart). No simulated link and no profile stage is added:
the split the decider chose is recorded but does not change the timing. Bytes are the wire's:
the observation and the reply as the protocol frames them (openpi's :func:`rapid_policy_server.
packb`, vla-eval's message envelope).

**Faults are data, never hangs**, as for ``remote:``: a call that fails (the server unreachable
or gone, no reply within the policy's wait, the served model raising, a corrupt reply) loses the
request: ``arrival`` is None, its ``fault`` is the ``remote_error`` the policy raised, the
controller records it once when the request is sent and gives the request up at its deadline.
A reply of the wrong shape or with NaN arrives at ``t + rtt`` as the policy fault it is.
"""

from __future__ import annotations

import time

from rapid_env.agents.served_policy import ServedPolicy
from rapid_env.link import TransferResult
from rapid_env.policy import Policy, PolicyInput, PolicyResult, run_policy
from rapid_env.record import REMOTE_ERROR
from rapid_env.transport import TimedRequest


def wire_bytes(message: object) -> int:
    """Size of ``message`` framed as openpi's wire frames it (msgpack with numpy arrays)."""
    from rapid_policy_server import packb

    return len(packb(message))


class OpenPITransport:
    """Times each request of a served policy by its measured round trip (module doc).

    Args:
        policy: the served policy (``openpi:`` or ``vla-eval:``, a
            :class:`~rapid_env.agents.served_policy.ServedPolicy`); ValueError for any other,
            which has no round trip to measure.
        action_dim: the task's action width (a reply of another width is a policy fault).
    """

    def __init__(self, policy: Policy, action_dim: int) -> None:
        if not isinstance(policy, ServedPolicy):
            raise ValueError(f"policy {getattr(policy, 'name', policy)!r} is not served over "
                             "openpi's or vla-eval's protocol, so it has no round trip to time; "
                             "allowed: openpi:ws://<host>:<port>, vla-eval:ws://<host>:<port>")
        self.policy = policy
        self.action_dim = action_dim

    def request(
        self, policy: Policy, inp: PolicyInput, split: int, t: float
    ) -> tuple[PolicyResult, TimedRequest]:
        """The chunk and the measured timing of one call, sent at virtual ``t`` (any ``split``)."""
        t0 = time.perf_counter()
        result = run_policy(policy, inp, 1, 1, self.action_dim)  # one whole call, no split
        elapsed = time.perf_counter() - t0
        bytes_up = self.policy.wire_bytes_up(inp)
        fault = result.fault
        if fault is not None and fault.startswith(f"{REMOTE_ERROR}:"):  # lost on the way
            timed_out = "DeadlineExceeded" in fault
            lost = TransferResult(bytes_up, "up", t, None, timed_out=timed_out)
            return PolicyResult(None, None), TimedRequest(
                None, bytes_up=bytes_up, transfers=(lost,), fault=fault)
        # a reply came back (a wrong shape or NaN is the policy's fault, delivered at arrival);
        # a policy that raised before the call has no round trip: the time it took, here
        rtt = result.measured_rtt_s if result.measured_rtt_s is not None else elapsed
        server = result.server_s
        cloud = rtt if server is None else min(max(server, 0.0), rtt)
        net = rtt - cloud
        bytes_down = self.policy.wire_bytes_down()
        up_at, arrival = t + net / 2, t + rtt
        transfers = (
            TransferResult(bytes_up, "up", t, up_at),
            TransferResult(bytes_down, "down", up_at + cloud, arrival),
        )
        return result, TimedRequest(
            arrival, edge_s=0.0, cloud_s=cloud, up_s=net / 2, down_s=net / 2,
            bytes_up=bytes_up, bytes_down=bytes_down, transfers=transfers,
            measured_rtt_s=result.measured_rtt_s, server_s=server,
        )

    def close(self) -> None:
        """Nothing of its own to close: the policy holds the connection (and is closed too)."""
