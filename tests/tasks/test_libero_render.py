"""Tests for rapid_env.tasks.libero_render and the CameraRenderer knobs it uses (tiny images)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rapid_env.tasks.libero_render import (  # noqa: E402
    LIBERO_CAMERAS,
    LIBERO_QUALITY,
    MeshLevelOfDetail,
    decimate_mesh,
    libero_camera_renderers,
    openvla_view,
)
from rapid_env.tasks.rendering import FAST, CameraRenderer, camera_needs_rotation  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def libero() -> Iterator[Any]:
    """LIBERO-Object task 0 at its first stored initial state, with robosuite's 64 px images."""
    lib = pytest.importorskip("libero.libero")
    from libero.libero.envs import OffScreenRenderEnv

    suite = lib.benchmark.get_benchmark_dict()["libero_object"]()
    task = suite.get_task(0)
    bddl = os.path.join(lib.get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
    env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=SIZE, camera_widths=SIZE)
    env.seed(0)
    env.reset()
    obs = env.set_init_state(suite.get_task_init_states(0)[0])
    env.robosuite_obs = obs  # robosuite's own (raw, bottom-row-first) images of this state
    yield env
    env.close()


def raw(env: Any) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """The raw mujoco model and data under robosuite's wrappers."""
    return env.env.sim.model._model, env.env.sim.data._data


@pytest.fixture(scope="module")
def frames(libero: Any) -> dict[str, np.ndarray]:
    """One frame per LIBERO camera from libero_camera_renderers at SIZE."""
    model, data = raw(libero)
    cams = libero_camera_renderers(model, data, (SIZE, SIZE))
    out = {name: cam.render() for name, cam in cams.items()}
    for cam in cams.values():
        cam.close()
    return out


def test_shape_dtype_and_order(libero: Any) -> None:
    model, data = raw(libero)
    cams = libero_camera_renderers(model, data, (24, 40))
    assert list(cams) == list(LIBERO_CAMERAS)
    for cam in cams.values():
        img = cam.render()
        assert img.shape == (24, 40, 3) and img.dtype == np.uint8 and img.flags.c_contiguous
        assert not cam.rotated and cam.quality == LIBERO_QUALITY
        cam.close()


def test_both_cameras_show_something(frames: dict[str, np.ndarray]) -> None:
    for name, img in frames.items():
        assert img.std() > 10, name  # not a blank or constant frame
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200, name


def test_same_state_same_frame(libero: Any, frames: dict[str, np.ndarray]) -> None:
    model, data = raw(libero)
    cams = libero_camera_renderers(model, data, (SIZE, SIZE))
    for name, cam in cams.items():
        first = cam.render()
        assert np.array_equal(first, cam.render())
        assert np.array_equal(first, frames[name])  # a second set of renderers agrees too
        cam.close()


def test_matches_robosuite_turned_upright_not_mirrored(
    libero: Any, frames: dict[str, np.ndarray]
) -> None:
    """robosuite's raw images are upside down; ours equal them flipped top-bottom only."""
    for name, img in frames.items():
        theirs = np.asarray(libero.robosuite_obs[f"{name}_image"])
        assert theirs.shape == img.shape
        upright = np.abs(img.astype(int) - theirs[::-1]).mean()
        as_raw = np.abs(img.astype(int) - theirs).mean()
        openvla = np.abs(img.astype(int) - theirs[::-1, ::-1]).mean()
        # Shadows, anti-aliasing and lighter meshes differ a little; a flip differs a lot.
        assert upright < 8, (name, upright)
        assert as_raw > 3 * upright and openvla > 3 * upright, (name, upright, as_raw, openvla)
        assert np.array_equal(openvla_view(img), img[:, ::-1])


def test_floor_in_lower_half_of_agentview(libero: Any) -> None:
    """Paint the floor pure green (visual-only, restored after) and find it in the image."""
    model, data = raw(libero)
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    assert floor >= 0
    saved = model.geom_matid[floor], model.geom_rgba[floor].copy()
    model.geom_matid[floor] = -1
    model.geom_rgba[floor] = (0.0, 1.0, 0.0, 1.0)
    try:
        cams = libero_camera_renderers(model, data, (48, 48), cameras=("agentview",))
        img = cams["agentview"].render().astype(int)
        cams["agentview"].close()
    finally:
        model.geom_matid[floor], model.geom_rgba[floor] = saved
    green = (img[..., 1] - img[..., 0] > 60) & (img[..., 1] - img[..., 2] > 60)
    rows, _ = np.nonzero(green)
    assert rows.size > 48 * 48 // 5, rows.size
    # The floor fills the view from just below the top edge down; the back wall is above it.
    assert green[24:].mean() > green[:24].mean() + 0.1, (green[24:].mean(), green[:24].mean())
    assert green[-4:].mean() > 0.9 and green[:3].mean() < 0.2, (green[-4:].mean(), green[:3].mean())


def _red_ball_at(point: np.ndarray) -> Any:
    """A scene hook that draws a red ball of radius 2 cm at ``point`` (visual only)."""

    def hook(scene: mujoco.MjvScene) -> None:
        geom = scene.geoms[scene.ngeom]
        mujoco.mjv_initGeom(
            geom,
            mujoco.mjtGeom.mjGEOM_SPHERE,
            np.array([0.02, 0.0, 0.0]),
            point,
            np.eye(3).ravel(),
            np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32),
        )
        scene.ngeom += 1

    return hook


@pytest.mark.parametrize("camera", LIBERO_CAMERAS)
def test_pinhole_orientation(libero: Any, camera: str) -> None:
    """A ball placed down-left of the camera's axis shows in the lower-left of the image."""
    model, data = raw(libero)
    cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    rot = data.cam_xmat[cid].reshape(3, 3)  # columns: camera right, up, back
    depth = 0.3
    point = data.cam_xpos[cid] + rot @ np.array([-0.25 * depth, -0.25 * depth, -depth])
    cams = libero_camera_renderers(model, data, (SIZE, SIZE), cameras=(camera,))
    img = cams[camera].render(_red_ball_at(point)).astype(int)
    cams[camera].close()
    red = (img[..., 0] - img[..., 1] > 120) & (img[..., 0] - img[..., 2] > 120)
    rows, cols = np.nonzero(red)
    assert rows.size > 10
    assert rows.mean() > SIZE / 2 + 4 and cols.mean() < SIZE / 2 - 4, (rows.mean(), cols.mean())


def test_model_left_as_it_was(libero: Any) -> None:
    """The lighter meshes live only in the GL context: the model's arrays are restored."""
    model, data = raw(libero)
    names = ("mesh_face", "mesh_facenormal", "mesh_facetexcoord", "mesh_facenum")
    before = {n: np.array(getattr(model, n)) for n in names}
    vis = (model.vis.quality.shadowsize, model.vis.quality.offsamples, model.vis.global_.offwidth)
    lod = MeshLevelOfDetail(model)
    assert lod.faces_after < lod.faces_before // 3
    with lod.applied():
        assert int(np.sum(model.mesh_facenum)) == lod.faces_after
    cams = libero_camera_renderers(model, data, (16, 16))
    for cam in cams.values():
        cam.close()
    for n in names:
        assert np.array_equal(getattr(model, n), before[n]), n
    assert vis == (
        model.vis.quality.shadowsize,
        model.vis.quality.offsamples,
        model.vis.global_.offwidth,
    )


# --------------------------------------------------------------------------- no LIBERO needed


def _sphere(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A UV sphere with ``2 * n * (n - 1)`` triangles."""
    theta, phi = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, n))
    v = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[:-1, 1:], idx[1:, 1:]
    f = np.concatenate(
        [np.stack([a, b, c], -1).reshape(-1, 3), np.stack([b, d, c], -1).reshape(-1, 3)]
    )
    return v.reshape(-1, 3), f


def test_decimate_mesh_bounds_and_indices() -> None:
    vertices, faces = _sphere()
    new, kept = decimate_mesh(vertices, faces, 500)
    assert 100 < new.shape[0] <= 500 and new.dtype == np.int32
    assert kept.shape == (new.shape[0],) and np.all(np.diff(kept) > 0)
    assert new.min() >= 0 and new.max() < vertices.shape[0]
    assert np.all((new[:, 0] != new[:, 1]) & (new[:, 1] != new[:, 2]) & (new[:, 0] != new[:, 2]))
    same, all_kept = decimate_mesh(vertices, faces, faces.shape[0])
    assert np.array_equal(same, faces) and np.array_equal(all_kept, np.arange(faces.shape[0]))


def test_decimate_mesh_max_cell_keeps_big_meshes_fine() -> None:
    vertices, faces = _sphere()  # 2 units across
    coarse, _ = decimate_mesh(vertices, faces, 200)
    fine, _ = decimate_mesh(vertices, faces, 200, max_cell=0.1)  # at least 20 cells per side
    assert coarse.shape[0] <= 200 < fine.shape[0] <= faces.shape[0]
    edges = vertices[fine] - vertices[np.roll(fine, 1, axis=1)]
    original = vertices[faces] - vertices[np.roll(faces, 1, axis=1)]
    longest = np.linalg.norm(original, axis=-1).max()
    # No edge grows by more than two cell diagonals: no slivers across the mesh.
    assert np.linalg.norm(edges, axis=-1).max() <= longest + 2 * 0.1 * np.sqrt(3)
    with pytest.raises(ValueError, match="max_cell"):
        decimate_mesh(vertices, faces, 200, max_cell=0.0)


@pytest.mark.parametrize("bad", [0, 99, 2.5, True, "2000"])
def test_decimate_mesh_rejects_bad_max_faces(bad: Any) -> None:
    vertices, faces = _sphere(8)
    with pytest.raises(ValueError, match="max_faces"):
        decimate_mesh(vertices, faces, bad)


# ------------------------------------------------- Meta-World's renderer is unchanged by default


def _metaworld() -> Any:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    env = ALL_V3_ENVIRONMENTS["push-v3"]()
    env._freeze_rand_vec = False
    env.seeded_rand_vec = True
    env._set_task_called = True
    env._partially_observable = False
    env.seed(0)
    env.reset()
    return env


@pytest.mark.parametrize("camera", ["corner2", "gripperPOV"])
def test_metaworld_default_frame_is_the_plain_fast_render(camera: str) -> None:
    """Default CameraRenderer == a plain mujoco.Renderer with FAST settings, pixel for pixel."""
    env = _metaworld()
    m, d = env.model, env.data
    with CameraRenderer(m, d, camera, 40, 32) as cam:
        ours = cam.render()
        assert cam.quality == FAST
    with CameraRenderer(m, d, camera, 40, 32, "fast", geomgroups=(0, 1, 2)) as cam:
        explicit_groups = cam.render()
    vis = m.vis
    saved = (
        vis.quality.shadowsize,
        vis.quality.offsamples,
        vis.global_.offwidth,
        vis.global_.offheight,
    )
    vis.quality.shadowsize, vis.quality.offsamples = 0, 0
    vis.global_.offwidth, vis.global_.offheight = 40, 32
    plain = mujoco.Renderer(m, height=32, width=40)
    vis.quality.shadowsize, vis.quality.offsamples, vis.global_.offwidth, vis.global_.offheight = (
        saved
    )
    for flag in (
        mujoco.mjtRndFlag.mjRND_SHADOW,
        mujoco.mjtRndFlag.mjRND_REFLECTION,
        mujoco.mjtRndFlag.mjRND_SKYBOX,
    ):
        plain.scene.flags[flag] = False
    plain.update_scene(d, camera=camera)
    reference = plain.render()
    plain.close()
    cid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if camera_needs_rotation(m, d, cid):
        reference = reference[::-1, ::-1]
    env.close()
    assert np.array_equal(ours, reference)
    assert np.array_equal(explicit_groups, reference)


def test_renderer_rejects_bad_geomgroup() -> None:
    env = _metaworld()
    bads: list[Any] = [6, -1, 1.0]
    for bad in bads:
        with pytest.raises(ValueError, match="geom group"):
            CameraRenderer(env.model, env.data, "corner2", 8, 8, geomgroups=(1, bad))
    env.close()


def test_reflections_switch(libero: Any) -> None:
    model, data = raw(libero)
    cams = libero_camera_renderers(model, data, (16, 16), cameras=("agentview",), reflections=False)
    assert not cams["agentview"].quality.reflections
    cams["agentview"].close()
    with pytest.raises(ValueError, match="reflections"):
        libero_camera_renderers(model, data, (16, 16), reflections="no")  # type: ignore[arg-type]


def test_bad_size_names_value(libero: Any) -> None:
    model, data = raw(libero)
    for bad in ((0, 8), (8,), "64", (8.0, 8)):
        with pytest.raises(ValueError, match="size_hw"):
            libero_camera_renderers(model, data, bad)  # type: ignore[arg-type]
