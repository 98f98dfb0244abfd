"""rapid-serve with ``--max-batch``/``--max-wait-ms``: batched forwards, the batch rule, deadlines.

Servers run in this process on 127.0.0.1 (``make_server``); the clients are threads, each with
its own channel. Nothing here asserts on elapsed time: the batcher's own records (monotonic
seconds) say when each request waited, started and finished, and those are compared with each
other and with the request's deadline.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.cli.serve import main
from rapid_env.serve.batcher import Batcher, Served
from rapid_env.serve.client import DeadlineExceeded, PolicyClient
from rapid_env.serve.config import ServeConfig, UsageError
from rapid_env.serve.model import CloudModel
from tests.serve.conftest import TOKEN
from tests.serve.test_server import edge_blob, local_chunk

K = 3  # a split that leaves the server the tokens block, the transformer and the head


def _records(batcher: Batcher | None, n: int) -> list[Served]:
    """The first ``n`` records; a request thread may return a moment before its record lands."""
    assert batcher is not None
    for _ in range(500):
        records = batcher.served()
        if len(records) >= n:
            return records
        time.sleep(0.01)
    raise AssertionError(f"only {len(batcher.served())} of {n} records")


def test_a_batched_forward_gives_each_request_its_own_chunk(
    cloud: CloudModel, policy: VLAPolicy
) -> None:
    states = [
        cloud.decode(edge_blob(policy, K, seed), K, "none") for seed in range(4)
    ]
    alone = [cloud.forward(s, K) for s in states]
    together = cloud.forward_batch(states, K)
    assert len(together) == 4
    for a, b in zip(alone, together, strict=True):
        assert b.shape == a.shape and b.dtype == a.dtype
        np.testing.assert_allclose(b, a, atol=1e-5)
    assert not np.allclose(together[0], together[1])  # different inputs, different chunks


def test_concurrent_clients_are_served_in_batches_with_the_unbatched_chunks(
    make_server, policy: VLAPolicy
) -> None:
    server = make_server(max_batch=4, max_wait_ms=5000.0, workers=4)
    with PolicyClient(server.address, TOKEN, timeout_s=30.0) as c:  # times the split's batches
        c.wait_ready()
        c.infer("warm", K, "batch", edge_blob(policy, K, 9))
    n = 4
    replies: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    go = threading.Barrier(n)

    def client(seed: int) -> None:
        try:
            with PolicyClient(server.address, TOKEN, timeout_s=30.0) as c:
                c.wait_ready()
                blob = edge_blob(policy, K, seed)
                go.wait()
                replies[seed], _, _ = c.infer(f"r{seed}", K, "batch", blob)
        except BaseException as e:  # the assertion below names it
            errors.append(e)

    threads = [threading.Thread(target=client, args=(s,)) for s in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for seed in range(n):
        np.testing.assert_allclose(replies[seed], local_chunk(policy, K, seed), atol=1e-5)
    records = [r for r in _records(server.batcher, n + 1) if r.request_id != "warm"]
    assert {r.request_id for r in records} == {f"r{s}" for s in range(n)}
    assert all(r.outcome == "ok" for r in records)
    assert max(r.size for r in records) > 1
    for r in records:
        assert r.received <= r.queued <= r.start <= r.finish <= r.deadline + 30
        assert r.split == K
    # the members of one batch share its start, finish and size
    by_start: dict[float, list[Served]] = {}
    for r in records:
        by_start.setdefault(r.start, []).append(r)
    for members in by_start.values():
        assert {(m.finish, m.size) for m in members} == {(members[0].finish, len(members))}


def test_a_request_never_waits_for_its_batch_past_its_deadline(
    make_server, policy: VLAPolicy
) -> None:
    # W is a minute, the client's deadline two seconds: no batch of 4 ever fills.
    server = make_server(max_batch=4, max_wait_ms=60_000.0)
    blob = edge_blob(policy, K)
    with PolicyClient(server.address, TOKEN, timeout_s=30.0) as c:
        c.wait_ready()
        for i in range(2):  # the first (run at once) times this split's batches
            try:
                c.infer(f"d{i}", K, "deadline", blob, deadline_s=2.0)
            except DeadlineExceeded:
                pass
    first, second = _records(server.batcher, 2)
    for r in (first, second):
        assert r.finish < r.queued + 60.0  # answered long before the head's wait ran out
        assert r.outcome in ("ok", "deadline")
        assert r.start < r.deadline and r.size == 1
    # the second, with a service time known, waited for company until its deadline came near
    assert second.start - second.queued > first.start - first.queued


def test_batch_1_through_the_batcher_is_bit_for_bit(make_server, policy: VLAPolicy) -> None:
    server = make_server()
    assert server.batcher is None  # the defaults keep the unbatched path
    with PolicyClient(server.address, TOKEN, timeout_s=30.0) as c:
        c.wait_ready()
        plain, _, _ = c.infer("p", K, "plain", edge_blob(policy, K, 1))
    np.testing.assert_array_equal(plain, local_chunk(policy, K, 1))


def test_batch_1_with_statistics_is_bit_for_bit(cloud: CloudModel, policy: VLAPolicy) -> None:
    from rapid_env.serve.lifecycle import start

    cfg = ServeConfig(token=TOKEN, host="127.0.0.1", port=0, max_seconds=120, grace_s=0.5)
    server = start(cfg, cloud, batch=True)
    try:
        assert server.batcher is not None
        with PolicyClient(server.address, TOKEN, timeout_s=30.0) as c:
            c.wait_ready()
            chunk, _, _ = c.infer("s", K, "stats", edge_blob(policy, K, 2))
        np.testing.assert_array_equal(chunk, local_chunk(policy, K, 2))
        (record,) = _records(server.batcher, 1)
        assert record.size == 1 and record.outcome == "ok"
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--max-batch", "0"], "--max-batch 0; allowed: an int in 1..1024"),
        (["--max-batch", "5000"], "--max-batch 5000; allowed: an int in 1..1024"),
        (["--max-wait-ms", "-1"], "--max-wait-ms -1.0; allowed: a finite number in 0..60000"),
        (["--max-wait-ms", "nan"], "--max-wait-ms nan; allowed"),
    ],
)
def test_bad_batching_flags_exit_2_with_one_line(token_file, capsys, args, needle) -> None:
    assert main(["--token-file", str(token_file), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert err.startswith("rapid-serve: ")


def test_the_config_object_checks_the_batching_numbers() -> None:
    with pytest.raises(UsageError, match="--max-batch 0"):
        ServeConfig(max_batch=0)
    with pytest.raises(UsageError, match="--max-wait-ms -1"):
        ServeConfig(max_wait_ms=-1.0)
    assert not ServeConfig().batching
    assert ServeConfig(max_batch=2).batching and ServeConfig(max_wait_ms=1.0).batching
