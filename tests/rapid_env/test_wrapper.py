"""The RAPID env passes Gymnasium's and stable-baselines3's checkers, and PPO trains on it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rapid_env
from rapid_env.compose import make_rapid_env
from rapid_env.wrapper import action_to_decision

KW = dict(task="reach", image_size=16, max_episode_s=2.0)


def test_gymnasium_check_env():
    env = gym.make(rapid_env.RAPID_ENV_ID, **KW)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_sb3_check_env():
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = make_rapid_env(**KW)
    sb3_check(env, warn=True)
    env.close()


def test_episode_info_and_reward_terms():
    env = make_rapid_env(**KW)
    obs, info = env.reset(seed=5)
    assert obs.shape == env.observation_space.shape
    total, done, steps = 0.0, False, 0
    while not done:
        a = np.array([1, env.action_space.nvec[1] - 1])  # always infer at edge-only split
        obs, r, term, trunc, info = env.step(a)
        total += float(r)
        done = term or trunc
        steps += 1
    assert "episode" in info and info["episode"]["inferences"] >= 1
    assert total < 10.0  # latency and stall penalties were charged
    env.close()


def test_final_info_carries_the_link_timeline():
    env = make_rapid_env(**{**KW, "link": "wifi"})
    env.reset(seed=3)
    done, info = False, {}
    while not done:
        _, _, term, trunc, info = env.step(np.array([1, 0]))  # infer all-cloud every tick
        done = term or trunc
    timeline = info["link_timeline"]
    ups = [tr for tr in timeline if tr["direction"] == "up"]
    assert ups and len(timeline) >= 2 * info["episode"]["inferences"] - 2
    assert all(tr["arrival"] is None or tr["arrival"] >= tr["start"] for tr in timeline)
    assert sum(tr["nbytes"] for tr in ups) == info["episode"]["bytes_up"]
    env.close()


def test_action_mapping():
    assert action_to_decision(np.array([0, 3])).kind == "keep"
    d = action_to_decision(np.array([2, 1]))
    assert d.kind == "infer" and d.preempt and d.split == 1
    with pytest.raises(ValueError, match="action kind 5"):
        action_to_decision(np.array([5, 0]))


@pytest.mark.slow
def test_ppo_smoke_run():
    from stable_baselines3 import PPO

    env = make_rapid_env(**KW)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    action, _ = model.predict(env.reset(seed=1)[0], deterministic=True)
    assert env.action_space.contains(action)
    env.close()
