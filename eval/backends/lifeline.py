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
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
from multiprocessing.connection import wait

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
