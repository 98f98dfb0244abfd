"""``policy_timing="measured"``: an openpi policy's requests timed by their measured round trip.

Real servers (``rapid_policy_server`` on 127.0.0.1, free ports) serving small numpy policies, as
in ``test_openpi_policy``; the timing must be exactly what the call measured, its stages split as
``remote:`` splits them, and every failure of the call a lost request with its fault.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rapid_env.agents.openpi_policy import OpenPIPolicy
from rapid_env.agents.openpi_transport import OpenPITransport, wire_bytes
from rapid_env.agents.registry import MEASURED_TIMING_EXTRA, POLICIES
from rapid_env.record import infrastructure_fault
from rapid_env.transport import RemotePolicyTransport
from tests.agents.test_openpi_policy import INP, chunk, served

T = 3.25
"""The virtual time a request is sent at (any; the timing is relative to it)."""


def _transport(url: str) -> tuple[OpenPIPolicy, OpenPITransport]:
    policy = POLICIES.create(f"openpi:{url}", "reach", chunk_size=8)
    assert isinstance(policy, OpenPIPolicy)
    make = POLICIES.extra(f"openpi:{url}", MEASURED_TIMING_EXTRA)
    transport = make(policy, 4)
    assert isinstance(transport, OpenPITransport)
    return policy, transport


def test_the_arrival_is_the_measured_round_trip_and_the_stages_add_up() -> None:
    with served(chunk()) as server:
        policy, transport = _transport(server.url)
        assert isinstance(transport, RemotePolicyTransport)
        result, timed = transport.request(policy, INP, 5, T)
        reply = policy.last_reply
        policy.close()
    assert result.fault is None and result.chunk is not None and result.chunk.shape == (8, 4)
    rtt, server_s = result.measured_rtt_s, result.server_s
    assert rtt is not None and rtt > 0 and server_s is not None and 0 <= server_s <= rtt
    assert timed.arrival == T + rtt and timed.fault is None
    assert timed.measured_rtt_s == rtt and timed.server_s == server_s
    assert timed.edge_s == 0.0 and timed.measured_edge_s is None  # the whole model is remote
    assert timed.cloud_s == server_s and timed.up_s == timed.down_s == (rtt - server_s) / 2
    assert timed.edge_s + timed.cloud_s + timed.up_s + timed.down_s == pytest.approx(rtt)
    # bytes as openpi's wire frames them: the observation sent, the reply received
    assert reply is not None
    assert timed.bytes_up == wire_bytes(policy.observation(INP)) > INP.image.nbytes
    assert timed.bytes_down == wire_bytes(reply) > 0
    up, down = timed.transfers
    assert (up.direction, up.start, up.nbytes) == ("up", T, timed.bytes_up)
    assert (down.direction, down.arrival, down.nbytes) == ("down", T + rtt, timed.bytes_down)


def test_the_split_does_not_change_what_is_sent() -> None:
    with served(chunk()) as server:
        policy, transport = _transport(server.url)
        results = [transport.request(policy, INP, split, T) for split in (0, 7, 11)]
        policy.close()
    for result, timed in results:
        assert result.fault is None and timed.arrival == T + result.measured_rtt_s
    assert len({timed.bytes_up for _, timed in results}) == 1
    sent = server.policy.seen
    assert len(sent) == 3


@pytest.mark.parametrize(("make", "fault"), [
    (chunk(cols=7), "policy_bad_shape: (8, 7)"),
    (chunk(value=float("nan")), "policy_nonfinite_action"),
])
def test_a_wrong_reply_arrives_after_its_round_trip_as_a_policy_fault(make: Any,
                                                                        fault: str) -> None:
    with served(make) as server:
        policy, transport = _transport(server.url)
        result, timed = transport.request(policy, INP, 0, T)
        policy.close()
    assert result.chunk is None and result.fault == fault and timed.fault is None
    assert result.measured_rtt_s is not None and timed.arrival == T + result.measured_rtt_s


def test_a_server_gone_loses_the_request_with_an_infrastructure_fault() -> None:
    with served(chunk(), max_requests=1) as server:
        policy, transport = _transport(server.url)
        first, _ = transport.request(policy, INP, 0, T)
        assert first.fault is None
        assert server.wait(10.0)  # it stopped itself after its one reply
        gone = transport.request(policy, INP, 0, T)
        refused = transport.request(policy, INP, 0, T)  # connects again: nobody there
        policy.close()
    for result, timed in (gone, refused):
        assert result.chunk is None and result.fault is None  # the fault is the request's
        assert timed.arrival is None and timed.fault is not None
        assert timed.fault.startswith("remote_error: ServerUnavailable: UNAVAILABLE: ")
        assert infrastructure_fault(timed.fault)
        assert timed.measured_rtt_s is None and timed.bytes_up > 0
        (lost,) = timed.transfers
        assert lost.lost and lost.start == T and not lost.timed_out


def test_a_failing_served_model_loses_the_request_as_a_policy_fault() -> None:
    def boom(obs: dict[str, Any]) -> np.ndarray:
        raise RuntimeError("model exploded")

    with served(boom) as server:
        policy, transport = _transport(server.url)
        result, timed = transport.request(policy, INP, 0, T)
        policy.close()
    assert timed.arrival is None
    assert timed.fault == "remote_error: RequestRejected: INTERNAL: RuntimeError: model exploded"
    assert not infrastructure_fault(timed.fault)


def test_a_policy_that_is_not_served_has_no_round_trip_to_time() -> None:
    with pytest.raises(ValueError, match=r"allowed: openpi:ws://<host>:<port>") as err:
        OpenPITransport(POLICIES.create("expert", "reach", chunk_size=8), 4)
    assert "\n" not in str(err.value)
    assert POLICIES.extra("expert", MEASURED_TIMING_EXTRA) is None
