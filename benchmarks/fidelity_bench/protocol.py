"""What the benchmark's processes share: the script they run, the echo method, the stats line."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "fidelity.py"
"""The command; children run its hidden modes (``--relay``, ``--nfqueue``, ``--echo-server``)."""
ECHO_SERVICE = "rapid_env.bench.v1.Echo"
ECHO_METHOD = f"/{ECHO_SERVICE}/Infer"


def late_stats(late: Sequence[float], overruns: int = 0, dropped: int = 0) -> str:
    """The delay line's answer to ``stats``: count, mean, worst lateness (ms), overruns, drops."""
    mean = statistics.fmean(late) * 1e3 if late else 0.0
    worst = max(late) * 1e3 if late else 0.0
    return f"stats {len(late)} {mean:.3f} {worst:.3f} {overruns} {dropped}"
