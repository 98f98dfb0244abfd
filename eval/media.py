"""Episode media: a video of what the policy saw with what happened drawn under it, and its series.

``rapid-eval --videos N`` records the first N seeds of every cell. The worker that runs such an
episode (any backend: in-process, local worker processes, Ray on this machine) writes, under
``OUT/videos/<task>/<agent>/<noise>/<link>/`` (names made file-safe by :func:`safe_name`):

* ``seed<k>.mp4``: one frame per control tick plus the last state, at the control rate; each frame
  is the policy's noisy camera frame, upscaled (nearest neighbour) to about 256 px, over a strip
  that shows the time, buffer fill, requests in flight, the link's bandwidth (true and as the robot
  estimates it), and timelines of decisions (request / preempt / refused), chunk arrivals, losses,
  stalls and, for RAPID, the importance score against its two thresholds (else the bandwidth);
  the last frame says SUCCESS or FAIL. Without an ffmpeg binary it is ``seed<k>.gif``;
* ``seed<k>.series.json``: the per-tick trace (:class:`rapid_env.trace.EpisodeTrace`) as
  ``{"meta": ..., "series": {field: [value per tick]}}``;
* ``seed<k>.png``: one composited frame for a report (the first preemption, else mid-episode).

How the paths reach the main process: the record itself. The job carries the media folder
(:class:`RecordedJob`, made by :func:`with_media` in :func:`rapid_env.eval.runner.run_sweep`), so
every backend passes it through untouched; the worker writes the files and returns the record with
a field ``media`` = ``{"video", "series", "still"}``: paths relative to ``OUT`` (the media folder's
parent). :func:`media_for` turns a record into absolute paths (falling back to the fixed layout
for a record without the field). A failure to write media never fails the episode: the record
then has ``media_error`` instead. The record's other fields are exactly those of an episode run
without media (the trace only reads, and its frames are peeked without touching the noise stream).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rapid_env.eval.jobs import EpisodeJob, SweepSpec

if TYPE_CHECKING:
    from rapid_env.trace import EpisodeTrace

__all__ = [
    "MEDIA_DIR", "MEDIA_FIELD", "compose_frame", "load_series", "media_for",
    "media_paths", "safe_name", "with_media", "write_media", "write_video",
]

MEDIA_DIR = "videos"
"""The media folder's name inside ``OUT``."""

MEDIA_FIELD = "media"
"""The record field that holds the media paths (relative to ``OUT``)."""

TARGET_PX = 256
"""Frames are upscaled by an integer factor to about this width."""

STRIP_PX = 80
"""Height of the overlay strip under the image."""

COLOURS = {
    "request": (70, 140, 255),
    "preempt": (255, 60, 60),
    "refused": (150, 150, 150),
    "arrive": (60, 220, 90),
    "lost": (220, 60, 220),
    "stall": (255, 160, 30),
    "fault": (255, 255, 0),
    "score": (255, 255, 255),
    "high": (255, 60, 60),
    "low": (255, 210, 60),
    "bandwidth": (90, 200, 255),
    "estimate": (200, 200, 200),
    "text": (235, 235, 235),
    "dim": (150, 150, 150),
    "success": (60, 220, 90),
    "fail": (255, 80, 80),
    "bg": (20, 20, 24),
    "band": (38, 38, 44),
}
"""Overlay colours (RGB); ``docs/videos.md`` has the legend."""


# ---------------------------------------------------------------------- jobs and paths
def with_media(
    jobs: Sequence[EpisodeJob], spec: SweepSpec, videos: int, media_dir: Path
) -> list[EpisodeJob]:
    """``jobs`` with the first ``videos`` seeds of every cell given the ``media_dir`` option."""
    if videos < 0:
        raise ValueError(f"--videos {videos} must be >= 0")
    if videos == 0:
        return list(jobs)
    root = str(Path(media_dir).resolve())
    last = spec.seed + videos
    return [
        replace(job, media_dir=root) if job.seed < last and not job.media_dir else job
        for job in jobs
    ]


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_MAX_NAME = 80


def safe_name(spec: str) -> str:
    """A file-name form of a spec: runs of ``( ) = , : /`` and other such characters become ``_``.

    ``rapid(high_threshold=6)`` -> ``rapid_high_threshold_6``; ``constant:20:40`` ->
    ``constant_20_40``. A name longer than 80 characters is cut and given a digest of the spec, so
    two long trace paths do not collide.
    """
    name = _UNSAFE.sub("_", spec).strip("_") or "_"
    if name in (".", ".."):
        name = "_"
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
        name = f"{name[: _MAX_NAME - 9]}-{digest}"
    return name


def media_paths(media_dir: Path, head: Mapping[str, Any]) -> dict[str, Path]:
    """Where the media of the episode with ``head`` (task, agent, noise, link, seed) go."""
    folder = Path(media_dir).joinpath(
        *(safe_name(str(head[k])) for k in ("task", "agent", "noise", "link"))
    )
    stem = f"seed{int(head['seed'])}"
    return {
        "video": folder / f"{stem}.mp4",
        "series": folder / f"{stem}.series.json",
        "still": folder / f"{stem}.png",
    }


def media_for(record: Mapping[str, Any], out: Path) -> dict[str, Path]:
    """The media files of ``record`` in the results folder ``out``, as absolute paths.

    Keys ``video`` (MP4, or GIF without ffmpeg), ``series`` (JSON, :func:`load_series`) and
    ``still`` (PNG); only files that exist are returned, so ``{}`` means the episode was not
    recorded. Reads the record's ``media`` field; a record without it (stored before, or by
    another process) is looked up in the fixed layout.
    """
    out = Path(out)
    media = record.get(MEDIA_FIELD)
    if isinstance(media, Mapping):
        paths = {str(k): out / str(v) for k, v in media.items() if v}
    else:
        try:
            paths = media_paths(out / MEDIA_DIR, record)
        except (KeyError, TypeError, ValueError):
            return {}
        gif = paths["video"].with_suffix(".gif")
        if not paths["video"].exists() and gif.exists():
            paths["video"] = gif
    return {k: p.resolve() for k, p in paths.items() if p.is_file()}


def load_series(path: Path) -> dict[str, Any]:
    """A series file: ``{"meta": {...}, "series": {field: [value per tick]}}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "series" not in data:
        raise ValueError(f"{path} is not an episode series file")
    return data


# ---------------------------------------------------------------------- writing
def write_media(
    trace: EpisodeTrace, record: Mapping[str, Any], media_dir: Path
) -> dict[str, str]:
    """Write the video, series and still of a traced episode; return the record's ``media``.

    ``trace`` must have been built with ``frames=True``; ``record`` is the episode's record (its
    head names the files). Paths in the answer are POSIX, relative to ``media_dir``'s parent.
    """
    media_dir = Path(media_dir)
    paths = media_paths(media_dir, record)
    paths["video"].parent.mkdir(parents=True, exist_ok=True)
    rows, meta = trace.rows, dict(trace.meta)
    meta.update({k: record.get(k) for k in ("task", "agent", "noise", "link", "seed", "policy",
                                             "success", "time_to_success_s", "steps")})
    fps = float(meta.get("control_hz") or 20.0)
    frames = [compose_frame(trace.frames[k], rows, k, meta) for k in range(len(trace.frames))]
    if not frames:
        raise ValueError("the trace holds no frames (build it with EpisodeTrace(frames=True))")
    video = write_video(frames, paths["video"], fps)
    _atomic_write_text(paths["series"], json.dumps(_json_safe({"meta": meta,
                                                               "series": trace.columns()})))
    still = _still_index(rows, len(frames))
    tmp = paths["still"].with_name(paths["still"].stem + ".part.png")
    Image.fromarray(frames[still]).save(tmp)
    os.replace(tmp, paths["still"])
    base = media_dir.parent
    return {
        "video": video.relative_to(base).as_posix(),
        "series": paths["series"].relative_to(base).as_posix(),
        "still": paths["still"].relative_to(base).as_posix(),
    }


def write_video(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    """Write ``frames`` (uint8 HxWx3, all one size) as an MP4 at ``fps``; GIF without ffmpeg.

    Returns the path written (``path``, or the same name with ``.gif``). The file appears only
    once complete (written under a temporary name, then renamed).
    """
    path = Path(path)
    try:
        import imageio.v2 as iio
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()  # raises when no binary is bundled or installed
    except (ImportError, RuntimeError):
        return _write_gif(frames, path.with_suffix(".gif"), fps)
    tmp = path.with_name(path.stem + ".part.mp4")
    writer = iio.get_writer(
        tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
        pixelformat="yuv420p", macro_block_size=16, ffmpeg_log_level="error",
    )
    try:
        for frame in frames:
            writer.append_data(frame)
    finally:
        writer.close()
    os.replace(tmp, path)
    return path


def _write_gif(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    images = [Image.fromarray(f) for f in frames]
    tmp = path.with_name(path.stem + ".part.gif")
    images[0].save(tmp, save_all=True, append_images=images[1:],
                   duration=max(int(round(1000.0 / fps)), 20), loop=0)
    os.replace(tmp, path)
    return path


def _still_index(rows: Sequence[Mapping[str, Any]], n_frames: int) -> int:
    """The frame just after the first preemption (its mark is drawn then), else the middle one."""
    for i, row in enumerate(rows):
        if row.get("decision") == "preempt":
            return min(i + 1, n_frames - 1)
    return n_frames // 2


# ---------------------------------------------------------------------- drawing
_FONTS: dict[int, Any] = {}


def _font(size: int) -> Any:
    if size not in _FONTS:
        try:
            _FONTS[size] = ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1: the fixed bitmap font
            _FONTS[size] = ImageFont.load_default()
    return _FONTS[size]


def _ceil16(x: int) -> int:
    return -(-x // 16) * 16


def compose_frame(
    frame: np.ndarray, rows: Sequence[Mapping[str, Any]], k: int, meta: Mapping[str, Any]
) -> np.ndarray:
    """Frame ``k`` of the video: ``frame`` upscaled, over the strip of ``rows[:k]``.

    ``frame`` is the camera at the start of tick ``k`` (``k == len(rows)``: after the last tick),
    so the strip shows the ticks that have run so far and a cursor at now. Width and height are
    multiples of 16 (what H.264 in yuv420p wants).
    """
    img = np.asarray(frame, dtype=np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h, w = img.shape[:2]
    scale = max(1, int(round(TARGET_PX / max(w, 1))))
    big = Image.fromarray(img[:, :, :3]).resize((w * scale, h * scale), Image.Resampling.NEAREST)
    width, height = _ceil16(big.width), _ceil16(big.height + STRIP_PX)
    canvas = Image.new("RGB", (width, height), COLOURS["bg"])
    canvas.paste(big, ((width - big.width) // 2, 0))
    draw = ImageDraw.Draw(canvas)
    _draw_strip(draw, rows, k, meta, top=big.height, width=width)
    if k >= len(rows) and rows:
        ok = bool(rows[-1].get("success"))
        _banner(draw, "SUCCESS" if ok else "FAIL", COLOURS["success" if ok else "fail"],
                width, big.height)
    return np.asarray(canvas)


def _banner(draw: ImageDraw.ImageDraw, text: str, colour: tuple[int, int, int], width: int,
            image_h: int) -> None:
    font = _font(28)
    tw = draw.textlength(text, font=font)
    x, y = (width - tw) / 2, image_h / 2 - 16
    draw.rectangle((x - 8, y - 4, x + tw + 8, y + 34), fill=COLOURS["bg"])
    draw.text((x, y), text, fill=colour, font=font)


def _fmt_mbps(value: object) -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        return f"{value:.1f}" if value < 1000 else f"{value:.0f}"
    return "-"


def _draw_strip(
    draw: ImageDraw.ImageDraw, rows: Sequence[Mapping[str, Any]], k: int,
    meta: Mapping[str, Any], top: int, width: int,
) -> None:
    font = _font(10)
    tick_dt = float(meta.get("tick_dt") or 0.05)
    last = rows[k - 1] if 0 < k <= len(rows) else None
    now = k * tick_dt
    buf = last["chunk_remaining"] if last else 0
    fly = last["in_flight"] if last else 0
    line1 = f"t {now:5.2f} s   buffer {buf}   in flight {fly}"
    succ = next((r["t"] + tick_dt for r in rows[:k] if r.get("success")), None)
    draw.text((4, top + 1), line1, fill=COLOURS["text"], font=font)
    if succ is not None:
        draw.text((width - 92, top + 1), f"success {succ:.2f} s", fill=COLOURS["success"],
                  font=font)
    est = last["est_bandwidth_mbps"] if last else meta.get("est_bandwidth_mbps_prior")
    true = None
    if k < len(rows):
        true = rows[k].get("link_bandwidth_mbps")
    elif last:
        true = last.get("link_bandwidth_mbps")
    rtt = last["est_rtt_ms"] if last else meta.get("est_rtt_ms_prior")
    rtt_ms = f"{rtt:.0f}" if isinstance(rtt, int | float) and math.isfinite(rtt) else "-"
    line2 = f"link {_fmt_mbps(true)} Mbps   est {_fmt_mbps(est)} Mbps   rtt {rtt_ms} ms"
    draw.text((4, top + 12), line2, fill=COLOURS["text"], font=font)

    n = max(len(rows), 1)

    def x_of(i: float) -> float:
        return 2 + (width - 4) * i / n

    dec_top, dec_bot = top + 26, top + 42  # decisions
    ev_top, ev_bot = top + 44, top + 52  # arrivals, losses, stalls, faults
    ln_top, ln_bot = top + 55, top + STRIP_PX - 3  # score or bandwidth line
    for y0, y1 in ((dec_top, dec_bot), (ev_top, ev_bot), (ln_top, ln_bot)):
        draw.rectangle((2, y0, width - 3, y1), fill=COLOURS["band"])
    for i, row in enumerate(rows[:k]):
        x0, x1 = x_of(i), x_of(i + 1)
        if row.get("stalled"):
            draw.rectangle((x0, ev_top, max(x1 - 1, x0), ev_bot), fill=COLOURS["stall"])
        kind = row.get("decision")
        if kind in ("request", "preempt", "refused"):
            mark_top = dec_top if kind != "refused" else (dec_top + dec_bot) / 2
            thick = 2 if kind == "preempt" else 1
            draw.line((x0, mark_top, x0, dec_bot), fill=COLOURS[kind], width=thick)
        if row.get("arrived"):
            draw.line((x1, ev_top, x1, ev_bot), fill=COLOURS["arrive"], width=1)
        if row.get("lost"):
            draw.line((x1, ev_top, x1, ev_bot), fill=COLOURS["lost"], width=2)
        if row.get("fault"):
            draw.line((x1, ev_top, x1, ev_bot), fill=COLOURS["fault"], width=2)
    _draw_line_band(draw, rows, k, meta, x_of, ln_top, ln_bot)
    cx = x_of(min(k, len(rows)))
    draw.line((cx, dec_top - 2, cx, ln_bot), fill=COLOURS["text"], width=1)


def _draw_line_band(
    draw: ImageDraw.ImageDraw, rows: Sequence[Mapping[str, Any]], k: int,
    meta: Mapping[str, Any], x_of: Any, y0: int, y1: int,
) -> None:
    """RAPID's importance score with its thresholds; else the link's bandwidth (true and est)."""
    if rows and "score" in rows[0]:
        high = meta.get("high_threshold")
        low = meta.get("low_threshold")
        scores = [r.get("score") or 0.0 for r in rows]
        # thresholds in view: scores above 2.5x the high one are clipped at the top
        top_value = 2.5 * high if isinstance(high, int | float) else max([*scores, 1e-9])
        series = [("score", scores)]
        levels = [(name, v) for name, v in (("high", high), ("low", low))
                  if isinstance(v, int | float)]
    else:
        true = [r.get("link_bandwidth_mbps") for r in rows]
        est = [r.get("est_bandwidth_mbps") for r in rows]
        known = [v for v in (*true, *est) if isinstance(v, int | float)]
        top_value = max([*known, 1e-9]) * 1.1
        series = [("estimate", est), ("bandwidth", true)]
        levels = []

    def y_of(v: float) -> float:
        return y1 - (y1 - y0) * min(max(v / top_value, 0.0), 1.0)

    for name, v in levels:
        draw.line((x_of(0), y_of(v), x_of(len(rows)), y_of(v)), fill=COLOURS[name], width=1)
    for name, values in series:
        pts = [(x_of(i + 0.5), y_of(v)) for i, v in enumerate(values[:k])
               if isinstance(v, int | float)]
        if len(pts) >= 2:
            draw.line(pts, fill=COLOURS[name], width=1)
        elif pts:
            draw.point(pts, fill=COLOURS[name])


# ---------------------------------------------------------------------- helpers
def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
