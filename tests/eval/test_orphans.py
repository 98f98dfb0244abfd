"""A ``kill -9`` of ``rapid-eval --workers 2`` leaves no process of its tree behind.

The sweep runs as a real process (the console script's module), long enough to be mid-episode
when the test kills it. The process tree (workers, the ``multiprocessing`` resource tracker) is
read from ``/proc`` with each process's start time, so a pid reused later is not mistaken for a
survivor; a zombie (dead, waiting for PID 1 to reap it) holds no memory and counts as gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SWEEP = ["--tasks", "reach", "--agents", "rapid", "--noise", "clean", "--links", "ideal",
         "--episodes", "40", "--max-episode-s", "5", "--policy", "expert", "--image-size", "32",
         "--wandb", "disabled", "--no-report", "--quiet", "--workers", "2"]
START_GUARD_S = 300.0
"""How long the workers may take to start and finish a first episode on a loaded machine."""
GONE_WITHIN_S = 10.0
"""The requirement: no process of the tree is alive this long after the parent's SIGKILL."""

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time in clock ticks) of ``pid``, None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: pid -> start time."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            children.setdefault(st[0], []).append(int(entry))
            starts[int(entry)] = st[2]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for kid in children.get(todo.pop(), []):
            found[kid] = starts[kid]
            todo.append(kid)
    return found


def _alive(tree: dict[int, int]) -> list[int]:
    alive = []
    for pid, start in tree.items():
        st = _stat(pid)
        if st is not None and st[2] == start and st[1] not in ("Z", "X"):
            alive.append(pid)
    return alive


def test_sigkill_of_the_parent_takes_every_worker_with_it(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "WANDB_MODE": "disabled"}
    proc = subprocess.Popen([sys.executable, "-m", "rapid_env.cli.eval", *SWEEP, "--out",
                             str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    tree: dict[int, int] = {}
    try:
        records = out / "episodes.jsonl"
        deadline = time.monotonic() + START_GUARD_S
        while time.monotonic() < deadline and proc.poll() is None:
            tree = _descendants(proc.pid)
            if records.exists() and records.read_text().strip() and len(tree) >= 3:
                break  # both workers and the resource tracker are up, episodes are running
            time.sleep(0.5)
        assert proc.poll() is None, f"the sweep ended before the kill: {proc.stderr.read()!r}"
        assert len(tree) >= 3, f"expected 2 workers and the resource tracker, saw {tree}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        survivors = _alive(tree)
        gone_by = time.monotonic() + GONE_WITHIN_S
        while survivors and time.monotonic() < gone_by:
            time.sleep(0.2)
            survivors = _alive(tree)
        assert survivors == [], f"alive {GONE_WITHIN_S:g} s after the parent's SIGKILL: " + \
            ", ".join(f"{pid} {Path(f'/proc/{pid}/cmdline').read_bytes()[:120]!r}"
                      for pid in survivors)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _alive(tree):  # never leave a failed test's processes behind
            os.kill(pid, signal.SIGKILL)
