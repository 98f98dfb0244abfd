"""The task env refuses an action of the wrong shape or with a NaN before MuJoCo sees it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rapid_env  # noqa: F401  (registers the ids)


@pytest.fixture(scope="module")
def env():
    env = gym.make("rapid_env/reach-v3", image_size=16)
    env.reset(seed=0)
    yield env
    env.close()


@pytest.mark.parametrize(
    ("action", "needle"),
    [
        (np.zeros(5, np.float32), "action of shape (5,); allowed: an array of shape (4,)"),
        (np.zeros(3, np.float32), "action of shape (3,); allowed: an array of shape (4,)"),
        (0.5, "action of shape (); allowed: an array of shape (4,)"),
        (np.zeros((1, 4)), "action of shape (1, 4); allowed"),
        (None, "action=None is not a numeric array; allowed: an array of shape (4,)"),
        ("left", "action='left' is not a numeric array"),
        ([0.0, 0.0, float("nan"), 0.0], "action=[0.0, 0.0, nan, 0.0] is not finite"),
        ([float("inf"), 0.0, 0.0, 0.0], "is not finite"),
        ([0.0, 0.0, 0.0, -float("inf")], "is not finite"),
    ],
)
def test_a_bad_action_is_refused_before_the_simulation_moves(env, action, needle):
    task = env.unwrapped
    state, tick = task.get_state(), task.tick
    with pytest.raises(ValueError) as err:
        env.step(action)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert task.tick == tick and np.array_equal(task.get_state(), state)  # nothing ran


def test_good_actions_still_step_lists_and_out_of_range_values_included(env):
    task = env.unwrapped
    tick = task.tick
    env.step(np.array([0.1, 0.0, 0.0, 0.0], np.float32))
    env.step([0.0, 2.0, -3.0, 1.0])  # clipped to [-1, 1], as before
    assert task.tick == tick + 2
    assert np.all(np.isfinite(task.data.qpos))
