"""Fast, right-way-up camera images of a LIBERO (robosuite) scene for the VLA controller.

Why this module exists: robosuite's own offscreen render (what LIBERO's ``OffScreenRenderEnv``
puts in its observations) costs 40-100 ms per 128 px frame on a machine without a GPU, where EGL
runs on Mesa's software rasterizer. Measured on such a machine (``benchmarks/
bench_libero_frame.py``, see ``docs/libero_rendering.md``), almost all of that time is vertex work,
not pixels: LIBERO's object scans and the Panda's visual meshes hold ~300,000 triangles, and the
software rasterizer shades every vertex on one thread for each light. Shadows, multi-sample
anti-aliasing, reflections and the 640x480 offscreen buffer add the rest.

So a LIBERO camera is rendered here by :class:`~rapid_env.tasks.rendering.CameraRenderer` with:

* only robosuite's visual geom groups drawn (:data:`LIBERO_GEOMGROUPS`): the collision geoms of
  group 0 double the triangle count and robosuite never shows them either;
* a light look (:data:`LIBERO_QUALITY`): no shadow map, MSAA or skybox. LIBERO's lights cast no
  shadows, so the shadow map was pure cost, and the walls hide the sky. Reflections stay: some
  objects (the stove's base, a box with a reflective material) owe their colour to them, and
  they cost only in scenes that have such a box or plane (one more pass each);
* a lighter level of detail of every mesh with more than ``max_faces`` triangles, with no detail
  coarser than a centimetre (:class:`MeshLevelOfDetail`), uploaded to the GL context only. At
  128 px an object is 10-30 px wide and a 66,000-triangle basket looks nearly the same with
  2,000 (its woven walls a little lighter). The model's physics never sees it:
  the faces are swapped into ``model`` only while the GL context is created (when MuJoCo copies
  meshes to the renderer) and restored right after.

Objects keep their textures and colours, the basket, plate and targets their shape, and the
gripper is drawn in full; the before/after frames are in ``docs/media/libero_frames.png``.

Orientation: :class:`mujoco.Renderer` returns images top row first, i.e. as the pinhole camera
sees them, so both cameras come out right way up with no rotation (the table and floor below,
the gripper fingers at the bottom of the wrist view). robosuite's raw observation images are the
GL buffer bottom row first (upside down); LIBERO/OpenVLA pipelines turn them with
``img[::-1, ::-1]``, which is the camera's view mirrored left-right. A policy trained on such data
gets that view from :func:`openvla_view`.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from rapid_env.tasks.rendering import CameraRenderer, RenderQuality  # noqa: E402

__all__ = [
    "DEFAULT_MAX_FACES",
    "LIBERO_CAMERAS",
    "LIBERO_GEOMGROUPS",
    "LIBERO_QUALITY",
    "MAX_CELL",
    "MeshLevelOfDetail",
    "decimate_mesh",
    "libero_camera_renderers",
    "openvla_view",
]

LIBERO_CAMERAS: tuple[str, ...] = ("agentview", "robot0_eye_in_hand")
"""The two cameras of LIBERO's observations: the scene from the front, and the wrist view."""

LIBERO_GEOMGROUPS: tuple[int, ...] = (1, 2)
"""Geom groups robosuite's offscreen renderer draws (its ``geomgroup`` is ``[0, 1, 1, 0, 0, 0]``):
visual meshes are in group 1, collision geoms in group 0."""

LIBERO_QUALITY = RenderQuality(
    shadowsize=0, offsamples=0, shadows=False, reflections=True, skybox=False
)
"""No shadow map, MSAA or skybox; reflections kept (see the module docstring)."""

DEFAULT_MAX_FACES = 2000
"""Triangles per mesh above which a mesh is drawn at a lighter level of detail. At 128 px the
mean absolute difference to the full meshes is ~2-3 grey levels out of 255 (measured)."""

MAX_CELL = 0.01
"""Largest vertex-clustering cell in metres: about a pixel of agentview at 128 px. Coarser cells
on LIBERO-10's 1.8 m table left long slivers across the image (measured)."""

_MIN_MAX_FACES = 100


@dataclass(frozen=True)
class _LighterMesh:
    """The faces of one mesh at a lighter level of detail, in the model's own index spaces."""

    mesh_id: int
    face: np.ndarray
    facenormal: np.ndarray
    facetexcoord: np.ndarray | None


def _check_max_faces(max_faces: object) -> int:
    """Return ``max_faces`` if it is an int >= 100, else raise naming the value."""
    if (
        isinstance(max_faces, bool)
        or not isinstance(max_faces, int | np.integer)
        or max_faces < _MIN_MAX_FACES
    ):
        raise ValueError(f"max_faces must be an int >= {_MIN_MAX_FACES}, got {max_faces!r}")
    return int(max_faces)


def _cluster(vertices: np.ndarray, faces: np.ndarray, cells: int) -> np.ndarray:
    """Indices of the faces that survive vertex clustering on a ``cells``-per-side grid.

    Returns an ``(k, 4)`` int64 array: column 0 is the surviving face's index in ``faces``,
    columns 1-3 its corners moved to their cluster's representative vertex.
    """
    low = vertices.min(axis=0)
    extent = float((vertices.max(axis=0) - low).max()) or 1.0
    cell = np.floor((vertices - low) * (cells / extent)).astype(np.int64)
    side = cells + 2
    key = (cell[:, 0] * side + cell[:, 1]) * side + cell[:, 2]
    _, cluster = np.unique(key, return_inverse=True)
    n_clusters = int(cluster.max()) + 1
    count = np.bincount(cluster, minlength=n_clusters).astype(np.float64)
    mean = (
        np.stack([np.bincount(cluster, vertices[:, i], n_clusters) for i in range(3)], axis=1)
        / count[:, None]
    )
    # The representative of a cluster is its member nearest the cluster's mean: a real vertex,
    # so its normal and texture coordinates stay meaningful.
    distance = ((vertices - mean[cluster]) ** 2).sum(axis=1)
    order = np.lexsort((distance, cluster))
    first = np.ones(order.size, dtype=bool)
    first[1:] = cluster[order][1:] != cluster[order][:-1]
    representative = np.empty(n_clusters, dtype=np.int64)
    representative[cluster[order][first]] = order[first]
    moved = representative[cluster[faces]]
    keep = (
        (moved[:, 0] != moved[:, 1]) & (moved[:, 1] != moved[:, 2]) & (moved[:, 0] != moved[:, 2])
    )
    index = np.nonzero(keep)[0]
    corners = np.sort(moved[index], axis=1)
    n = np.int64(vertices.shape[0])
    _, unique = np.unique(
        (corners[:, 0] * n + corners[:, 1]) * n + corners[:, 2], return_index=True
    )
    index = index[np.sort(unique)]
    return np.column_stack([index, moved[index]])


def decimate_mesh(
    vertices: np.ndarray, faces: np.ndarray, max_faces: int, max_cell: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a triangle mesh to at most ``max_faces`` faces by vertex clustering.

    Vertices are snapped to the member nearest the mean of their cell in a uniform grid, and
    faces that collapse or repeat are dropped. No vertex is created or moved, so the result
    indexes the original vertex (and, per kept face, normal and texture-coordinate) arrays and
    can be written into a MuJoCo model in place. The grid is about the finest whose result
    fits.

    Args:
        vertices: ``(nv, 3)`` float vertex positions.
        faces: ``(nf, 3)`` int vertex indices of each triangle.
        max_faces: Upper bound on the number of faces returned (>= 100), unless ``max_cell``
            binds.
        max_cell: If given, the largest grid cell allowed, in the vertices' units: a big mesh
            (a 1.8 m table) reduced to ``max_faces`` would need cells so coarse that its
            collapsed triangles leave long slivers across the image; such a mesh keeps as many
            faces as cells of this size give.

    Returns:
        ``(new_faces, kept)``: the ``(k, 3)`` int32 faces, ``k <= max_faces`` unless
        ``max_cell`` binds, and the ``(k,)``
        indices of the original faces they come from (to carry per-face data over).

    Raises:
        ValueError: If ``max_faces`` is not an int >= 100.
    """
    max_faces = _check_max_faces(max_faces)
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.shape[0] <= max_faces:
        return faces.astype(np.int32), np.arange(faces.shape[0])
    # The face count grows with the square of the grid resolution: measure a coarse grid, jump
    # to the resolution that should just fit, then step down while the result is too big.
    min_cells = 1
    if max_cell is not None:
        if not max_cell > 0:
            raise ValueError(f"max_cell must be a positive length, got {max_cell!r}")
        extent = float((vertices.max(axis=0) - vertices.min(axis=0)).max())
        min_cells = max(1, int(np.ceil(extent / max_cell)))
    cells = max(32, min_cells)
    result = _cluster(vertices, faces, cells)
    cells = max(min_cells, int(cells * np.sqrt(max_faces / max(result.shape[0], 1)) * 0.97))
    result = _cluster(vertices, faces, cells)
    while result.shape[0] > max_faces and cells > min_cells:
        shrink = int(cells * np.sqrt(max_faces / result.shape[0]) * 0.97)
        cells = max(min_cells, min(cells - 1, shrink))
        result = _cluster(vertices, faces, cells)
    return result[:, 1:].astype(np.int32), result[:, 0]


# A few models' lighter meshes, keyed by a digest of the mesh data: robosuite's hard reset
# rebuilds an identical model on every ``reset()``, and decimating LIBERO's meshes takes ~0.2 s.
_CACHE: OrderedDict[bytes, tuple[_LighterMesh, ...]] = OrderedDict()
_CACHE_SIZE = 16


def _mesh_digest(model: mujoco.MjModel, max_faces: int) -> bytes:
    """A digest of everything the lighter meshes depend on."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(str(max_faces).encode())
    for array in (
        model.mesh_vertadr,
        model.mesh_vertnum,
        model.mesh_faceadr,
        model.mesh_facenum,
        model.mesh_texcoordnum,
        model.mesh_vert,
        model.mesh_face,
        model.mesh_facenormal,
        model.mesh_facetexcoord,
    ):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.digest()


def _lighter_meshes(model: mujoco.MjModel, max_faces: int) -> tuple[_LighterMesh, ...]:
    """Decimate every mesh of ``model`` with more than ``max_faces`` faces."""
    meshes = []
    for mesh_id in range(model.nmesh):
        n_faces = int(model.mesh_facenum[mesh_id])
        if n_faces <= max_faces:
            continue
        vert_adr, n_verts = int(model.mesh_vertadr[mesh_id]), int(model.mesh_vertnum[mesh_id])
        face_adr = int(model.mesh_faceadr[mesh_id])
        faces = slice(face_adr, face_adr + n_faces)
        new_faces, kept = decimate_mesh(
            model.mesh_vert[vert_adr : vert_adr + n_verts],
            model.mesh_face[faces],
            max_faces,
            max_cell=MAX_CELL,
        )
        textured = int(model.mesh_texcoordnum[mesh_id]) > 0
        meshes.append(
            _LighterMesh(
                mesh_id=mesh_id,
                face=new_faces,
                facenormal=np.array(model.mesh_facenormal[faces][kept]),
                facetexcoord=np.array(model.mesh_facetexcoord[faces][kept]) if textured else None,
            )
        )
    return tuple(meshes)


class MeshLevelOfDetail:
    """A lighter version of a model's big meshes, swapped in only while a GL context is made.

    MuJoCo copies mesh triangles into a renderer's GL context once, when the context is created,
    and never reads them again for drawing. :meth:`applied` writes the lighter faces over the
    start of each big mesh's face arrays and shortens its face count, and restores both on exit,
    so a :class:`CameraRenderer` created inside it draws the light meshes while the model's
    physics, ray casts and every other renderer keep the full ones.

    Example:
        >>> lod = MeshLevelOfDetail(model)  # doctest: +SKIP
        >>> cam = CameraRenderer(model, data, "agentview", 128, 128, upload_edits=lod.applied)
    """

    def __init__(self, model: mujoco.MjModel, max_faces: int = DEFAULT_MAX_FACES) -> None:
        """Decimate (or fetch from the cache) every mesh of ``model`` above ``max_faces``.

        Args:
            model: The MuJoCo model whose meshes are to be drawn lighter.
            max_faces: Triangles per mesh above which a mesh is decimated (int >= 100).

        Raises:
            ValueError: If ``max_faces`` is not an int >= 100.
        """
        self._max_faces = _check_max_faces(max_faces)
        self._model = model
        key = _mesh_digest(model, self._max_faces)
        meshes = _CACHE.get(key)
        if meshes is None:
            meshes = _lighter_meshes(model, self._max_faces)
            _CACHE[key] = meshes
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key)
        self._meshes = meshes

    @property
    def max_faces(self) -> int:
        """Triangles per mesh above which a mesh is decimated."""
        return self._max_faces

    @property
    def faces_before(self) -> int:
        """Triangles of all meshes of the model as it is."""
        return int(np.sum(self._model.mesh_facenum))

    @property
    def faces_after(self) -> int:
        """Triangles of all meshes while :meth:`applied` is in effect."""
        removed = sum(
            int(self._model.mesh_facenum[m.mesh_id]) - m.face.shape[0] for m in self._meshes
        )
        return self.faces_before - removed

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Swap the lighter faces into the model for the duration of the ``with`` block."""
        model = self._model
        saved = []
        try:
            for mesh in self._meshes:
                adr, count = int(model.mesh_faceadr[mesh.mesh_id]), mesh.face.shape[0]
                part = slice(adr, adr + count)
                saved.append(
                    (
                        mesh.mesh_id,
                        int(model.mesh_facenum[mesh.mesh_id]),
                        part,
                        np.array(model.mesh_face[part]),
                        np.array(model.mesh_facenormal[part]),
                        np.array(model.mesh_facetexcoord[part]),
                    )
                )
                model.mesh_face[part] = mesh.face
                model.mesh_facenormal[part] = mesh.facenormal
                if mesh.facetexcoord is not None:
                    model.mesh_facetexcoord[part] = mesh.facetexcoord
                model.mesh_facenum[mesh.mesh_id] = count
            yield
        finally:
            for mesh_id, n_faces, part, face, facenormal, facetexcoord in reversed(saved):
                model.mesh_face[part] = face
                model.mesh_facenormal[part] = facenormal
                model.mesh_facetexcoord[part] = facetexcoord
                model.mesh_facenum[mesh_id] = n_faces


def _check_size(size_hw: object) -> tuple[int, int]:
    """Return ``size_hw`` as ``(height, width)`` of positive ints, else raise naming it."""
    if (
        not isinstance(size_hw, Sequence)
        or len(size_hw) != 2
        or any(
            isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0 for v in size_hw
        )
    ):
        raise ValueError(f"size_hw must be (height, width) of positive ints, got {size_hw!r}")
    return int(size_hw[0]), int(size_hw[1])


def libero_camera_renderers(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    size_hw: tuple[int, int],
    *,
    cameras: Sequence[str] = LIBERO_CAMERAS,
    max_faces: int = DEFAULT_MAX_FACES,
    reflections: bool = True,
) -> dict[str, CameraRenderer]:
    """One fast, right-way-up :class:`CameraRenderer` per LIBERO camera of a robosuite scene.

    The renderers read ``data`` at each ``render()``. A robosuite ``hard_reset`` replaces the
    model and data at every ``reset()``: close these renderers and call this again then (the
    lighter meshes come from a cache, so only the GL contexts are rebuilt).

    Args:
        model: The scene's raw ``mujoco.MjModel`` (robosuite: ``env.sim.model._model``).
        data: Its raw ``mujoco.MjData`` (``env.sim.data._data``).
        size_hw: ``(height, width)`` of every image, positive ints.
        cameras: Names of model cameras to render; LIBERO's two by default.
        max_faces: Triangles per mesh above which a mesh is drawn lighter (int >= 100).
        reflections: Whether reflective boxes and planes reflect (:data:`LIBERO_QUALITY`). Off,
            a scene that has one (LIBERO-Spatial's stove) renders in about half the time, but
            such an object loses the colour robosuite shows it in (the white stove turns grey).

    Returns:
        ``{camera: renderer}`` in the order of ``cameras``; close each when done.

    Raises:
        ValueError: On a bad size or ``max_faces`` (naming the value) or an unknown camera
            (listing the model's cameras).
    """
    height, width = _check_size(size_hw)
    if not isinstance(reflections, bool):
        raise ValueError(f"reflections must be True or False, got {reflections!r}")
    quality = replace(LIBERO_QUALITY, reflections=reflections)
    lod = MeshLevelOfDetail(model, max_faces)
    renderers: dict[str, CameraRenderer] = {}
    try:
        for camera in cameras:
            renderers[camera] = CameraRenderer(
                model,
                data,
                camera,
                width,
                height,
                quality=quality,
                geomgroups=LIBERO_GEOMGROUPS,
                rotate=False,
                upload_edits=lod.applied,
            )
    except BaseException:
        for renderer in renderers.values():
            renderer.close()
        raise
    return renderers


def openvla_view(image: np.ndarray) -> np.ndarray:
    """The camera image as LIBERO/OpenVLA datasets present it: mirrored left-right.

    Those pipelines take robosuite's raw (bottom-row-first) image and apply ``[::-1, ::-1]``;
    on our upright image that is a left-right mirror. Use this only for a policy trained on such
    data.
    """
    return np.ascontiguousarray(image[:, ::-1])
