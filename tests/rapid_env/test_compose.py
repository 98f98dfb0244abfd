"""The composition module: names in, a RAPID env out; a named decider's actions ride along."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rapid_env
from rapid_env.compose import build_controller, build_decider, make_rapid_env
from rapid_env.config import EnvConfig
from rapid_env.episode import WALL_CLOCK_FIELDS, run_episode

KW = dict(task="push", policy="expert", image_size=16, max_episode_s=1.5, link="wifi")


def test_feeding_back_the_decider_action_is_the_rapid_eval_episode():
    """info["decider_action"] replayed through the env gives the record run_episode gives."""
    spec = "rapid(high_threshold=3)"
    env = gym.make(rapid_env.RAPID_ENV_ID, decider=spec, **KW)
    _, info = env.reset(seed=1001)
    done = False
    while not done:
        _, _, term, trunc, info = env.step(info["decider_action"])
        done = term or trunc
    controller = build_controller(EnvConfig(**KW))  # type: ignore[arg-type]
    expected = run_episode(controller, build_decider(spec), 1001)
    got = info["rapid"]
    assert got["inferences"] > 0
    assert {k: v for k, v in expected.items() if k in got} == got
    # what only run_episode adds: the decider's measured cost (the env has no decide() to time)
    only_episode = {"wall_time_s", "decision_cpu_us_mean", "decision_overhead_pct",
                    "decision_model_ms"}
    assert set(expected) - set(got) == only_episode <= {*WALL_CLOCK_FIELDS, "decision_model_ms"}
    env.close()
    controller.task.close()


def test_decider_spec_and_its_image_needs_reach_the_env():
    env = make_rapid_env(decider="periodic(period_ticks=2)", **KW)
    assert env.decider is not None and env.decider.name == "periodic(period_ticks=2)"
    assert not env.controller.decider_needs_image
    _, info = env.reset(seed=3)
    assert env.action_space.contains(info["decider_action"])
    env.close()


def test_unknown_keywords_name_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown keyword\(s\) nope; allowed: .*decider.*task"):
        make_rapid_env(nope=1)


def test_bad_decider_spec_fails_before_building():
    with pytest.raises(ValueError, match="high_threshold"):
        make_rapid_env(decider="rapid(high_threshold=abc)", **KW)


def test_render_fps_follows_the_control_rate():
    env = make_rapid_env(control_hz=10.0, **KW)
    assert env.metadata["render_fps"] == 10
    env.close()


def test_reward_reads_the_tick_deltas():
    """Every tick's reward equals the weighted sum of the deltas the tick handed out."""
    env = make_rapid_env(**KW)
    env.reset(seed=2)
    ctrl = env.controller
    for action in ([1, 0], [0, 0], [0, 0], [2, 0], [0, 0], [0, 0]):
        before = (len(ctrl.latencies_s), ctrl.recorder.bytes_up + ctrl.recorder.bytes_down)
        _, reward, *_ = env.step(np.array(action))
        latency = sum(ctrl.latencies_s[before[0]:])
        sent = ctrl.recorder.bytes_up + ctrl.recorder.bytes_down - before[1]
        rc = env.reward_config
        delta = ctrl.recorder.tick_delta(0.0, False)
        assert delta.delivered_latency_s == pytest.approx(latency)
        assert delta.bytes_sent == sent
        assert reward <= -rc.latency * latency - rc.megabytes * sent / 1e6 + 1e-12
    env.close()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"reward": {"nope": 1}}, "unknown reward weight(s) nope; allowed: success, latency"),
        ({"reward": "x"}, "reward='x'; allowed: a RewardConfig or a dict of"),
        ({"reward": {"success": float("nan")}}, "reward weight success=nan; allowed: a finite"),
        ({"reward": {"stall": True}}, "reward weight stall=True"),
        ({"render_mode": "nope"}, "render_mode='nope'; allowed: None, 'rgb_array'"),
    ],
)
def test_bad_reward_or_render_mode_is_refused_at_make(kwargs, needle) -> None:
    import gymnasium as gym

    with pytest.raises(ValueError) as err:
        gym.make("rapid_env/Rapid-v0", policy="expert", image_size=16, **kwargs)
    assert needle in str(err.value)


def test_reward_weights_as_a_dict() -> None:
    import gymnasium as gym

    from rapid_env.wrapper import RewardConfig

    env = gym.make("rapid_env/Rapid-v0", policy="expert", image_size=16, reward={"stall": 0.5})
    assert env.unwrapped.reward_config == RewardConfig(stall=0.5)
    env.close()
