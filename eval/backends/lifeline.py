"""Worker processes that end when the process that started them ends, however it ends.

A sweep's parent can die without running a line of cleanup (``kill -9``, the kernel's OOM
killer). Its spawned workers are then re-parented to PID 1 and would hold their memory (hundreds
of MB each, a model and a renderer) until they finish their queue or forever, and the
``multiprocessing`` resource tracker, whose pipe the workers hold open, stays with them.
:func:`die_with_parent`, called first thing in a worker, makes every worker go with its parent:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the moment the
  thread that started it exits. That is only the parent's lifetime when the parent started the
  worker from its main thread (:func:`started_from_main_thread`), so it is set only then; right
  after setting it, the parent's pid is compared with the one it was given, since a parent that
  died before the call would otherwise go unnoticed;
* everywhere, a daemon watcher thread: it blocks on ``multiprocessing``'s parent sentinel (a pipe
  that reads as closed once the parent is gone) or, where there is none, polls
  :func:`os.getppid` every :data:`POLL_S` seconds, and ends the worker with ``os._exit``.

The resource tracker needs nothing of its own: it exits when the last process holding its pipe
(parent and workers) is gone.

Processes that others start for this one (a local Ray cluster: its head processes die with it,
but the agents its raylet starts do not) are handled by a :class:`Reaper`: a small process of its
own session that notes this process's descendants every :data:`POLL_S` seconds and, when this
process is gone without having released it, kills the ones it noted (by pid *and* start time, so
a pid reused since is never touched). Linux only (it reads ``/proc``); elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import select
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import wait
from pathlib import Path

PR_SET_PDEATHSIG = 1
"""``prctl`` option (linux/prctl.h): the signal this process gets when its parent thread exits."""

POLL_S = 1.0
"""How often the watcher compares the parent pid when there is no parent sentinel to wait on."""

EXIT_ORPHANED = 70
"""Exit status of a worker that ended because its parent was gone."""


def started_from_main_thread() -> bool:
    """Whether the caller (about to start workers) is its process's main thread.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the worker exits; only the main
    thread lives as long as the process, so only workers it starts may use it.
    """
    return threading.current_thread() is threading.main_thread()


def die_with_parent(parent_pid: int, use_pdeathsig: bool = True) -> None:
    """End this process when ``parent_pid`` ends (call it first thing in a worker).

    Args:
        parent_pid: the pid of the process that started this one.
        use_pdeathsig: also set the kernel's parent-death signal (Linux); pass
            :func:`started_from_main_thread` as the parent saw it.
    """
    if use_pdeathsig:
        _set_pdeathsig()
    if os.getppid() != parent_pid:  # gone before (or while) the signal was set: go now
        os._exit(EXIT_ORPHANED)
    threading.Thread(target=_watch, args=(parent_pid,), name="lifeline", daemon=True).start()


def _set_pdeathsig() -> bool:
    """``prctl(PR_SET_PDEATHSIG, SIGKILL)`` where the C library has it; whether it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return False
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    return bool(prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0)


def _watch(parent_pid: int) -> None:
    """Block until the parent is gone, then end this process at once (no cleanup to wait on)."""
    parent = mp.parent_process()
    sentinel = getattr(parent, "sentinel", None) if parent is not None else None
    if sentinel is not None and parent is not None and parent.pid == parent_pid:
        try:
            wait([sentinel])
        except OSError:  # the sentinel was closed under us: fall back to polling
            _poll(parent_pid)
    else:
        _poll(parent_pid)
    os._exit(EXIT_ORPHANED)


def _poll(parent_pid: int) -> None:
    stop = threading.Event()
    while os.getppid() == parent_pid:
        stop.wait(POLL_S)


class Reaper:
    """Kills this process's descendants if this process dies without calling :meth:`release`.

    Start it after the processes to watch have been started (or before: it re-reads the tree
    every :data:`POLL_S` seconds, so only a process started in the last second before a
    ``kill -9`` can slip past it).
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        if not Path("/proc/self/stat").exists():
            return
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(Path(__file__).resolve()), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C is for this process, not the reaper
        )

    @property
    def pid(self) -> int | None:
        """The reaper's own pid (None where there is no ``/proc`` and so no reaper)."""
        return None if self._proc is None else self._proc.pid

    def release(self) -> None:
        """This process cleaned up itself: the reaper exits and kills nothing."""
        proc, self._proc = self._proc, None
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(b"q")
            proc.stdin.close()
        except OSError:  # the reaper is gone already
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of ``pid`` from ``/proc``; None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every descendant of ``root`` alive now: pid -> start time (``/proc``)."""
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
            if kid not in found:
                found[kid] = starts[kid]
                todo.append(kid)
    return found


def _same_process(pid: int, start: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] not in ("Z", "X")


def _parent_gone(parent: int, within_s: float = 2.0) -> bool:
    """Whether ``parent`` is dying, after the pipe from it closed.

    The kernel closes a dying process's files before it hands its children to PID 1, so the
    hand-over gets a moment; a parent still there after it only dropped the pipe (a
    :class:`Reaper` garbage-collected unreleased) and is alive.
    """
    stop = threading.Event()
    for _ in range(int(within_s / 0.05)):
        st = _stat(parent)
        if os.getppid() != parent or st is None or st[1] in ("Z", "X"):
            return True
        stop.wait(0.05)
    return False


def _reap(parent: int) -> None:
    """The reaper process: note ``parent``'s tree until released ("q") or orphaned (EOF)."""
    me, fd = os.getpid(), sys.stdin.fileno()
    seen: dict[int, int] = {}
    while True:
        ready, _, _ = select.select([fd], [], [], POLL_S)
        data = os.read(fd, 1) if ready else None
        if data == b"q":
            return
        if os.getppid() != parent:
            break
        if data == b"":  # the pipe closed: the parent is exiting, or dropped us unreleased
            if _parent_gone(parent):
                break
            return
        seen = {pid: start for pid, start in seen.items() if _same_process(pid, start)}
        seen.update(descendants(parent))
        seen.pop(me, None)
    for pid, start in seen.items():
        if _same_process(pid, start):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":  # the reaper process (Reaper), run as a script: stdlib only
    _reap(int(sys.argv[1]))
