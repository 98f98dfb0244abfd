"""What one LIBERO camera frame costs: robosuite's own render (before) against ours (after).

Loads one LIBERO task (``libero_object`` task 0 by default) at its first stored initial state
and, for each of LIBERO's two cameras and each image size, prints the median milliseconds per
frame of

* ``before``: robosuite's offscreen render, the call LIBERO's ``OffScreenRenderEnv`` makes for
  every camera observation (``env.sim.render(camera_name=..., width=..., height=...)``, with its
  model's 4096 px shadow map, 4x MSAA, reflections, skybox and 640x480 buffer, visual geoms only);
* ``after``: :func:`rapid_env.tasks.libero_render.libero_camera_renderers` (no shadow map, MSAA
  or skybox, reflections kept, visual geoms only, lighter meshes uploaded to the GL context),

with their ratio and the mean absolute pixel difference between the two (0-255). Before and
after frames alternate, so that other load on the machine weighs on both alike; robosuite's GL
context is made current before each of its frames (its renderer does not do that itself, and ours
makes its own current). ``--ablation`` adds, at 128 px, the cost of switching each of robosuite's
settings back on (or one of ours off), one at a time, on top of ours. ``--out PNG`` writes the
frames side by side (before turned right way up, after), one row per camera.

Usage::

    MUJOCO_GL=egl python benchmarks/bench_libero_frame.py [--repeats 20] [--ablation]
        [--out docs/media/libero_frames.png]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from rapid_env.tasks.libero_render import (  # noqa: E402
    DEFAULT_MAX_FACES,
    LIBERO_CAMERAS,
    LIBERO_GEOMGROUPS,
    LIBERO_QUALITY,
    MeshLevelOfDetail,
    libero_camera_renderers,
)
from rapid_env.tasks.rendering import CameraRenderer  # noqa: E402


def alternating_medians(
    renders: dict[str, Callable[[], object]], repeats: int, warmup: int = 3
) -> dict[str, float]:
    """Median milliseconds per call of each render, the renders alternating call by call.

    Alternating makes load from other processes on a shared machine weigh on each alike, so
    their ratios hold even when the absolute times drift.
    """
    times: dict[str, list[float]] = {key: [] for key in renders}
    for i in range(warmup + repeats):
        for key, render in renders.items():
            t0 = time.perf_counter()
            render()
            if i >= warmup:
                times[key].append(1000.0 * (time.perf_counter() - t0))
    return {key: statistics.median(values) for key, values in times.items()}


def make_env(suite_name: str, task_id: int) -> Any:
    """LIBERO's ``OffScreenRenderEnv`` for one task, at its first stored initial state."""
    from libero.libero import benchmark, get_libero_path
    from libero.libero.envs import OffScreenRenderEnv

    suite = benchmark.get_benchmark_dict()[suite_name]()
    task = suite.get_task(task_id)
    bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
    env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=128, camera_widths=128)
    env.seed(0)
    env.reset()
    env.set_init_state(suite.get_task_init_states(task_id)[0])
    return env


def robosuite_frame(env: Any, camera: str, size: int) -> np.ndarray:
    """Return robosuite's render of ``camera``, made current first and turned right way up."""
    sim = env.env.sim
    sim._render_context_offscreen.gl_ctx.make_current()
    return np.asarray(sim.render(camera_name=camera, width=size, height=size))[::-1]


@contextmanager
def no_textures(model: mujoco.MjModel) -> Iterator[None]:
    """Upload every material without its texture (an ablation: what textures cost)."""
    saved = model.mat_texid.copy()
    model.mat_texid[:] = -1
    try:
        yield
    finally:
        model.mat_texid[:] = saved


def ablation(env: Any, repeats: int, reference: dict[str, np.ndarray]) -> None:
    """Print, at 128 px, each of robosuite's settings switched back on alone on top of ours."""
    model, data = env.env.sim.model._model, env.env.sim.data._data
    lod = MeshLevelOfDetail(model)
    q = LIBERO_QUALITY
    variants: list[tuple[str, dict[str, Any], Callable[[mujoco.MjvScene], None] | None]] = [
        ("ours again (noise floor)", {}, None),
        ("+ full meshes", {"upload_edits": None}, None),
        ("+ collision geoms (group 0)", {"geomgroups": (0, *LIBERO_GEOMGROUPS)}, None),
        ("+ 4096 px shadow map", {"quality": replace(q, shadowsize=4096, shadows=True)}, None),
        ("+ 4x MSAA", {"quality": replace(q, offsamples=4)}, None),
        ("- reflections", {"quality": replace(q, reflections=False)}, None),
        ("+ skybox", {"quality": replace(q, skybox=True)}, None),
        ("- textures", {"upload_edits": lambda: _both(lod.applied(), no_textures(model))}, None),
        ("- scene lights (headlight only)", {}, _headlight_only),
    ]
    print(
        "\nablation at 128 px: ms per frame of the variant / of ours in the same alternating run,"
        " and mean |diff| to ours (0-255)"
    )
    print(f"{'variant':34s}" + "".join(f"{c:>30s}" for c in LIBERO_CAMERAS))
    ours = {
        camera: CameraRenderer(model, data, camera, 128, 128, **base_kwargs(lod))
        for camera in LIBERO_CAMERAS
    }
    for name, overrides, hook in variants:
        kwargs = base_kwargs(lod)
        kwargs.update(overrides)
        cells = []
        for camera in LIBERO_CAMERAS:
            with CameraRenderer(model, data, camera, 128, 128, **kwargs) as cam:
                ms = alternating_medians(
                    {"variant": functools.partial(cam.render, hook), "ours": ours[camera].render},
                    repeats,
                )
                diff = np.abs(cam.render(hook).astype(int) - reference[camera]).mean()
            cells.append(f"{ms['variant']:7.1f} / {ms['ours']:4.1f} ms  |d|={diff:5.1f}")
        print(f"{name:34s}" + "".join(f"{c:>30s}" for c in cells))
    for cam in ours.values():
        cam.close()


def base_kwargs(lod: MeshLevelOfDetail) -> dict[str, Any]:
    """The keyword arguments libero_camera_renderers gives each CameraRenderer."""
    return {
        "quality": LIBERO_QUALITY,
        "geomgroups": LIBERO_GEOMGROUPS,
        "rotate": False,
        "upload_edits": lod.applied,
    }


@contextmanager
def _both(first: Any, second: Any) -> Iterator[None]:
    """Enter two context managers."""
    with first, second:
        yield


def _headlight_only(scene: mujoco.MjvScene) -> None:
    """Keep only the first light of the scene, the headlight."""
    scene.nlight = min(scene.nlight, 1)


def write_png(path: Path, rows: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """Write ``before | after`` per camera, scaled 2x (nearest), with a label strip."""
    from PIL import Image, ImageDraw

    scale, strip = 2, 16
    h, w = rows[0][1].shape[:2]
    canvas = Image.new("RGB", (2 * w * scale, len(rows) * (h * scale + strip)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (camera, before, after) in enumerate(rows):
        y = r * (h * scale + strip)
        for c, (label, image) in enumerate((("before (robosuite)", before), ("after", after))):
            big = Image.fromarray(image).resize((w * scale, h * scale), Image.Resampling.NEAREST)
            canvas.paste(big, (c * w * scale, y + strip))
            draw.text((c * w * scale + 4, y + 2), f"{camera}: {label}", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def main() -> None:
    """Time before and after per camera and size, print the table, optionally the ablation."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--task", type=int, default=0)
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 64, 224])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--max-faces", type=int, default=DEFAULT_MAX_FACES)
    p.add_argument("--ablation", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()

    env = make_env(a.suite, a.task)
    model, data = env.env.sim.model._model, env.env.sim.data._data
    t0 = time.perf_counter()
    lod = MeshLevelOfDetail(model, a.max_faces)
    t_lod = time.perf_counter() - t0
    print(
        f"{a.suite} task {a.task}: mesh triangles {lod.faces_before} -> {lod.faces_after} "
        f"(max {a.max_faces} per mesh; decimated in {t_lod:.2f} s, cached per model)"
    )
    print(f"median of {a.repeats} frames each, ms per frame (|d|: mean abs pixel diff, 0-255)")
    print(f"{'camera':20s}{'size':>6s}{'before':>10s}{'after':>10s}{'speedup':>9s}{'|d|':>7s}")
    before_frames: dict[tuple[str, int], np.ndarray] = {}
    after_frames: dict[tuple[str, int], np.ndarray] = {}
    for size in a.sizes:
        t0 = time.perf_counter()
        cams = libero_camera_renderers(model, data, (size, size), max_faces=a.max_faces)
        t_make = time.perf_counter() - t0
        for camera, cam in cams.items():
            ms = alternating_medians(
                {
                    "before": functools.partial(robosuite_frame, env, camera, size),
                    "after": cam.render,
                },
                a.repeats,
            )
            before_ms, after_ms = ms["before"], ms["after"]
            before_frames[camera, size] = robosuite_frame(env, camera, size)
            after_frames[camera, size] = cam.render()
            diff = np.abs(after_frames[camera, size].astype(int) - before_frames[camera, size])
            print(
                f"{camera:20s}{size:6d}{before_ms:10.1f}{after_ms:10.1f}"
                f"{before_ms / after_ms:8.1f}x{diff.mean():7.1f}"
            )
            cam.close()
        print(f"{'':20s}{size:6d}  (both renderers created in {t_make:.2f} s)")

    if a.ablation:
        ablation(env, a.repeats, {c: after_frames[c, 128] for c in LIBERO_CAMERAS})
    if a.out is not None:
        size = 128 if 128 in a.sizes else a.sizes[0]
        rows = [(c, before_frames[c, size], after_frames[c, size]) for c in LIBERO_CAMERAS]
        write_png(a.out, rows)
        print(f"\nwrote {a.out}")
    env.close()


if __name__ == "__main__":
    main()
