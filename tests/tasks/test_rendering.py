"""Tests for rapid_env.tasks.rendering and rapid_env.tasks.markers (tiny images, fast preset)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from metaworld.env_dict import ALL_V3_ENVIRONMENTS  # noqa: E402

from rapid_env.tasks.markers import (  # noqa: E402
    DEFAULT_CAMERA,
    GOAL_MARKERS,
    MT10_TASKS,
    make_goal_visible,
    refresh_site_poses,
)
from rapid_env.tasks.rendering import (  # noqa: E402
    QUALITY_PRESETS,
    CameraRenderer,
    RenderQuality,
    camera_needs_rotation,
)

ALL_CAMERAS = ["topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV"]


def make_env(task: str, seed: int = 0, markers: bool = False) -> Any:
    env = ALL_V3_ENVIRONMENTS[task]()
    env._freeze_rand_vec = False
    env.seeded_rand_vec = True
    env._set_task_called = True
    env._partially_observable = False
    if markers:
        make_goal_visible(env.model, task)
    env.seed(seed)
    env.reset()
    return env


@pytest.fixture(scope="module")
def reach() -> Iterator[Any]:
    env = make_env("reach-v3", markers=True)
    refresh_site_poses(env.model, env.data)
    yield env
    env.close()


def magenta_mask(img: np.ndarray) -> np.ndarray:
    """Pixels of the (translucent) magenta goal marker: red and blue high, green low."""
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return (r - g > 80) & (b - g > 80)


def project(
    model: mujoco.MjModel, data: mujoco.MjData, cam: str, point: np.ndarray, w: int, h: int
) -> tuple[float, float]:
    """(row, col) of a world point as an *upright* pinhole camera at the camera's pose sees it.

    Independent of the renderer's rotation logic: the image axes are rebuilt from the viewing
    direction and world +z (image-up = world-up projected), i.e. the camera with its roll
    removed. For a straight-down camera (topview) the roll is undefined; its own axes are used.
    """
    cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, cam)
    rot = data.cam_xmat[cid].reshape(3, 3)
    forward = -rot[:, 2]
    right, up = rot[:, 0], rot[:, 1]
    if abs(forward[2]) < 0.99:
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
    v = point - data.cam_xpos[cid]
    depth = v @ forward
    f = (h / 2) / np.tan(np.deg2rad(model.cam_fovy[cid]) / 2)
    col = w / 2 + f * (v @ right) / depth
    row = h / 2 - f * (v @ up) / depth
    return row - 0.5, col - 0.5  # pixel centres


# --------------------------------------------------------------------------- renderer basics


def test_presets() -> None:
    assert {"fast", "high"} <= set(QUALITY_PRESETS)
    assert all(isinstance(q, RenderQuality) for q in QUALITY_PRESETS.values())
    fast = QUALITY_PRESETS["fast"]
    assert fast.shadowsize == 0 and fast.offsamples == 0
    assert not (fast.shadows or fast.reflections or fast.skybox)
    with pytest.raises(AttributeError):
        fast.shadowsize = 1  # type: ignore[misc]


@pytest.mark.parametrize("quality", ["fast", "high"])
def test_shape_dtype_and_fresh_array(reach: Any, quality: str) -> None:
    with CameraRenderer(reach.model, reach.data, DEFAULT_CAMERA, 48, 32, quality) as cam:
        a = cam.render()
        b = cam.render()
    assert a.shape == (32, 48, 3) and a.dtype == np.uint8 and a.flags.c_contiguous
    assert a.std() > 5  # not a blank frame
    assert a is not b and np.array_equal(a, b)  # same state -> identical frames


def test_model_vis_restored(reach: Any) -> None:
    vis = reach.model.vis
    before = (
        vis.quality.shadowsize,
        vis.quality.offsamples,
        vis.global_.offwidth,
        vis.global_.offheight,
    )
    CameraRenderer(reach.model, reach.data, "corner", 32, 32, "fast").close()
    after = (
        vis.quality.shadowsize,
        vis.quality.offsamples,
        vis.global_.offwidth,
        vis.global_.offheight,
    )
    assert after == before


def test_bad_camera_lists_cameras(reach: Any) -> None:
    with pytest.raises(ValueError, match="nocam") as err:
        CameraRenderer(reach.model, reach.data, "nocam", 32, 32)
    for name in ALL_CAMERAS:
        assert name in str(err.value)


@pytest.mark.parametrize(
    "width,height,bad",
    [(0, 32, "0"), (32, -4, "-4"), (2.5, 32, "2.5"), (32, True, "True"), (32, "64", "'64'")],
)
def test_bad_size_names_value(reach: Any, width: Any, height: Any, bad: str) -> None:
    with pytest.raises(ValueError, match="positive int") as err:
        CameraRenderer(reach.model, reach.data, DEFAULT_CAMERA, width, height)
    assert bad in str(err.value)


def test_bad_quality_lists_presets(reach: Any) -> None:
    with pytest.raises(ValueError, match="ultra") as err:
        CameraRenderer(reach.model, reach.data, DEFAULT_CAMERA, 32, 32, quality="ultra")
    assert "fast" in str(err.value) and "high" in str(err.value)


def test_render_after_close_raises(reach: Any) -> None:
    cam = CameraRenderer(reach.model, reach.data, DEFAULT_CAMERA, 16, 16)
    cam.close()
    cam.close()  # idempotent
    with pytest.raises(RuntimeError):
        cam.render()


def test_same_state_same_frame_across_envs() -> None:
    frames = []
    for _ in range(2):
        env = make_env("push-v3", seed=3, markers=True)
        env.step(np.array([0.3, -0.2, 0.1, 0.5]))
        with CameraRenderer(env.model, env.data, DEFAULT_CAMERA, 32, 32) as cam:
            frames.append(cam.render())
        env.close()
    assert np.array_equal(frames[0], frames[1])


# --------------------------------------------------------------------------- orientation


def test_rotation_table(reach: Any) -> None:
    """Meta-World's corner cameras are rolled ~180 degrees; the others are upright."""
    m, d = reach.model, reach.data
    need = {
        c: camera_needs_rotation(m, d, mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, c))
        for c in ALL_CAMERAS
    }
    assert need == {
        "topview": False,
        "corner": True,
        "corner2": True,
        "corner3": True,
        "corner4": True,
        "behindGripper": False,
        "gripperPOV": False,
    }


@pytest.mark.parametrize("camera", [DEFAULT_CAMERA, "corner3", "topview"])
def test_goal_blob_where_upright_projection_says(reach: Any, camera: str) -> None:
    """Pixel check of orientation: no flip, vertical flip and mirror would all move the blob."""
    size = 64
    with CameraRenderer(reach.model, reach.data, camera, size, size) as cam:
        img = cam.render()
    mask = magenta_mask(img)
    assert mask.sum() >= 8
    rows, cols = np.nonzero(mask)
    goal = reach.data.site_xpos[mujoco.mj_name2id(reach.model, mujoco.mjtObj.mjOBJ_SITE, "goal")]
    exp_row, exp_col = project(reach.model, reach.data, camera, goal, size, size)
    # The expected spot is off-centre, so a wrong flip would land it far from where it is.
    assert abs(exp_row - 31.5) > 4 or abs(exp_col - 31.5) > 4
    assert abs(rows.mean() - exp_row) < 3 and abs(cols.mean() - exp_col) < 3


@pytest.mark.parametrize("camera", [DEFAULT_CAMERA, "corner", "corner2"])
def test_table_in_lower_half(camera: str) -> None:
    """Pixel check: paint the table pure green (visual-only) and find it in the image."""
    env = make_env("reach-v3")
    m = env.model
    table = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "tablelink")
    geoms = np.flatnonzero(m.geom_bodyid == table)
    assert geoms.size
    m.geom_matid[geoms] = -1  # materials would override geom_rgba
    m.geom_rgba[geoms] = (0.0, 1.0, 0.0, 1.0)
    with CameraRenderer(m, env.data, camera, 48, 48) as cam:
        img = cam.render().astype(int)
    env.close()
    green = (img[..., 1] - img[..., 0] > 60) & (img[..., 1] - img[..., 2] > 60)
    rows, _ = np.nonzero(green)
    assert rows.size > 48 * 48 // 10, rows.size  # the table is a big part of the view
    assert rows.mean() > 48 / 2 - 0.5, rows.mean()  # ...and it is in the lower half


# --------------------------------------------------------------------------- markers


@pytest.mark.parametrize("task", ["reach-v3", "push-v3", "pick-place-v3"])
def test_goal_is_clear_blob_at_64px(task: str) -> None:
    env = make_env(task, seed=0)
    refresh_site_poses(env.model, env.data)
    with CameraRenderer(env.model, env.data, DEFAULT_CAMERA, 64, 64) as cam:
        counts = [int(magenta_mask(cam.render()).sum())]  # Meta-World's own look: no magenta
        make_goal_visible(env.model, task)  # the renderer reads site styles live
        for seed in (0, 7):
            env.seed(seed)
            env.reset()
            refresh_site_poses(env.model, env.data)
            counts.append(int(magenta_mask(cam.render()).sum()))
    env.close()
    assert counts[0] == 0 and min(counts[1:]) >= 10, (task, counts)


def test_markers_cover_mt10_and_reject_unknown(reach: Any) -> None:
    assert set(GOAL_MARKERS) == set(MT10_TASKS) and len(MT10_TASKS) == 10
    with pytest.raises(ValueError, match="stack-v3") as err:
        make_goal_visible(reach.model, "stack-v3")
    assert "reach-v3" in str(err.value)


@pytest.mark.parametrize("task", ["push-v3", "pick-place-v3", "reach-v3"])
def test_markers_do_not_change_physics(task: str) -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, size=(40, 4))
    qpos = []
    for markers in (False, True):
        env = make_env(task, seed=1, markers=markers)
        if markers:
            refresh_site_poses(env.model, env.data)
            make_goal_visible(env.model, task)  # idempotent
        traj = []
        for a in actions:
            env.step(a)
            traj.append(env.data.qpos.copy())
        qpos.append(np.array(traj))
        env.close()
    assert np.array_equal(qpos[0], qpos[1])


def test_marker_touches_only_goal_site() -> None:
    env = make_env("pick-place-v3")
    m = env.model
    snapshot = {
        k: getattr(m, k).copy()
        for k in (
            "geom_size",
            "geom_rgba",
            "geom_contype",
            "geom_conaffinity",
            "body_mass",
            "site_size",
        )
    }
    make_goal_visible(m, "pick-place-v3")
    gid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "goal")
    for k, v in snapshot.items():
        now = getattr(m, k)
        if k == "site_size":
            now, v = np.delete(now, gid, axis=0), np.delete(v, gid, axis=0)
        assert np.array_equal(now, v), k
    env.close()
