"""``rapid-eval --policy openpi:ws://...`` against openpi's *own* server (openpi-server 0.1.0).

The other direction of wire compatibility: ``openpi_server.WebsocketPolicyServer``, the server
openpi's ``scripts/serve_policy.py`` runs, serving the shipped ``chunk-regress`` (through the
same :class:`~rapid_env.serve.openpi.OpenPIAdapter` our server uses). Our client must read its
metadata and replies and give the in-process records; a model that raises behind it must be the
policy's fault (openpi sends the traceback as a text frame, then closes with 1011).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from openpi_server import WebsocketPolicyServer

from rapid_env.cli.eval import main
from rapid_env.cli.policy_server import build_adapter
from tests.cli.test_eval_openpi import _records, served_as_in_process

FAST = ["--max-episode-s", "1.0", "--agents", "cloud-only,rapid", "--episodes", "1",
        "--wandb", "disabled", "--quiet"]


def _free_port() -> int:
    with socket.socket() as s:  # openpi's server cannot report the port it bound: pick one
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def openpi_serving(policy: Any, metadata: dict[str, Any]) -> Iterator[str]:
    """openpi's WebsocketPolicyServer on loopback, in a thread; cancelled on exit."""
    port = _free_port()
    server = WebsocketPolicyServer(policy, host="127.0.0.1", port=port, metadata=metadata)
    loop = asyncio.new_event_loop()
    task = loop.create_task(server.run())

    def run() -> None:
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:  # how the test stops it: openpi's server has no stop
            pass
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        for _ in range(200):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                threading.Event().wait(0.05)
        yield f"ws://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=10)


@pytest.mark.slow
def test_openpis_server_gives_the_in_process_records(tmp_path: Path) -> None:
    adapter, meta = build_adapter("chunk-regress", "reach", 8, 0)
    with openpi_serving(adapter, meta) as url:
        code = main(["--tasks", "reach,push", *FAST, "--policy", f"openpi:{url}",
                     "--out", str(tmp_path / "served")])
    assert code == 0
    pairs = served_as_in_process(tmp_path / "served", ["--tasks", "reach,push", *FAST],
                                 tmp_path / "local")
    assert len(pairs) == 4
    for s, _ in pairs:
        assert s["fault"] is None and s["server_ms_mean"] > 0  # openpi's server_timing, read


class Broken:
    """A served model that raises on every call."""

    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("CUDA out of memory (a model's own failure)")


def test_a_model_failing_behind_openpis_server_is_the_policys_fault(tmp_path: Path) -> None:
    with openpi_serving(Broken(), {"policy": "broken"}) as url:
        code = main(["--tasks", "reach", *FAST, "--agents", "cloud-only", "--policy",
                     f"openpi:{url}", "--max-episode-s", "0.3", "--out", str(tmp_path / "b")])
    rec = _records(tmp_path / "b")[0]
    assert code == 0 and rec["invalid"] is None  # the model's fault: a valid, failed episode
    assert "RequestRejected: INTERNAL" in str(rec["fault"]) and "CUDA out of memory" in str(
        rec["fault"])
