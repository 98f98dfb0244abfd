"""The child processes (servers, delay line) and the handle that drives the delay line."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path


class Child:
    """A child process in its own process group; its stdout lines, read by a thread."""

    def __init__(self, cmd: list[str], log: Path, stdin: bool = False) -> None:
        self.log, self.name = log, " ".join(cmd[:4])
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=log.open("w"), text=True, start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def read_line(self, prefix: str, timeout_s: float) -> str:
        """The next stdout line starting with ``prefix`` (the rest of it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                break
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise RuntimeError(f"{self.name} gave no {prefix!r} line; its log ends:\n{tail}")

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after 5 s."""
        proc = self.proc
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        if proc.stdin is not None:
            proc.stdin.close()


class DelayHandle:
    """The delay child (relay or kernel queue): set its delays, read its timing statistics."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self.delays = (-1.0, -1.0)
        self.loss_on = False

    def _ask(self, line: str, prefix: str) -> str:
        stdin = self.child.proc.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()
        return self.child.read_line(prefix, 10.0)

    def set_delays(self, up: float, down: float) -> None:
        """One-way delays (s) for what is read from now on."""
        if (up, down) != self.delays:
            self._ask(f"delay {up!r} {down!r}", "ok")
            self.delays = (up, down)

    def set_loss(self, params: tuple[float, float, float, float] | None, seed: int) -> None:
        """Gilbert-Elliott loss (p, r, loss_good, loss_bad) on both queues, or None: off."""
        if params is None:
            if self.loss_on:
                self._ask("loss off", "ok")
                self.loss_on = False
            return
        self._ask("loss " + " ".join(repr(x) for x in params) + f" {seed}", "ok")
        self.loss_on = True

    def stats(self) -> tuple[int, float, float, int, int]:
        """Since the last call: count, mean and worst lateness (ms), overruns, dropped packets.

        Overruns: how often the kernel could not hand packets over (always 0 for the relay).
        Dropped: packets the loss chain dropped (the relay has no loss).
        """
        n, mean, worst, overruns, dropped = self._ask("stats", "stats ").split()
        return int(n), float(mean), float(worst), int(overruns), int(dropped)
