"""``rapid-eval --policy-timing measured``: a served policy's latencies are its round trips.

The shipped ``chunk-regress`` behind ``rapid-policy-server`` (in a thread, on a free local port,
stopped by the test), as in ``test_eval_openpi``. Under ``measured`` every delivered chunk's
latency is the round trip measured for its request (no link, no profile on top) and the records
say so; the default stays ``profile`` with the keys it had; a policy that runs in this process
cannot be measured (one line, exit 2); a server that goes away loses the request at its deadline
and the episode is invalid, without a hang.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rapid_env.cli.eval import main
from rapid_env.compose import build_controller, build_decider, check_policy_timing
from rapid_env.config import EnvConfig
from rapid_env.episode import run_episode
from rapid_env.eval.jobs import EpisodeJob
from rapid_env.record import WALL_CLOCK_FIELDS, infrastructure_fault
from tests.cli.test_eval_openpi import _records, _server

SHORT = ["--tasks", "reach", "--agents", "cloud-only", "--episodes", "1", "--max-episode-s", "1",
         "--wandb", "disabled", "--quiet", "--no-report"]


def test_measured_latencies_are_the_measured_round_trips() -> None:
    with _server().start() as server:
        cfg = EnvConfig(task="reach", policy=f"openpi:{server.url}", image_size=64,
                        max_episode_s=1.0, policy_timing="measured")
        controller = build_controller(cfg)
        try:
            body = run_episode(controller, build_decider("cloud-only"), 1000)
            rec = controller.recorder
            delivered = list(rec.series.latency)
            measured = list(rec.measured["rtt"])
            servers = list(rec.measured["server"])
            clouds = list(rec.series.cloud)
        finally:
            controller.policy.close()
            controller.task.close()
    assert body["latency_timing"] == "measured"
    assert body["fault"] is None and body["faults"] == 0 and body["invalid"] is None
    assert body["steps"] > 0 and body["inferences"] == len(measured) >= 2
    assert body["edge_ms_mean"] == 0.0  # the whole model is on the server
    # every chunk that arrived took exactly the round trip measured for its request (virtual
    # time t + rtt, less the float rounding of t); requests still in flight at the end are not
    # delivered, so the delivered latencies are a sub-multiset of the measured round trips
    assert delivered and len(delivered) <= len(measured)
    _take_each(delivered, measured)
    # the server reported its compute, so that is each delivered request's cloud stage
    _take_each(clouds, servers)


def _take_each(values: list[float], pool: list[float]) -> None:
    """Assert that each of ``values`` is a distinct member of ``pool`` (to float rounding)."""
    left = list(pool)
    for value in values:
        match = [i for i, p in enumerate(left) if abs(p - value) < 1e-9]
        assert match, (value, pool)
        del left[match[0]]


def test_a_measured_sweep_records_and_manifests_the_mode(tmp_path: Path) -> None:
    with _server().start() as server:
        code = main([*SHORT, "--policy", f"openpi:{server.url}", "--policy-timing", "measured",
                     "--out", str(tmp_path / "m")])
    assert code == 0
    (rec,) = _records(tmp_path / "m")
    assert rec["latency_timing"] == "measured"
    assert rec["fault"] is None and rec["faults"] == 0 and rec["invalid"] is None
    assert rec["steps"] > 0 and rec["inferences"] >= 2 and rec["latency_n"] >= 1
    assert rec["lost_requests"] == 0 and rec["measured_rtt_ms_mean"] > 0
    assert rec["server_ms_mean"] > 0 and rec["latency_ms_mean"] > 0
    assert rec["edge_ms_mean"] == 0.0 and rec["bytes_up"] > 0
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["policy_timing"] == "measured"
    assert manifest["sweep"]["env"]["policy_timing"] == "measured"
    assert all(cell["env"]["policy_timing"] == "measured" for cell in manifest["cells"])


def test_the_default_is_profile_and_leaves_keys_and_records_unchanged(tmp_path: Path) -> None:
    assert EnvConfig().policy_timing == "profile"
    assert "policy_timing" not in EnvConfig(policy_timing="profile").to_dict()
    # the key computed before --policy-timing existed: stored sweeps resume as before
    job = EpisodeJob(("reach", "clean", "constant:20:40", "rapid"), 1000, EnvConfig())
    assert job.key() == "ffc587470af3704d"
    measured = EpisodeJob(("reach", "clean", "constant:20:40", "rapid"), 1000,
                          EnvConfig(policy_timing="measured"))
    assert measured.key() != job.key()  # another timing is another episode
    with _server().start() as server:
        policy = f"openpi:{server.url}"
        assert main([*SHORT, "--policy", policy, "--out", str(tmp_path / "d")]) == 0
        assert main([*SHORT, "--policy", policy, "--policy-timing", "profile",
                     "--out", str(tmp_path / "p")]) == 0
    (default,), (profile,) = _records(tmp_path / "d"), _records(tmp_path / "p")
    assert default["latency_timing"] == "profile"
    skip = set(WALL_CLOCK_FIELDS)
    assert {k: v for k, v in default.items() if k not in skip} == {
        k: v for k, v in profile.items() if k not in skip}
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["policy_timing"] == "profile"
    assert "policy_timing" not in manifest["sweep"]["env"]


@pytest.mark.parametrize("policy", ["expert", "chunk-regress"])
def test_measured_with_a_policy_in_this_process_is_one_line_and_exit_2(
        policy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SHORT, "--policy", policy, "--policy-timing", "measured",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rapid-eval: error: ") and err.count("\n") == 1, err
    assert "policy_timing='measured'" in err and repr(policy) in err
    assert "openpi:ws://<host>:<port>" in err and "remote:<host:port>" in err
    with pytest.raises(ValueError, match="policy_timing='measured'"):  # gym.make's path too
        build_controller(EnvConfig(policy=policy, policy_timing="measured"))


def test_measured_is_allowed_over_a_remote_link() -> None:
    from rapid_env.serve import remote_link  # noqa: F401  (registers the remote: link)

    check_policy_timing(EnvConfig(policy="chunk-regress", link="remote:127.0.0.1:50051",
                                  policy_timing="measured"))


def test_an_unknown_policy_timing_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"^policy_timing='wall'; allowed: profile, measured$"):
        EnvConfig(policy_timing="wall")  # type: ignore[arg-type]


def test_a_server_gone_mid_run_is_a_lost_request_and_an_invalid_episode(tmp_path: Path) -> None:
    with _server("--max-requests", "1").start() as server:  # dies after its first reply
        # longer than the 2 s request deadline, so the lost request is given up in the episode
        # (push: a task the first chunk does not finish)
        code = main([*SHORT, "--tasks", "push", "--max-episode-s", "3",
                     "--policy", f"openpi:{server.url}", "--policy-timing", "measured",
                     "--out", str(tmp_path / "r")])
        assert server.wait(10.0)
    assert code == 3
    (rec,) = _records(tmp_path / "r")
    assert rec["latency_timing"] == "measured" and rec["steps"] > 0
    assert str(rec["invalid"]).startswith("remote_error: ServerUnavailable: UNAVAILABLE: ")
    assert infrastructure_fault(str(rec["invalid"])) and rec["fault"] == rec["invalid"]
    assert rec["inferences"] >= 2 and rec["lost_requests"] >= 1 and rec["faults"] >= 1
