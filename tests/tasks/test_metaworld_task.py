"""Every registered task id, per-seed layouts, proprioception, and the scripted expert's success."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rapid_env  # noqa: F401  (registers the ids)
from rapid_env.tasks.metaworld_task import MetaWorldTask, mw_steps_per_tick
from rapid_env.tasks.suite import MT10, get_task


@pytest.mark.parametrize("spec", MT10, ids=[s.name for s in MT10])
def test_registered_id_passes_check_env(spec):
    env = gym.make(spec.gym_id, image_size=32)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (32, 32, 3) and obs["image"].dtype == np.uint8
    assert obs["proprio"].shape == (4,)
    assert obs["instruction"] == spec.instruction
    env.close()


def test_layout_varies_per_seed_and_reproduces(reach_task):
    def layout(seed: int) -> np.ndarray:
        reach_task.reset(seed=seed)
        return np.asarray(reach_task.mw._last_rand_vec).copy()

    a, b, a2 = layout(1), layout(2), layout(1)
    np.testing.assert_array_equal(a, a2)
    assert not np.allclose(a, b)
    many = np.array([layout(s) for s in range(20)])
    assert len(np.unique(many.round(6), axis=0)) == 20  # not drawn from a fixed set of layouts


def test_proprio_sampled_every_substep(reach_task):
    reach_task.reset(seed=0)
    before = reach_task.proprio.total
    reach_task.advance(np.array([0.5, 0.0, 0.0, 0.0]))
    per_tick = reach_task.n_mw * reach_task.frame_skip
    assert reach_task.proprio.total - before == per_tick == 20
    w = reach_task.proprio.last(per_tick)
    np.testing.assert_allclose(np.diff(w.t), reach_task.physics_dt)
    assert np.abs(w.qd).max() > 0 and np.abs(w.tau).max() > 0


def test_drive_torque_changes_when_the_hand_accelerates():
    """The weld (drive) torque responds to commanded motion, not only to gravity."""
    task = MetaWorldTask("reach", image_size=16)
    task.reset(seed=0)
    for _ in range(4):
        task.advance(np.zeros(4))  # settle
    rest = task.proprio.last(20)
    task.advance(np.array([1.0, 0.0, 0.0, 0.0]))
    moving = task.proprio.last(20)
    d_rest = np.abs(np.diff(rest.tau, axis=0)).mean()
    d_moving = np.abs(np.diff(moving.tau, axis=0)).mean()
    assert d_moving > 5 * d_rest
    assert np.abs(moving.qdd).mean() > 2 * np.abs(rest.qdd).mean()
    task.close()


def test_bad_inputs_name_the_value():
    with pytest.raises(ValueError, match="unknown task 'reech'; allowed: reach, push"):
        get_task("reech")
    with pytest.raises(ValueError, match="control_hz=30"):
        mw_steps_per_tick(30)
    with pytest.raises(ValueError, match="image_size=4"):
        MetaWorldTask("reach", image_size=4)


def test_extra_cameras_by_name_and_the_hand_crop_follows_the_hand() -> None:
    from rapid_env.task import MultiCameraTask
    from rapid_env.tasks.metaworld_task import HAND_CROP, HAND_CROP_ZOOM

    env = MetaWorldTask("push", image_size=16)
    env.reset(seed=3)
    assert isinstance(env, MultiCameraTask)
    assert env.camera_names[0] == "corner4" and "gripperPOV" in env.camera_names
    assert env.camera_names[-1] == HAND_CROP
    assert env.render_camera("gripperPOV").shape == (16, 16, 3)
    np.testing.assert_array_equal(env.render_camera("corner4"), env.render_image())
    crop = env.render_camera(HAND_CROP)
    big = env._extra_renderers[HAND_CROP].render(None)
    assert big.shape == (16 * HAND_CROP_ZOOM, 16 * HAND_CROP_ZOOM, 3)
    # the crop is one window of the zoomed frame; it moves when the hand moves
    windows = {(r, c) for r in range(33) for c in range(33)
               if np.array_equal(big[r:r + 16, c:c + 16], crop)}
    assert windows
    for _ in range(8):
        env.advance(np.array([1.0, 0.0, 0.0, 0.0]))
    crop2 = env.render_camera(HAND_CROP)
    big2 = env._extra_renderers[HAND_CROP].render(None)
    moved = {(r, c) for r in range(33) for c in range(33)
             if np.array_equal(big2[r:r + 16, c:c + 16], crop2)}
    assert moved and not (moved & windows)
    with pytest.raises(ValueError, match="unknown camera 'wrist'; allowed: corner4"):
        env.render_camera("wrist")
    env.close()
