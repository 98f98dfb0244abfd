"""The RAPID env passes Gymnasium's and stable-baselines3's checkers, and PPO trains on it."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rapid_env
from rapid_env.compose import make_rapid_env
from rapid_env.decision import Decision
from rapid_env.wrapper import RECORD_INFO_KEY, CompactActions, SafetyRefill, action_to_decision

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
    assert RECORD_INFO_KEY == "rapid" and info["rapid"]["inferences"] >= 1
    assert "episode" not in info  # Gymnasium's and SB3's key, left to their episode statistics
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
    assert ups and len(timeline) >= 2 * info["rapid"]["inferences"] - 2
    assert all(tr["arrival"] is None or tr["arrival"] >= tr["start"] for tr in timeline)
    assert sum(tr["nbytes"] for tr in ups) == info["rapid"]["bytes_up"]
    env.close()


def test_action_mapping():
    assert action_to_decision(np.array([0, 3])).kind == "keep"
    d = action_to_decision(np.array([2, 1]))
    assert d.kind == "infer" and d.preempt and d.split == 1
    assert action_to_decision([1, 4], n_splits=5) == Decision("infer", split=4)
    with pytest.raises(ValueError, match=r"kind 5 is out of range.*split 0-n_splits - 1\]"):
        action_to_decision(np.array([5, 0]))
    with pytest.raises(ValueError, match=r"not in MultiDiscrete\(\[3 5\]\); split 5 is out"):
        action_to_decision([1, 5], n_splits=5)


@pytest.fixture(scope="module")
def expert_env():
    env = make_rapid_env(task="reach", policy="expert", image_size=16, max_episode_s=1.0)
    yield env
    env.close()


EXPECTED = r"expected an integer array of shape \(2,\): \[kind 0-2 .*, split 0-{hi}\]$"


@pytest.mark.parametrize(
    ("action", "why"),
    [
        (1, ""),  # a bare int: used to be an IndexError
        (np.int64(1), ""),
        (None, ""),
        ("infer", ""),
        (np.array([1, 0, 0]), ""),
        (np.array([[1, 0]]), ""),
        (np.array([1.5, 0.0]), ""),
        ([1.0, 0.0], ""),  # integral floats too: MultiDiscrete.contains refuses them as well
        (np.array([True, False]), ""),  # a bool is no kind (MultiDiscrete.contains casts it)
        ([1, [0]], ""),
        (np.array([3, 0]), "kind 3 is out of range; "),
        ([-1, 0], "kind -1 is out of range; "),
        ([1, -1], "split -1 is out of range; "),
        ("n_splits", None),  # filled in below: split == n_splits
    ],
)
def test_step_refuses_an_action_outside_its_space(expert_env, action, why):
    env = expert_env
    n = int(env.action_space.nvec[1])
    if why is None:
        action, why = np.array([2, n]), f"split {n} is out of range; "
    env.reset(seed=0)
    with pytest.raises(ValueError) as err:
        env.step(action)
    msg = str(err.value)
    assert msg.startswith("action ") and f" is not in MultiDiscrete([3 {n}]); {why}" in msg
    assert re.search(EXPECTED.format(hi=n - 1), msg), msg
    # nothing ran: the next valid action is the episode's first tick
    _, _, _, _, info = env.step([1, n - 1])
    assert info["t"] == pytest.approx(0.05) and "request:split=" + str(n - 1) in info["events"]


def test_step_message_for_a_bare_int_names_the_space(expert_env):
    n = int(expert_env.action_space.nvec[1])
    expert_env.reset(seed=0)
    with pytest.raises(ValueError) as err:
        expert_env.step(1)
    assert str(err.value) == (
        f"action 1 is not in MultiDiscrete([3 {n}]); expected an integer array of shape (2,): "
        f"[kind 0-2 (0 keep, 1 infer, 2 infer+preempt), split 0-{n - 1}]"
    )


def test_step_takes_any_integer_form_of_a_valid_action(expert_env):
    expert_env.reset(seed=0)
    for action in ([0, 0], (1, 2), np.array([2, 0], dtype=np.int32), np.array([0, 0], np.uint8)):
        expert_env.step(action)


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (7, r"compact action 7 is not in Discrete\(5\); allowed: 0 keep, 1 infer"),
        (-1, r"compact action -1 is not in Discrete\(5\)"),
        (np.int64(5), r"compact action 5 is not in Discrete\(5\)"),
        (1.5, r"compact action 1.5 is not in Discrete\(5\); expected an integer 0-4: 0 keep"),
        (np.float32(1.0), r"compact action np.float32\(1.0\) is not in Discrete\(5\)"),
        (True, r"compact action True is not in Discrete\(5\)"),
        (np.array([1, 2]), r"compact action array\(\[1, 2\]\) is not in Discrete\(5\)"),
        ("keep", r"compact action 'keep' is not in Discrete\(5\)"),
    ],
)
def test_compact_actions_refuse_an_index_outside_discrete_5(expert_env, action, match):
    compact = SafetyRefill(CompactActions(expert_env))
    compact.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        compact.step(action)
    with pytest.raises(ValueError, match=match):
        compact.env.action(action)


def test_compact_actions_take_any_integer_form(expert_env):
    compact = CompactActions(expert_env)
    for action in (1, np.int64(1), np.array(1), np.array([1], dtype=np.int32)):
        np.testing.assert_array_equal(compact.action(action), compact.action(np.int64(1)))


@pytest.mark.slow
def test_ppo_smoke_run():
    from stable_baselines3 import PPO

    env = make_rapid_env(**KW)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    action, _ = model.predict(env.reset(seed=1)[0], deterministic=True)
    assert env.action_space.contains(action)
    env.close()
