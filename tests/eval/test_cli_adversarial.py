"""rapid-eval and ``gym.make`` refuse out-of-range numbers the same way: one line, before planning.

Every case runs ``main([...])`` in this process: the refusal comes from parsing and the
configuration's own checks, before a backend starts or a job is planned, so each returns at once.
The ``gym.make`` cases meet the same checks (:class:`rapid_env.config.EnvConfig`).
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import rapid_env  # noqa: F401  (registers the ids)
from rapid_env.cli.eval import main
from rapid_env.config import ControlConfig
from rapid_env.eval.jobs import MAX_EPISODES, MAX_SEED, MAX_SWEEP_EPISODES, SweepSpec

HZ = "allowed: [80, 40, 20, 16, 10, 8, 5, 4, 2, 1] (Hz, 1 to 80)"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--control-hz", "0.01"], f"control_hz=0.01 must divide 80 Hz evenly; {HZ}"),
        (["--control-hz", "1e-300"], f"control_hz=1e-300 must divide 80 Hz evenly; {HZ}"),
        (["--control-hz", "0.5"], "control_hz=0.5 must divide 80 Hz evenly"),
        (["--control-hz", "nan"], "control_hz=nan must divide 80 Hz evenly"),
        (["--control-hz", "inf"], "control_hz=inf must divide 80 Hz evenly"),
        (["--control-hz", "-20"], "control_hz=-20.0 must divide 80 Hz evenly"),
        (["--control-hz", "160"], "control_hz=160.0 must divide 80 Hz evenly"),
        (["--control-hz", "30"], "control_hz=30.0 must divide 80 Hz evenly"),
        (["--max-episode-s", "inf"], "max_episode_s=inf; allowed: a finite number of seconds in "
                                     "(0, 3600]"),
        (["--max-episode-s", "1e9"], "max_episode_s=1000000000.0; allowed"),
        (["--max-episode-s", "0.01"], "max_episode_s=0.01 is shorter than one control tick at "
                                      "control_hz=20.0; allowed: >= 0.05 s"),
        (["--control-hz", "1", "--max-episode-s", "0.5"], "allowed: >= 1 s"),
        (["--image-size", "8"], "image_size=8; allowed: an int or a (height, width) pair in "
                                "16..1024"),
        (["--image-size", "5000"], "image_size=5000; allowed"),
        (["--chunk-size", "0"], "chunk_size=0; allowed: an int in 1..256"),
        (["--chunk-size", "100000"], "chunk_size=100000; allowed: an int in 1..256"),
        (["--edge-budget-gib", "nan"], "edge_budget_gib=nan; allowed: None or a finite number"),
        (["--edge-budget-gib", "inf"], "edge_budget_gib=inf; allowed"),
        (["--edge-budget-gib", "-1"], "edge_budget_gib=-1.0; allowed"),
        (["--episodes", "0"], f"--episodes 0; allowed: 1..{MAX_EPISODES}"),
        (["--episodes", "-5"], f"--episodes -5; allowed: 1..{MAX_EPISODES}"),
        (["--episodes", "1000000"], f"--episodes 1000000; allowed: 1..{MAX_EPISODES}"),
        (["--tasks", "mt10", "--agents", "rapid,edge-only", "--episodes", "100000"],
         f"the sweep has 2000000 episodes (10 tasks x 2 agents x 1 noises x 1 links x 100000 "
         f"episodes); allowed: at most {MAX_SWEEP_EPISODES}"),
        (["--seed", "-1"], f"--seed -1; allowed: 0..{MAX_SEED}"),
        (["--seed", str(MAX_SEED + 1)], f"--seed {MAX_SEED + 1}; allowed: 0..{MAX_SEED}"),
        (["--seed", str(MAX_SEED), "--episodes", "3"], f"allowed: 0..{MAX_SEED - 2} (the last "
                                                       "episode's seed"),
        (["--seed", "99999999999999999999999"], "--seed 99999999999999999999999; allowed"),
        (["--videos", "-1"], f"--videos -1; allowed: 0..{MAX_EPISODES}"),
        (["--videos", "1000000"], f"--videos 1000000; allowed: 0..{MAX_EPISODES}"),
        (["--workers", "0"], "--workers 0; allowed: 1.."),
        (["--workers", "100000"], "--workers 100000; allowed: 1.."),
        (["--backend", "ray", "--workers", "100000"], "--workers 100000; allowed: 1.."),
        (["--backend", "ray", "--address", "ray://"], "--address ray://; allowed: auto, "
                                                      "host:port or ray://host:port"),
        (["--oracle", "nan"], "'nan': give distinct tolerances > 0"),
        (["--episodes", "lots"], "argument --episodes: invalid int value: 'lots'"),
        (["--control-hz", "fast"], "argument --control-hz: invalid float value: 'fast'"),
    ],
)
def test_out_of_range_flags_exit_2_with_one_line(tmp_path, capsys, args, needle):
    argv = ["--out", str(tmp_path / "o"), "--tasks", "reach", "--agents", "rapid",
            "--episodes", "1", "--wandb", "disabled", "--quiet", "--no-report", *args]
    assert main(argv) == 2
    out = capsys.readouterr()
    err = out.err.strip()
    assert needle in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("rapid-eval: error: ")
    assert not (tmp_path / "o" / "episodes.jsonl").exists()  # refused before any episode


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"control_hz": 0.05, "max_episode_s": 1}, "control_hz=0.05 must divide 80 Hz evenly"),
        ({"control_hz": 0.01}, "control_hz=0.01 must divide 80 Hz evenly"),
        ({"control_hz": float("nan")}, "control_hz=nan"),
        ({"control_hz": True}, "control_hz=True"),
        ({"max_episode_s": float("inf")}, "max_episode_s=inf; allowed"),
        ({"max_episode_s": 0.001}, "max_episode_s=0.001 is shorter than one control tick"),
        ({"chunk_size": 10**6}, "chunk_size=1000000; allowed: an int in 1..256"),
        ({"image_size": 2}, "image_size=2; allowed"),
    ],
)
def test_gym_make_keywords_meet_the_same_checks(kwargs, needle):
    with pytest.raises(ValueError) as err:
        gym.make("rapid_env/Rapid-v0", policy="expert", **kwargs)
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"request_timeout_s": float("inf")}, "request_timeout_s=inf; allowed: a finite number"),
        ({"request_timeout_s": float("nan")}, "request_timeout_s=nan; allowed"),
        ({"request_timeout_s": 0.0}, "request_timeout_s=0.0; allowed"),
        ({"proprio_window_s": float("nan")}, "proprio_window_s=nan; allowed"),
        ({"proprio_window_s": -1.0}, "proprio_window_s=-1.0; allowed"),
        ({"max_in_flight": 0}, "max_in_flight=0; allowed: an int in 1..64"),
        ({"max_in_flight": 10**9}, "max_in_flight=1000000000; allowed"),
    ],
)
def test_control_settings_are_finite_and_bounded(kwargs, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        ControlConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"episodes": MAX_EPISODES + 1}, f"episodes={MAX_EPISODES + 1}; allowed: an int in 1.."),
        ({"episodes": 2.5}, "episodes=2.5; allowed: an int"),
        ({"seed": -1}, f"seed=-1; allowed: an int in 0..{MAX_SEED}"),
        ({"seed": MAX_SEED, "episodes": 2}, f"reaches seed {MAX_SEED + 1}"),
        ({"tasks": ("reach", "push", "pick-place", "door-open"), "episodes": MAX_EPISODES,
          "agents": ("a", "b", "c")}, "the sweep has 1200000 episodes"),
    ],
)
def test_the_sweep_is_bounded_before_it_is_planned(kwargs, needle):
    spec = {"tasks": ("reach",), "agents": ("rapid",), **kwargs}
    with pytest.raises(ValueError, match=needle):
        SweepSpec(**spec)


def test_the_largest_allowed_sweep_plans_lazily_enough():
    """At the per-cell bound a one-cell sweep is made, planned and keyed (no episode runs)."""
    from rapid_env.eval.jobs import canonical_identity, plan

    spec = SweepSpec(tasks=("reach",), agents=("rapid",), episodes=MAX_EPISODES)
    jobs = plan(spec)
    assert len(jobs) == MAX_EPISODES and jobs[-1].seed == MAX_EPISODES - 1
    import hashlib

    for job in (jobs[0], jobs[-1]):  # the cached-config key is the plain definition's digest
        assert job.key() == hashlib.sha256(canonical_identity(job).encode()).hexdigest()[:16]
    assert len({job.key() for job in jobs[:1000]}) == 1000
