"""Every ```python block of README.md and docs/*.md runs as written, so the examples cannot rot.

Each file's blocks run in order in one namespace (a later block may use an earlier one's names,
as a reader following the page would), in a fresh temporary working directory, with MuJoCo on
EGL and W&B off. A block that cannot run here by nature (it needs a GPU, a user's checkpoint, a
running server or the network) is marked in the doc, and says why there: either with the info
string ```python no-run or with an ``<!-- no-run -->`` comment on the line before the fence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
NO_RUN = "no-run"
SLOW = {"docs/videos.md", "docs/libero_rendering.md"}
"""Docs whose blocks take more than a few seconds (they render MuJoCo frames or encode video)."""

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,}|~{3,})(?P<info>.*)$")
_NO_RUN_COMMENT = re.compile(r"^\s*<!--\s*no-run\b.*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts (1-based line of its first code line) and its text."""

    line: int
    lang: str
    code: str
    no_run: bool


def fenced_blocks(text: str) -> list[Block]:
    """Return every fenced block of a Markdown text, with its language and no-run marker.

    A fence closes on the same character repeated at least as often (CommonMark), so a block
    showing a shorter fence is kept whole; an indented fence (inside a list item) is dedented.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        ticks, indent = m["ticks"], len(m["indent"])
        words = m["info"].split()
        lang = words[0].lower() if words else ""
        prev = next((s for s in reversed(lines[:i]) if s.strip()), "")
        no_run = NO_RUN in words[1:] or bool(_NO_RUN_COMMENT.match(prev))
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            close = _FENCE.match(lines[j])
            if close and close["ticks"][0] == ticks[0] and len(close["ticks"]) >= len(ticks) \
                    and not close["info"].strip():
                break
            line = lines[j]
            body.append(line[indent:] if not line[:indent].strip() else line.lstrip())
            j += 1
        blocks.append(Block(i + 2, lang, "\n".join(body) + "\n", no_run))
        i = j + 1
    return blocks


def python_blocks(path: Path) -> list[Block]:
    """The ```python (or ```py) blocks of one doc, in page order."""
    return [b for b in fenced_blocks(path.read_text()) if b.lang in ("python", "py", "python3")]


def _doc_params() -> list[object]:
    params: list[object] = []
    for path in DOCS:
        if not python_blocks(path):
            continue
        rel = path.relative_to(ROOT).as_posix()
        marks = [pytest.mark.slow] if rel in SLOW else []
        params.append(pytest.param(path, id=rel, marks=marks))
    return params


@pytest.mark.parametrize("path", _doc_params())
def test_python_blocks_run_as_written(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the doc's blocks in order in one namespace; a failure names the doc and its line."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUJOCO_GL", "egl")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("RAPID_SERVE_TOKEN", raising=False)
    rel = path.relative_to(ROOT).as_posix()
    namespace: dict[str, object] = {"__name__": "__main__"}  # as a reader pasting it would run it
    for block in python_blocks(path):
        if block.no_run:
            continue
        # padded so a traceback's line numbers are the doc's own
        code = compile("\n" * (block.line - 1) + block.code, str(path), "exec")
        try:
            exec(code, namespace)  # noqa: S102 - the docs are this repository's own files
        except Exception as exc:
            raise AssertionError(f"{rel}: the python block at line {block.line} fails: "
                                 f"{type(exc).__name__}: {exc}") from exc


def test_fences_are_parsed_with_language_and_marker() -> None:
    """The extractor finds languages, the no-run markers and an indented block's dedented body."""
    text = "\n".join([
        "intro", "```python", "a = 1", "```",
        "<!-- no-run: needs a GPU -->", "", "```python", "gpu()", "```",
        "```python no-run", "net()", "```",
        "- item", "  ```bash", "  ls", "  ```",
        "````python", "```", "b = 2", "````",
    ])
    blocks = fenced_blocks(text)
    assert [(b.lang, b.no_run, b.line) for b in blocks] == [
        ("python", False, 3), ("python", True, 8), ("python", True, 11), ("bash", False, 15),
        ("python", False, 18),
    ]
    assert blocks[3].code == "ls\n"
    assert blocks[4].code == "```\nb = 2\n"


def test_every_doc_with_python_is_collected() -> None:
    """The docs hold runnable examples at all, and no block is marked without a reason nearby."""
    assert _doc_params(), "no ```python block found in README.md or docs/*.md"
    for path in DOCS:
        text = path.read_text()
        for m in re.finditer(r"<!--\s*no-run\s*(?P<why>[^>]*)-->", text):
            assert m["why"].strip(" :-"), f"{path.name}: a <!-- no-run --> comment gives no reason"
