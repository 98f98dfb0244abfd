"""rapid-eval: the files it writes, bad input, and determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rapid_env.cli.eval import main
from rapid_env.eval.runner import WALL_CLOCK_FIELDS

FIELDS = (
    "task agent noise link seed success steps sim_time_s inferences offloads latency_ms_mean "
    "latency_ms_p95 bytes_up bytes_down stall_steps rms_jerk ldlj sparc wall_time_s"
).split()
SMALL = ["--tasks", "reach", "--agents", "rapid,edge-only", "--episodes", "2",
         "--image-size", "16", "--wandb", "disabled", "--quiet"]


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writes_episodes_and_summary(tmp_path, capsys):
    assert main([*SMALL, "--out", str(tmp_path / "r")]) == 0
    recs = _records(tmp_path / "r" / "episodes.jsonl")
    assert len(recs) == 4
    for rec in recs:
        assert set(FIELDS) <= set(rec)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert len(summary) == 2
    assert (tmp_path / "r" / "summary.csv").read_text().startswith("task,agent,noise,link")
    assert "success_rate" in capsys.readouterr().out


def test_same_command_twice_gives_identical_records(tmp_path):
    args = [*SMALL, "--noise", "gaussian_noise:3", "--links", "constant:5:80"]
    main([*args, "--out", str(tmp_path / "a")])
    main([*args, "--out", str(tmp_path / "b")])

    def strip(recs):
        return [{k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in recs]

    a = strip(_records(tmp_path / "a" / "episodes.jsonl"))
    b = strip(_records(tmp_path / "b" / "episodes.jsonl"))
    assert a == b
    assert a[0]["seed"] != a[1]["seed"]


def test_parallel_workers_give_the_serial_records(tmp_path):
    args = [*SMALL, "--agents", "rapid,edge-only,cloud-only", "--episodes", "1"]
    main([*args, "--out", str(tmp_path / "serial")])
    main([*args, "--workers", "2", "--out", str(tmp_path / "par")])

    def key(r):
        return (r["agent"], r["seed"])

    def strip(recs):
        return sorted(
            ({k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in recs), key=key
        )

    serial = strip(_records(tmp_path / "serial" / "episodes.jsonl"))
    par = strip(_records(tmp_path / "par" / "episodes.jsonl"))
    assert serial == par and len(par) == 3
    summary = json.loads((tmp_path / "par" / "summary.json").read_text())
    assert [row["agent"] for row in summary] == ["rapid", "edge-only", "cloud-only"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tasks", "reech"], "unknown task 'reech'; allowed: reach"),
        (["--agents", "oracle"], "unknown agent 'oracle'; allowed: rapid"),
        (["--noise", "fogg:3"], "unknown noise 'fogg'; allowed: clean"),
        (["--noise", "gaussian_noise:6"], "severity 6 out of range; allowed: 1, 2, 3, 4, 5"),
        (["--links", "dialup"], "unknown link 'dialup'; allowed: ideal"),
        (["--episodes", "0"], "--episodes 0"),
        (["--out", "/proc/rapid-env-cannot-write"], "/proc/rapid-env-cannot-write"),
        (["--image-size", "0"], "image_size=0; allowed: an int or a (height, width) pair in 16"),
        (["--image-size", "100000"], "image_size=100000; allowed"),
        (["--max-episode-s", "0"], "max_episode_s=0.0; allowed: a finite number of seconds"),
        (["--max-episode-s", "-1"], "max_episode_s=-1.0; allowed"),
        (["--max-episode-s", "nan"], "max_episode_s=nan; allowed"),
        (["--control-hz", "nan"], "control_hz=nan must divide 80 Hz evenly; allowed"),
        (["--chunk-size", "0"], "chunk_size=0; allowed: an int in 1..256"),
        (["--policy", "ckpt:/nonexistent"], "policy 'ckpt:/nonexistent'"),
        (["--policy", "hf:{tmp}/empty"], "empty has no config.json"),
        (["--agents", "sb3:/nonexistent"], "/nonexistent"),
        (["--agents", "cloud-only,cloud-only"], "agents lists cloud-only more than once"),
        (["--tasks", "reach,reach"], "tasks lists reach more than once"),
        (["--links", "wifi,ideal,wifi"], "links lists wifi more than once"),
        (["--workers", "1000"], "--workers 1000; allowed: 1.."),
        (["--backend", "slurm"], "invalid choice: 'slurm'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, needle):
    (tmp_path / "empty").mkdir()
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    argv = ["--out", str(tmp_path / "o"), "--tasks", "reach", "--episodes", "1", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o" / "episodes.jsonl").exists()  # before any episode


def test_console_script_exit_code(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "rapid-eval")
    proc = subprocess.run([exe, "--tasks", "nope", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown task 'nope'" in proc.stderr


def test_offline_wandb_run_lands_in_out(tmp_path):
    args = [a if a != "disabled" else "offline" for a in SMALL]
    assert main([*args, "--agents", "rapid", "--episodes", "1", "--out", str(tmp_path)]) == 0
    runs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 2 and all(r.stat().st_size > 100 for r in runs)  # the cell's, the sweep's


def test_a_trained_checkpoint_drives_the_robot_through_the_split_runtime(tmp_path):
    from rapid_env.agents.vla.checkpoint import save_checkpoint
    from tests.agents.vla.test_checkpoint_policy import tiny_policy

    pol = tiny_policy("flow")
    save_checkpoint(tmp_path / "ckpt", pol.model, pol.tokenizer, {})
    args = ["--tasks", "drawer-close", "--agents", "cloud-only,edge-only", "--episodes", "1",
            "--max-episode-s", "1", "--policy", f"ckpt:{tmp_path / 'ckpt'}", "--chunk-size", "3",
            "--wandb", "disabled", "--quiet", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    cloud, edge = _records(tmp_path / "r" / "episodes.jsonl")
    for rec in (cloud, edge):
        assert rec["policy"] == f"ckpt:{tmp_path / 'ckpt'}" and rec["fault"] is None
        assert rec["profile"] == "openvla-7b" and rec["inferences"] > 0
    assert cloud["split"] == 0 and cloud["exec_bytes_up"] > 0 and cloud["uplink_ms_mean"] > 0
    assert cloud["edge_memory_gb"] < edge["edge_memory_gb"]
    assert edge["exec_bytes_up"] == 0 and edge["uplink_ms_mean"] == 0.0


def test_every_noise_name_and_preset_is_accepted(tmp_path):
    from rapid_env.noise import NOISE_NAMES, PRESETS

    specs = [*PRESETS, *[f"{n}:{1 + i % 5}" for i, n in enumerate(NOISE_NAMES)]]
    args = ["--tasks", "reach", "--agents", "cloud-only", "--episodes", "1",
            "--max-episode-s", "0.3", "--image-size", "16", "--noise", ",".join(specs),
            "--wandb", "disabled", "--quiet", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    recs = _records(tmp_path / "r" / "episodes.jsonl")
    assert [r["noise"] for r in recs] == specs and all(r["fault"] is None for r in recs)


def test_every_link_preset_and_a_user_trace_are_accepted(tmp_path):
    from importlib.resources import files

    from rapid_env.link import PRESETS

    trace = tmp_path / "my_link.tsv"
    trace.write_text("0.0\t2.0\n1.0\t0.5\n2.0\t4.0\n")
    bundled = files("rapid_env") / "data" / "traces" / "hsdpa3g_train_1.tsv"
    specs = ["ideal", "constant:20:40", *PRESETS, f"trace:{trace}", f"trace:{bundled}:2"]
    args = ["--tasks", "reach", "--agents", "cloud-only", "--episodes", "1",
            "--max-episode-s", "0.5", "--image-size", "16", "--links", ",".join(specs),
            "--wandb", "disabled", "--quiet", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    recs = _records(tmp_path / "r" / "episodes.jsonl")
    assert [r["link"] for r in recs] == specs
    assert all(r["fault"] is None for r in recs)
    # every link but the ideal one moved bytes through a modelled transfer with a delay
    assert all(r["network_ms_mean"] is None or r["network_ms_mean"] > 0 for r in recs[1:])


def test_bad_link_trace_file_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("0.0\t1.0\n0.5\t-2.0\n")
    code = main(["--tasks", "reach", "--links", f"trace:{bad}", "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.tsv: line 2: bandwidth is negative" in err


def test_every_decider_of_the_comparison_runs(tmp_path):
    agents = ("rapid,edge-only,cloud-only,static-split,chunk-threshold,periodic,vision-entropy,"
              "bandwidth-adaptive,learned")
    args = ["--tasks", "drawer-close", "--agents", agents, "--episodes", "1",
            "--max-episode-s", "1.0", "--image-size", "16", "--links", "wifi",
            "--noise", "interference", "--wandb", "disabled", "--quiet",
            "--out", str(tmp_path / "r")]
    assert main(args) == 0
    recs = _records(tmp_path / "r" / "episodes.jsonl")
    assert [r["agent"] for r in recs] == agents.split(",")
    for r in recs:
        assert r["fault"] is None and r["inferences"] >= 1
        assert r["decision_overhead_pct"] is not None and r["decision_overhead_pct"] >= 0
    by_agent = {r["agent"]: r for r in recs}
    assert by_agent["edge-only"]["offloads"] == 0 and by_agent["cloud-only"]["offloads"] >= 1


def test_agent_specs_split_at_top_level_commas():
    from rapid_env.cli.eval import build_parser

    text = "rapid,rapid(high_threshold=6,cooldown_s=0.1),chunk-threshold(threshold=0.25)"
    assert build_parser().parse_args(["--agents", text]).agents == (
        "rapid", "rapid(high_threshold=6,cooldown_s=0.1)", "chunk-threshold(threshold=0.25)"
    )


def test_a_configured_agent_runs_and_is_recorded_as_given(tmp_path):
    args = ["--agents", "rapid(high_threshold=6)", "--tasks", "reach", "--episodes", "1",
            "--policy", "expert", "--max-episode-s", "1", "--image-size", "16",
            "--wandb", "disabled", "--quiet", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    (rec,) = _records(tmp_path / "r" / "episodes.jsonl")
    assert rec["agent"] == "rapid(high_threshold=6)" and rec["fault"] is None
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert [row["agent"] for row in summary] == ["rapid(high_threshold=6)"]


def test_max_in_flight_reaches_the_agents_and_the_controller(tmp_path):
    out = tmp_path / "p"
    args = ["--agents", "rapid,edge-only(max_in_flight=1),learned", "--tasks", "reach",
            "--episodes", "1", "--policy", "expert", "--max-episode-s", "1", "--image-size", "16",
            "--max-in-flight", "2", "--baseline", "rapid", "--wandb", "disabled", "--quiet",
            "--no-report", "--out", str(out)]
    assert main(args) == 0
    agents = ["rapid(max_in_flight=2)", "edge-only(max_in_flight=1)", "learned"]
    assert sorted(r["agent"] for r in _records(out / "episodes.jsonl")) == sorted(agents)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sweep"]["agents"] == agents
    assert manifest["sweep"]["env"]["control"]["max_in_flight"] == 3
    assert {c["env"]["control"]["max_in_flight"] for c in manifest["cells"]} == {3}


def test_max_in_flight_flag_and_agents_are_checked(tmp_path):
    from rapid_env.cli.eval import parse_spec

    base = ["--tasks", "reach", "--out", str(tmp_path)]
    agents = ["--agents", "rapid(cooldown_s=0.1),periodic()"]
    inv = parse_spec([*base, *agents, "--max-in-flight", "3"])
    assert inv.spec.agents == ("rapid(cooldown_s=0.1,max_in_flight=3)", "periodic(max_in_flight=3)")
    assert inv.spec.base.control.max_in_flight == 4
    assert parse_spec([*base, "--agents", "rapid"]).spec.base.control.max_in_flight == 2
    for bad, needle in ((["--max-in-flight", "0"], "--max-in-flight 0: max_in_flight=0; allowed"),
                        (["--agents", "rapid(max_in_flight=3)"], "add --max-in-flight 3")):
        with pytest.raises(ValueError, match=needle):
            parse_spec([*base, *bad])


@pytest.mark.parametrize(
    ("agents", "needle"),
    [
        ("rapid,rapid(nope=1)", "rapid(nope=1): unknown field 'nope'; allowed: "
                                "high_threshold: float, low_threshold: float, cooldown_s: float"),
        ("rapid(high_threshold=abc)",
         "rapid(high_threshold=abc): high_threshold='abc' is not a float; "
         "allowed: high_threshold: float, low_threshold: float"),
        ("rapid(high_threshold=-1)", "rapid(high_threshold=-1): need 0 < low_threshold"),
        ("static-split(x=1)", "static-split(x=1): unknown field 'x'; allowed: max_in_flight: int"),
    ],
)
def test_bad_agent_specs_exit_2_before_any_episode(tmp_path, capsys, agents, needle):
    out = tmp_path / "o"
    assert main(["--agents", agents, "--tasks", "reach", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rapid-eval: error: ") and len(err.splitlines()) == 1
    assert needle in err
    if "allowed: high_threshold" in needle:  # every field of RapidConfig is listed, on one line
        assert err.endswith("cooldown: bool, preempt_max_latency_s: float|none")
    assert not (out / "episodes.jsonl").exists()


def test_progress_bar_under_a_terminal(tmp_path):
    """Under a terminal rapid-eval draws a bar with done/total and an ETA; plain lines otherwise."""
    import pty

    exe = os.path.join(os.path.dirname(sys.executable), "rapid-eval")
    argv = [exe, "--tasks", "reach", "--agents", "cloud-only", "--episodes", "2", "--policy",
            "expert", "--max-episode-s", "0.5", "--image-size", "16", "--wandb", "disabled"]
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*argv, "--out", str(tmp_path / "tty")], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the follower side closed: the process ended
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0
    bar = b"".join(chunks).decode(errors="replace")
    assert "2/2" in bar and "<" in bar and "\r" in bar  # tqdm: done/total, elapsed<ETA, redraws
    plain = subprocess.run([*argv, "--out", str(tmp_path / "plain")], capture_output=True,
                           text=True, timeout=120)
    assert "rapid-eval: 2/2 episodes (100.0%)" in plain.stderr and "\r" not in plain.stderr


def test_seeds_outside_the_held_out_range_warn_once(tmp_path, capsys):
    from rapid_env.cli.eval import parse_spec

    parse_spec(["--tasks", "reach", "--agents", "rapid", "--seed", "5", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert err.count("warning: seeds 5-7 are outside the held-out range 1000-99999") == 1
    parse_spec(["--tasks", "reach", "--agents", "rapid", "--out", str(tmp_path)])
    assert capsys.readouterr().err == ""


def test_held_out_seeds_end_where_the_demos_begin():
    from rapid_env.agents.vla.demos import TRAIN_SEED_BASE
    from rapid_env.cli.eval import HELD_OUT_SEEDS

    assert HELD_OUT_SEEDS.stop == TRAIN_SEED_BASE


def test_the_modelling_readings_reach_the_records_and_the_manifest(tmp_path):
    from rapid_env.eval.report import reconstruct_command

    out = tmp_path / "r"
    readings = ["--placement", "edge-suffix", "--loop-cost", "once",
                "--action-contract", "single", "--edge-budget-gib", "2.4"]
    args = ["--tasks", "reach", "--agents", "rapid", "--episodes", "1", "--image-size", "16",
            "--policy", "expert", "--max-episode-s", "1", "--links", "lab-wifi6",
            "--wandb", "disabled", "--quiet", "--out", str(out)]
    assert main([*args, *readings]) == 0
    (rec,) = _records(out / "episodes.jsonl")
    assert rec["suffix_requests"] == rec["offloads"] > 0 and rec["split"] == 6
    assert rec["edge_ms_mean"] == pytest.approx(129.0, abs=0.05)
    manifest = json.loads((out / "manifest.json").read_text())
    env = manifest["sweep"]["env"]
    assert (env["placement"], env["loop_cost"], env["action_contract"]) == (
        "edge-suffix", "once", "single")
    command = reconstruct_command(manifest, out)
    assert all(word in command for word in readings)
    # at their defaults they are left out of the manifest (existing stores keep their keys)
    default = tmp_path / "d"
    assert main([*args[:-1], str(default)]) == 0
    env = json.loads((default / "manifest.json").read_text())["sweep"]["env"]
    assert not {"placement", "loop_cost", "action_contract"} & set(env)
    (rec,) = _records(default / "episodes.jsonl")
    assert rec["suffix_requests"] == 0


@pytest.mark.parametrize(("flag", "bad"), [("--placement", "tail"), ("--loop-cost", "twice"),
                                           ("--action-contract", "pair")])
def test_a_bad_reading_exits_2_naming_the_choices(tmp_path, capsys, flag, bad):
    assert main(["--out", str(tmp_path / "o"), "--tasks", "reach", flag, bad]) == 2
    err = capsys.readouterr().err
    assert f"invalid choice: '{bad}'" in err and flag in err
