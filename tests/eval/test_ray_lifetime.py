"""--backend ray: joining a cluster is bounded and interruptible; a local cluster dies with us.

Every case runs the sweep (or a driver) as a real process: the waits being bounded are Ray's
own C++ connection retries, which only a real ``ray.init`` shows. Timeouts passed to
``subprocess`` are hang guards, generous for a loaded machine, not timing claims.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.eval.test_orphans import _alive, _descendants

pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[2]
SWEEP = ["--tasks", "reach", "--agents", "rapid", "--noise", "clean", "--links", "ideal",
         "--episodes", "1", "--max-episode-s", "1", "--policy", "expert", "--image-size", "32",
         "--wandb", "disabled", "--no-report", "--quiet", "--backend", "ray"]


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "disabled",
            "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}


def _default_sigint() -> None:
    """Give the child Ctrl-C's default disposition and an unblocked SIGINT, as a terminal would.

    An ignored signal stays ignored across ``exec`` (and Python then installs no
    KeyboardInterrupt handler), and a blocked one stays blocked: Ray's core worker, started in
    pytest's own process by earlier tests (``ray.init`` in test_ray_backend), blocks SIGINT in
    the threads it touches. A child inheriting either would never see this test's Ctrl-C.
    """
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _eval(*args: str, init_timeout_s: float | None = None) -> list[str]:
    """The command line of ``rapid-eval ARGS`` (optionally with a shorter ray.init bound)."""
    if init_timeout_s is None:
        return [sys.executable, "-m", "rapid_env.cli.eval", *args]
    code = ("import sys; from rapid_env.eval.backends import ray_backend as rb; "
            f"rb.INIT_TIMEOUT_S = {init_timeout_s}; from rapid_env.cli.eval import main; "
            "sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-c", code, *args]


class _MuteServer:
    """A TCP port that accepts connections and never says a word (not a Ray cluster)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("0.0.0.0", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.accepted += 1

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_an_address_where_nothing_listens_exits_2_with_one_line(tmp_path, address):
    proc = subprocess.run(_eval(*SWEEP, "--address", address, "--out", str(tmp_path)),
                          env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err == f"rapid-eval: error: --address {address}: no Ray cluster answers there " \
                  "(Connection refused)", err


def test_a_port_that_is_not_a_ray_cluster_is_given_up_with_exit_2(tmp_path):
    server = _MuteServer()
    try:
        proc = subprocess.run(
            _eval(*SWEEP, "--address", f"127.0.0.1:{server.port}", "--out", str(tmp_path),
                  init_timeout_s=3),
            env=_env(), capture_output=True, text=True, timeout=120)
    finally:
        server.close()
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith(f"rapid-eval: error: --address 127.0.0.1:{server.port}: "), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_ctrl_c_while_joining_a_cluster_exits_130(tmp_path):
    server = _MuteServer()
    proc = subprocess.Popen(
        _eval(*SWEEP, "--address", f"127.0.0.1:{server.port}", "--out", str(tmp_path),
              init_timeout_s=300),
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint)
    try:
        guard = time.monotonic() + 120
        while server.accepted < 1 and proc.poll() is None and time.monotonic() < guard:
            time.sleep(0.1)  # the probe connected: ray.init comes next
        time.sleep(2.0)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)  # a hang guard, not a time limit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.close()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "rapid-eval: interrupted before any episode ran", err


DRIVER = textwrap.dedent("""
    import os, sys, time
    from rapid_env.eval.backends.ray_backend import RayBackend
    backend = RayBackend(workers=1)
    import ray
    pid = ray.get(ray.remote(lambda: os.getpid()).remote())
    print("READY", pid, flush=True)
    time.sleep(600)
""")


def test_sigkill_of_the_driver_takes_its_local_cluster_with_it():
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    tree: dict[int, int] = {}
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the cluster is up and a worker ran a task
        assert line.startswith("READY"), line
        time.sleep(2.0)  # the reaper reads the tree once a second
        tree = _descendants(proc.pid)
        assert len(tree) >= 4, tree  # gcs_server, raylet, its agents, a worker, ...
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        survivors = _alive(tree)
        gone_by = time.monotonic() + 10.0
        while survivors and time.monotonic() < gone_by:
            time.sleep(0.2)
            survivors = _alive(tree)
        assert survivors == [], "alive 10 s after the driver's SIGKILL: " + ", ".join(
            f"{pid} {Path(f'/proc/{pid}/comm').read_text().strip()}" for pid in survivors)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _alive(tree):
            os.kill(pid, signal.SIGKILL)
