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


WATCHED_CHILD = '''
import multiprocessing as mp
import os
import time

from rapid_env.eval.backends.lifeline import die_with_parent


def child(parent_pid):
    die_with_parent(parent_pid, use_pdeathsig=False)  # the watcher thread alone
    time.sleep(600)


if __name__ == "__main__":
    p = mp.get_context("spawn").Process(target=child, args=(os.getpid(),))
    p.start()
    print("CHILD", p.pid, flush=True)
    time.sleep(600)
'''


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def test_without_the_kernel_signal_the_watcher_alone_ends_an_orphan(tmp_path):
    """Where PR_SET_PDEATHSIG is unavailable (or not safe to use), the watcher thread suffices."""
    script = tmp_path / "parent.py"
    script.write_text(WATCHED_CHILD)
    proc = subprocess.Popen([sys.executable, str(script)], env=_env(), stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    tree: dict[int, int] = {}
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("CHILD"), line
        time.sleep(1.0)  # let the child run die_with_parent
        tree = _descendants(proc.pid)
        assert int(line.split()[1]) in tree
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        survivors = _alive(tree)
        gone_by = time.monotonic() + GONE_WITHIN_S
        while survivors and time.monotonic() < gone_by:
            time.sleep(0.2)
            survivors = _alive(tree)
        assert survivors == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _alive(tree):
            os.kill(pid, signal.SIGKILL)


def test_a_worker_whose_parent_is_already_gone_exits_at_once():
    from rapid_env.eval.backends.lifeline import EXIT_ORPHANED

    code = ("from rapid_env.eval.backends.lifeline import die_with_parent; "
            "die_with_parent(1); print('survived')")  # pid 1 is not this process's parent
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == EXIT_ORPHANED and "survived" not in proc.stdout


REAPED_PARENT = '''
import subprocess
import sys
import time

from rapid_env.eval.backends.lifeline import Reaper

helper = subprocess.Popen(["sleep", "600"])  # stands for a process someone else started for us
reaper = Reaper()
time.sleep(1.5)  # the reaper has read the tree
reaper_pid = reaper.pid
if sys.argv[1] == "release":
    reaper.release()
print("READY", helper.pid, reaper_pid, flush=True)
time.sleep(600)
'''


@pytest.mark.parametrize("how", ["kill", "release"])
def test_a_reaper_kills_what_its_unreleased_parent_left(tmp_path, how):
    script = tmp_path / "parent.py"
    script.write_text(REAPED_PARENT)
    proc = subprocess.Popen([sys.executable, str(script), how], env=_env(),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    tree: dict[int, int] = {}
    try:
        assert proc.stdout is not None
        _, helper, reaper = proc.stdout.readline().split()
        tree = {int(helper): _stat(int(helper))[2]}  # type: ignore[index]
        if how == "release":
            assert _stat(int(reaper)) is None or _stat(int(reaper))[1] == "Z"  # type: ignore[index]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        survivors = _alive(tree)
        gone_by = time.monotonic() + GONE_WITHIN_S
        while survivors and time.monotonic() < gone_by:
            time.sleep(0.2)
            survivors = _alive(tree)
        # released: the parent said it cleaned up, so the helper is left alone
        assert survivors == ([] if how == "kill" else [int(helper)])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _alive(tree):
            os.kill(pid, signal.SIGKILL)
