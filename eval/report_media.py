"""The report's videos and stills: every recorded file reachable, in sweep order, captioned.

Every episode recorded with ``rapid-eval --videos N`` gets one figure: its video, captioned
``task / agent / noise / link / seed / success``, with links to its still and its per-tick series.
Episodes come in the sweep's cell order, then by seed, so a reader finds a cell's videos
together (not in the alphabetical order of file names, where ``seed1000`` of every cell comes
before ``seed1001`` of any). Files the records do not name (an older store, a run whose records
were lost, ``OUT/frames/``) follow, by path.

Nothing is dropped: a file is embedded as a data URI while it is at most
:data:`MAX_EMBED_BYTES` and the page's media stay within :data:`MAX_EMBED_TOTAL`; every other
file is linked relative to the report (it stays next to it). Every figure links its file by its
relative path, embedded or not.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapid_env.eval.media import MEDIA_DIR, media_for

__all__ = ["MAX_EMBED_BYTES", "MAX_EMBED_TOTAL", "MediaItem", "media_html", "media_items"]

MAX_EMBED_BYTES = 5 * 1024 * 1024
"""A file up to this size may be embedded as a data URI; a larger one is linked."""
MAX_EMBED_TOTAL = 40 * 1024 * 1024
"""The page embeds media up to this many bytes in all (in order); later files are linked."""

_MIME = {".gif": "image/gif", ".png": "image/png", ".mp4": "video/mp4"}
_VIDEO = (".mp4", ".gif")


@dataclass(frozen=True)
class MediaItem:
    """One figure of the gallery: a video (or a still) and what it shows."""

    path: Path
    """The file (absolute)."""
    caption: str
    """``task / agent / noise / link / seed N / success|fail``, or the relative path."""
    extras: tuple[tuple[str, Path], ...] = ()
    """Related files linked under it: ``("still", path)``, ``("series", path)``."""


def _caption(record: Mapping[str, Any]) -> str:
    cell = " / ".join(str(record.get(k)) for k in ("task", "agent", "noise", "link"))
    outcome = "success" if record.get("success") is True else "fail"
    return f"{cell} / seed {record.get('seed')} / {outcome}"


def _files(out: Path, folder: str, suffixes: tuple[str, ...]) -> list[Path]:
    root = out / folder
    if not root.is_dir():
        return []
    return sorted(p.resolve() for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in suffixes)


def media_items(
    out: Path, records: Sequence[Mapping[str, Any]],
    rank: Callable[[Mapping[str, Any]], tuple[int, ...]],
) -> list[MediaItem]:
    """Every video and still under ``out``: recorded episodes first, by ``rank`` then seed.

    Args:
        out: the results folder.
        records: the sweep's records (their ``media`` field, or the fixed layout, names files).
        rank: a record's cell position in the sweep (what the summary table is sorted by).
    """
    def order(r: Mapping[str, Any]) -> tuple[Any, ...]:
        seed = r.get("seed")
        return (*rank(r), seed if isinstance(seed, int) else 0)

    root = out.resolve()
    items: list[MediaItem] = []
    named: set[Path] = set()
    for record in sorted(records, key=order):
        paths = {k: p for k, p in media_for(record, out).items() if p.is_relative_to(root)}
        main = paths.get("video") or paths.get("still")
        if main is None or main in named:
            continue
        extras = tuple((k, p) for k, p in sorted(paths.items()) if p != main)
        items.append(MediaItem(main, _caption(record), extras))
        named.update(paths.values())
    for path in (*_files(out, MEDIA_DIR, _VIDEO), *_files(out, MEDIA_DIR, (".png",)),
                 *_files(out, "frames", (".png",))):
        if path not in named:
            items.append(MediaItem(path, path.relative_to(root).as_posix()))
            named.add(path)
    return items


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _tag(path: Path, rel: str, embed: bool) -> str:
    """The ``<video>`` or ``<img>`` of an embedded file, or a link to a file left out."""
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    if not embed:
        size = path.stat().st_size / 2**20
        return f'<a class=linked href="{_esc(rel)}">{_esc(path.name)} ({size:.1f} MB, linked)</a>'
    src = f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    if mime == "video/mp4":
        return f'<video controls muted loop preload="metadata" src="{src}"></video>'
    return f'<img src="{src}" alt="{_esc(rel)}">'


def media_html(out: Path, items: Sequence[MediaItem]) -> tuple[str, int]:
    """The gallery's HTML and how many files were linked instead of embedded."""
    root = out.resolve()
    budget = MAX_EMBED_TOTAL
    linked = 0
    figures = []
    for item in items:
        rel = item.path.relative_to(root).as_posix()
        size = item.path.stat().st_size
        embed = size <= MAX_EMBED_BYTES and size <= budget
        budget -= size if embed else 0
        linked += not embed
        links = [f'<a href="{_esc(rel)}">{_esc(item.path.suffix.lstrip(".") or "file")}</a>']
        links += [f'<a href="{_esc(p.relative_to(root).as_posix())}">{_esc(k)}</a>'
                  for k, p in item.extras]
        figures.append(f"<figure class=media>{_tag(item.path, rel, embed)}<figcaption>"
                       f"{_esc(item.caption)}<br><small>{' · '.join(links)}</small>"
                       "</figcaption></figure>")
    return "<div class=gallery>" + "".join(figures) + "</div>", linked
