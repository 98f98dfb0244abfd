"""Fast, right-way-up camera images of a Meta-World v3 scene for the VLA controller.

Why this module exists:

* Meta-World's own ``env.render()`` is tuned for pretty videos: a 4096 px shadow map, 4x
  multi-sample anti-aliasing and a 640x480 offscreen buffer. That costs ~55 ms per frame even
  for a 64 px image, which dominates an evaluation loop that needs one frame per control step.
  :class:`CameraRenderer` owns a :class:`mujoco.Renderer` whose GL context is created with the
  settings of a :class:`RenderQuality` preset and an offscreen buffer the size of the image;
  the ``fast`` preset renders the same camera in a few milliseconds.
* The ``corner*`` cameras of the Meta-World models are rolled by ~180 degrees about their
  viewing axis (their ``up`` axis points towards the floor), so the raw images are upside
  down. A VLA pre-trained on real photographs must see the table below the robot, so every
  image is corrected here, once, for every consumer. See :func:`camera_needs_rotation`.

Nothing in this module touches physics: the quality settings live in ``model.vis`` and in the
renderer's own ``MjvScene``, and none of them is read by ``mj_step``.

Processes. A GL context is not fork-safe: Mesa's software rasterizer (llvmpipe, what EGL runs on
a machine without a GPU) keeps worker threads that a forked child inherits the bookkeeping of but
not the threads, so the child's first frame waits for them forever. Hence:

* once a process has a renderer, a child forked from it refuses to render with a one-line
  ``RuntimeError`` naming the fix, instead of hanging (:func:`_after_fork_in_child`);
* the first renderer of a process makes ``forkserver`` the default ``multiprocessing`` start
  method where the default would be ``fork`` and the program has not chosen one, so that
  ``gym.make_vec(..., vectorization_mode="async")`` and anything else on the default context
  start clean workers (:func:`_no_fork_by_default`). A program that sets a start method first
  keeps it.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import TracebackType

# MuJoCo picks its GL backend when it is first imported. Headless machines (CI, cloud workers)
# have no display, so default to EGL unless the caller already chose a backend. This only
# helps if this module is imported before mujoco (or metaworld); otherwise set MUJOCO_GL.
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

__all__ = [
    "FAST",
    "HIGH",
    "QUALITY_PRESETS",
    "CameraRenderer",
    "RenderQuality",
    "camera_names",
    "camera_needs_rotation",
]


@dataclass(frozen=True)
class RenderQuality:
    """Visual-only render settings that trade image fidelity for speed.

    Attributes:
        shadowsize: Side of the shadow map texture in pixels (``model.vis.quality.shadowsize``);
            0 allocates none. Shadow mapping is the largest single cost of Meta-World's look.
        offsamples: Multi-sample anti-aliasing samples of the offscreen buffer
            (``model.vis.quality.offsamples``); 0 disables MSAA.
        shadows: Whether the ``mjRND_SHADOW`` scene flag is on.
        reflections: Whether the ``mjRND_REFLECTION`` scene flag is on (the reflective floor
            and table need an extra render pass).
        skybox: Whether the ``mjRND_SKYBOX`` scene flag is on.
    """

    shadowsize: int
    offsamples: int
    shadows: bool
    reflections: bool
    skybox: bool


FAST = RenderQuality(shadowsize=0, offsamples=0, shadows=False, reflections=False, skybox=False)
"""Default for evaluation: no shadows, no MSAA, no reflections, no skybox."""

HIGH = RenderQuality(shadowsize=4096, offsamples=4, shadows=True, reflections=True, skybox=True)
"""Close to Meta-World's own ``env.render()`` look (its model's defaults), for videos/figures."""

QUALITY_PRESETS: dict[str, RenderQuality] = {"fast": FAST, "high": HIGH}
"""Named presets accepted by :class:`CameraRenderer`'s ``quality`` argument."""

# A camera whose forward axis is within this angle of vertical has no well-defined roll
# relative to world "up" (e.g. ``topview``); it is never rotated.
_VERTICAL_COS = np.cos(np.deg2rad(5.0))


def camera_names(model: mujoco.MjModel) -> list[str]:
    """Return the names of all cameras defined in ``model``, in id order."""
    return [
        mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) or f"<camera {i}>"
        for i in range(model.ncam)
    ]


def camera_needs_rotation(model: mujoco.MjModel, data: mujoco.MjData, camera_id: int) -> bool:
    """Decide from the camera's pose whether its image must be rotated by 180 degrees.

    MuJoCo cameras look along their local ``-z`` axis with local ``+y`` as image-up. We project
    world ``+z`` onto the image plane and measure its angle to the camera's ``+y``: a roll of
    more than 90 degrees means the floor would appear in the upper half of the image, and a
    180-degree image rotation (not a vertical mirror) is exactly equivalent to rolling the
    pinhole camera by 180 degrees, so left/right stay physically correct. Residual rolls below
    90 degrees (e.g. ``corner3``'s ~8.5 degree tilt) are the camera designer's choice and kept.

    In the Meta-World v3 models this gives: ``corner``, ``corner2``, ``corner3`` and ``corner4``
    need rotation (rolls of 180, 176, -172 and 176 degrees); ``topview`` (looking straight down,
    roll undefined), ``behindGripper`` and ``gripperPOV`` do not.

    Args:
        model: The MuJoCo model.
        data: Its data, read only. If its camera poses were never computed (a fresh
            ``MjData``), they are computed on a scratch copy of the state so ``data`` is untouched.
        camera_id: Index of the camera in ``model``.

    Returns:
        True if the rendered image has to be rotated by 180 degrees to be right way up.
    """
    xmat = np.asarray(data.cam_xmat[camera_id]).reshape(3, 3)
    if not np.any(xmat):
        scratch = mujoco.MjData(model)
        scratch.qpos[:] = data.qpos
        scratch.mocap_pos[:] = data.mocap_pos
        scratch.mocap_quat[:] = data.mocap_quat
        mujoco.mj_kinematics(model, scratch)
        xmat = np.asarray(scratch.cam_xmat[camera_id]).reshape(3, 3)
    right, up, back = xmat[:, 0], xmat[:, 1], xmat[:, 2]
    forward = -back
    world_up = np.array([0.0, 0.0, 1.0])
    if abs(float(forward @ world_up)) > _VERTICAL_COS:
        return False
    projected = world_up - forward * float(forward @ world_up)
    roll = np.arctan2(float(projected @ right), float(projected @ up))
    return bool(abs(roll) > np.pi / 2)


def _check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is a positive int (not bool), else raise naming the value."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


_NUM_GEOMGROUPS = 6  # mjNGROUP


def _scene_option(geomgroups: Sequence[int] | None) -> mujoco.MjvOption | None:
    """An ``MjvOption`` drawing only ``geomgroups``; None keeps the renderer's default option."""
    if geomgroups is None:
        return None
    groups = list(geomgroups)
    for group in groups:
        if isinstance(group, bool) or not isinstance(group, int | np.integer):
            raise ValueError(f"geom group must be an int in 0..5, got {group!r}")
        if not 0 <= group < _NUM_GEOMGROUPS:
            raise ValueError(f"geom group must be an int in 0..5, got {group!r}")
    option = mujoco.MjvOption()
    option.geomgroup[:] = 0
    for group in groups:
        option.geomgroup[int(group)] = 1
    return option


class CameraRenderer:
    """Renders one named model camera to ``uint8`` RGB images of a fixed size, right way up.

    The GL context is created with the preset's shadow-map size, MSAA sample count and an
    offscreen buffer exactly the size of the image: MuJoCo reads those three from ``model.vis``
    only when a context is created. They are written to ``model.vis`` for that moment and the
    previous values are restored right after, so ``model.vis`` is left as it was and other
    renderers of the same model (e.g. Meta-World's own ``env.render()``) are unaffected. The
    shadow/reflection/skybox switches are flags of this renderer's own scene. All of these are
    visual-only; ``mj_step`` never reads them.

    Whether the image is rotated by 180 degrees is decided once, at construction, from the
    camera's pose (see :func:`camera_needs_rotation`); Meta-World cameras are either fixed in
    the world or attached to the hand, whose orientation the mocap controller holds constant.

    Example:
        >>> cam = CameraRenderer(env.model, env.data, "corner2", 64, 64)  # doctest: +SKIP
        >>> frame = cam.render()  # (64, 64, 3) uint8 of the current env.data state
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        camera: str,
        width: int,
        height: int,
        quality: str | RenderQuality = "fast",
        *,
        geomgroups: Sequence[int] | None = None,
        rotate: bool | None = None,
        upload_edits: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        """Create the renderer.

        Args:
            model: MuJoCo model of the scene (e.g. ``env.model``).
            data: MuJoCo data that :meth:`render` reads the current state from (``env.data``).
            camera: Name of a camera defined in ``model``.
            width: Image width in pixels (positive int).
            height: Image height in pixels (positive int).
            quality: Key of :data:`QUALITY_PRESETS`, or a :class:`RenderQuality` of the
                caller's own (another task suite's look).
            geomgroups: The geom groups to draw (each in 0..5); None draws MuJoCo's default
                groups 0, 1 and 2. Suites that keep invisible collision geoms in a group of
                their own (robosuite: group 0) name only their visual groups, as their own
                renderer does.
            rotate: Whether to rotate every image by 180 degrees; None decides from the
                camera's pose (:func:`camera_needs_rotation`), which is right only for cameras
                whose roll never changes. A camera on a hand that turns needs a fixed answer.
            upload_edits: Called once, around the GL context's creation: a context manager
                that may edit visual-only parts of ``model`` that MuJoCo reads only then (mesh
                faces, textures) and must restore them on exit, e.g. a lighter mesh level of
                detail for a software renderer. None uploads the model as it is.

        Raises:
            ValueError: On an unknown camera (the message lists the model's cameras), a
                non-positive or non-int size (naming the value), an unknown quality preset
                (listing the presets) or a geom group outside 0..5.
            RuntimeError: In a child process forked from one that had a GL context (see the
                module docstring).
        """
        names = camera_names(model)
        if not isinstance(camera, str) or camera not in names:
            raise ValueError(f"unknown camera {camera!r}; the model's cameras are {names}")
        self._width = _check_positive_int("width", width)
        self._height = _check_positive_int("height", height)
        if isinstance(quality, RenderQuality):
            self._quality = quality
        elif isinstance(quality, str) and quality in QUALITY_PRESETS:
            self._quality = QUALITY_PRESETS[quality]
        else:
            raise ValueError(f"unknown quality {quality!r}; presets are {sorted(QUALITY_PRESETS)}")
        self._scene_option = _scene_option(geomgroups)
        self._model = model
        self._data = data
        self._camera = camera
        self._camera_id = int(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera))
        if rotate is None:
            self._rotate = camera_needs_rotation(model, data, self._camera_id)
        else:
            self._rotate = bool(rotate)
        if _FORKED_FROM_GL:
            raise RuntimeError(_FORK_MESSAGE)
        with upload_edits() if upload_edits is not None else nullcontext():
            self._renderer: mujoco.Renderer | None = self._make_renderer()
        _LIVE.add(self)
        _close_live_renderers_first_at_exit()
        _no_fork_by_default()

    def _make_renderer(self) -> mujoco.Renderer:
        """Create the ``mujoco.Renderer`` with this preset's context settings, then restore vis."""
        vis = self._model.vis
        saved = (
            vis.quality.shadowsize,
            vis.quality.offsamples,
            vis.global_.offwidth,
            vis.global_.offheight,
        )
        q = self._quality
        vis.quality.shadowsize = q.shadowsize
        vis.quality.offsamples = q.offsamples
        vis.global_.offwidth = self._width
        vis.global_.offheight = self._height
        try:
            renderer = mujoco.Renderer(self._model, height=self._height, width=self._width)
        except mujoco.FatalError as err:
            raise RuntimeError(
                f"could not create an OpenGL context ({err}); MUJOCO_GL is "
                f"{os.environ.get('MUJOCO_GL')!r}. On a headless machine set MUJOCO_GL=egl "
                "(or osmesa) before anything imports mujoco."
            ) from err
        finally:
            (
                vis.quality.shadowsize,
                vis.quality.offsamples,
                vis.global_.offwidth,
                vis.global_.offheight,
            ) = saved
        flags = renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = q.shadows
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = q.reflections
        flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = q.skybox
        return renderer

    @property
    def camera(self) -> str:
        """Name of the rendered camera."""
        return self._camera

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return self._width

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return self._height

    @property
    def quality(self) -> RenderQuality:
        """The preset this renderer was created with."""
        return self._quality

    @property
    def rotated(self) -> bool:
        """Whether images are rotated by 180 degrees to undo the camera's roll."""
        return self._rotate

    def render(self, scene_hook: Callable[[mujoco.MjvScene], None] | None = None) -> np.ndarray:
        """Render the current state of ``data``.

        Args:
            scene_hook: called with the ``MjvScene`` after it is built and before it is drawn; the
                place for visual-only disturbances (lights, camera pose, decor geoms).

        Returns:
            A new C-contiguous ``uint8`` array of shape ``(height, width, 3)``, right way up.
            The caller owns it (it is not overwritten by the next call).

        Raises:
            RuntimeError: If called after :meth:`close`, or in a child process forked after this
                renderer was made (see the module docstring).
        """
        if self._renderer is None:
            if self in _INHERITED:
                raise RuntimeError(_FORK_MESSAGE)
            raise RuntimeError("CameraRenderer.render() called after close()")
        self._renderer.update_scene(
            self._data, camera=self._camera_id, scene_option=self._scene_option
        )
        if scene_hook is not None:
            scene_hook(self._renderer.scene)
        image = self._renderer.render()
        if self._rotate:
            image = np.ascontiguousarray(image[::-1, ::-1])
        return image

    def close(self) -> None:
        """Free the GL context; idempotent. Rendering afterwards raises ``RuntimeError``."""
        _LIVE.discard(self)
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _orphan(self) -> None:
        """Detach the GL renderer without freeing it (in a forked child; see module docstring)."""
        self._inherited_gl = self._renderer
        self._renderer = None

    def __enter__(self) -> CameraRenderer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        _LIVE.discard(self)
        # Best effort: free GL resources if the owner forgot close(); never raise at teardown.
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


# Renderers still open at interpreter exit are closed by an atexit hook: left to the garbage
# collector, mujoco's own Renderer.__del__ runs after EGL has been torn down and prints a screen of
# "Exception ignored" tracebacks at the end of every command. mujoco registers its own exit hook
# (``eglTerminate``) when it creates the process's first EGL context, and exit hooks run last
# registered first, so ours is registered after the first context exists, never at import.
_LIVE: weakref.WeakSet[CameraRenderer] = weakref.WeakSet()
_AT_EXIT_REGISTERED = False


def _close_live_renderers() -> None:
    """Close every renderer still open (an exit hook; see above)."""
    for renderer in list(_LIVE):
        try:
            renderer.close()
        except Exception:  # noqa: BLE001
            pass


def _close_live_renderers_first_at_exit() -> None:
    """Register :func:`_close_live_renderers` once, after mujoco's ``eglTerminate`` hook."""
    global _AT_EXIT_REGISTERED
    if not _AT_EXIT_REGISTERED:
        atexit.register(_close_live_renderers)
        _AT_EXIT_REGISTERED = True


# ---------------------------------------------------------------- processes (module docstring)
_FORK_MESSAGE = (
    "this process was forked from one that had already created an OpenGL renderer, and rendering "
    "here would hang (the GL driver's threads were not forked); start worker processes with "
    "'forkserver' or 'spawn' instead: gym.make_vec(..., vector_kwargs={'context': 'spawn'}), "
    "SubprocVecEnv(..., start_method='forkserver'), multiprocessing.get_context('spawn')"
)
_FORKED_FROM_GL = False
_INHERITED: list[CameraRenderer] = []
"""Renderers this forked child inherited; held so that they are never freed here."""


def _egl_display_exists() -> bool:
    """Whether mujoco has initialised an EGL display in this process (never imports it)."""
    egl = sys.modules.get("mujoco.egl")
    return egl is not None and getattr(egl, "EGL_DISPLAY", None) is not None


def _after_fork_in_child() -> None:
    """Mark a child forked from a process with GL state (an ``os.register_at_fork`` hook).

    Its inherited renderers are detached and kept alive, never freed (freeing would touch the
    parent's driver state from here and can hang too), and new ones refuse to start.
    """
    global _FORKED_FROM_GL
    if not (_LIVE or _egl_display_exists()):
        return
    _FORKED_FROM_GL = True
    for renderer in list(_LIVE):
        _INHERITED.append(renderer)
        renderer._orphan()
    _LIVE.clear()


def _fork_is_the_default() -> bool:
    """Whether ``multiprocessing``'s platform default start method is ``fork``.

    Read from the platform rule rather than ``multiprocessing.get_start_method()``, which would fix
    the method for the rest of the program as a side effect.
    """
    return sys.platform not in ("darwin", "win32") and sys.version_info < (3, 14)


def _no_fork_by_default() -> None:
    """Make ``forkserver`` the default start method if the default would fork and none is set."""
    if (
        _fork_is_the_default()
        and multiprocessing.get_start_method(allow_none=True) is None
        and "forkserver" in multiprocessing.get_all_start_methods()
        and multiprocessing.parent_process() is None  # workers inherit their parent's choice
    ):
        multiprocessing.set_start_method("forkserver")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
