"""``rapid-eval --policy openpi:ws://...``: a served policy gives the in-process records.

The shipped ``chunk-regress`` behind ``rapid-policy-server`` (in a thread, on a free local port,
stopped by the test) and the same checkpoint in-process, timed by the same cost profile, must
write the same records but for the policy's name (and what derives from it) and the fields a
real network measures. A server that goes away mid-episode makes the episode invalid (exit 3);
a bad URL is one line and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rapid_policy_server import PolicyServer
from rapid_policy_server.cli import build_server, parser

from rapid_env.cli.eval import main
from rapid_env.record import WALL_CLOCK_FIELDS, infrastructure_fault

FAST = ["--max-episode-s", "1.5", "--agents", "cloud-only,rapid", "--episodes", "1",
        "--wandb", "disabled", "--quiet"]
NAMED = {"policy", "episode_key", "record_digest"}
"""The policy's name and the keys hashed from the record's identity, which holds it."""
SPLIT_BYTES = {"exec_bytes_up"}
"""Bytes the in-process model serialised at its split boundary: a served policy is whole on its
server, so it has none (``bytes_up``, the profile's, is the same for both)."""


SERVED_DIFFERS = {*WALL_CLOCK_FIELDS, *NAMED, *SPLIT_BYTES}
"""What a served policy's record may differ in from the in-process one's."""


def _records(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def served_as_in_process(served_out: Path, flags: list[str], local_out: Path
                         ) -> list[tuple[dict[str, object], dict[str, object]]]:
    """Run the shipped ``chunk-regress`` in-process with ``flags`` into ``local_out``; assert the
    served sweep in ``served_out`` wrote the same records but for :data:`SERVED_DIFFERS`; return
    the (served, in-process) pairs for the caller's own checks."""
    assert main([*flags, "--policy", "chunk-regress", "--out", str(local_out)]) == 0
    served, local = _records(served_out), _records(local_out)
    assert len(served) == len(local) > 0
    for s, loc in zip(served, local, strict=True):
        assert {k: v for k, v in s.items() if k not in SERVED_DIFFERS} == {
            k: v for k, v in loc.items() if k not in SERVED_DIFFERS}
    return list(zip(served, local, strict=True))


def _server(*flags: str) -> PolicyServer:
    server, _ = build_server(parser().parse_args(["--policy", "chunk-regress", "--port", "0",
                                                  *flags]))
    return server


@pytest.mark.slow
def test_served_policy_writes_the_in_process_records(tmp_path: Path) -> None:
    tasks = ["--tasks", "reach,push"]
    with _server().start() as server:
        code = main([*tasks, *FAST, "--policy", f"openpi:{server.url}", "--out",
                     str(tmp_path / "served")])
    assert code == 0
    pairs = served_as_in_process(tmp_path / "served", [*tasks, *FAST], tmp_path / "local")
    assert len(pairs) == 4
    for s, loc in pairs:
        assert s["policy"] == f"openpi:{server.url}" and loc["policy"] == "chunk-regress"
        assert s["inferences"] and s["fault"] is None and s["invalid"] is None
        # measured on the wall clock: the served calls' round trip and the server's infer_ms
        assert s["latency_timing"] == loc["latency_timing"] == "profile"
        assert s["measured_rtt_ms_mean"] > 0 and s["server_ms_mean"] > 0
        assert loc["measured_rtt_ms_mean"] is None and loc["server_ms_mean"] is None


def test_server_gone_mid_episode_is_invalid_and_exits_3(tmp_path: Path) -> None:
    with _server("--max-requests", "1").start() as server:  # dies after its first reply
        code = main(["--tasks", "reach", *FAST, "--agents", "cloud-only", "--policy",
                     f"openpi:{server.url}", "--out", str(tmp_path / "r")])
        assert server.wait(10.0)
    assert code == 3
    (rec,) = _records(tmp_path / "r")
    assert rec["invalid"] is not None and infrastructure_fault(str(rec["invalid"]))
    assert str(rec["invalid"]).startswith("remote_error: ServerUnavailable: UNAVAILABLE: ")
    assert rec["inferences"] >= 2


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "ws://127.0.0.1"])
def test_malformed_url_is_one_line_and_exit_2(url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tasks", "reach", *FAST, "--policy", f"openpi:{url}",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rapid-eval: error: ") and err.count("\n") == 1
    assert "expected openpi:ws://<host>:<port>" in err


def test_no_server_at_the_url_is_one_line_and_exit_2(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with _server().start() as server:
        url = server.url  # a port that was free a moment ago: nothing listens there now
    assert main(["--tasks", "reach", *FAST, "--policy", f"openpi:{url}",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no openpi server reachable at" in err and err.count("\n") == 1
