"""Held-out evaluation: the saved decider and the baselines on the same seeds from 1000 up.

Episodes run through :func:`rapid_env.episode.run_episode`, as ``rapid-eval`` runs them, so the
rows compare with a sweep's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rapid_env.agents.learned import LearnedDecider
from rapid_env.agents.train_decider.envs import build_controller
from rapid_env.agents.train_decider.settings import EVAL_METRICS
from rapid_env.config import EnvConfig
from rapid_env.episode import run_episode
from rapid_env.progress import Progress


def evaluate(
    out: Path,
    cfg: EnvConfig,
    tasks: Sequence[str],
    episodes: int,
    first_seed: int,
    baselines: Sequence[str],
    log: Callable[[str], None] | None = None,
    quiet: bool = False,
) -> list[dict[str, Any]]:
    """Run the saved decider and the baselines on the same held-out seeds; one row per cell.

    Rows go to ``log``, by default printed (also under ``quiet``, which silences only the
    progress over the episodes; ``ok``: solved, ``fail``: an episode with a policy fault).
    """
    from rapid_env.agents.registry import DECIDERS
    rows: list[dict[str, Any]] = []
    agents = ("learned", *baselines)
    bar = Progress(total=len(tasks) * len(agents) * episodes, desc="rapid-train-decider eval",
                   quiet=quiet)
    say = log if log is not None else (lambda line: bar.write(line, always=True))
    with bar:
        for task in tasks:
            controller = build_controller(replace(cfg, task=task))
            try:
                for agent in agents:
                    recs = []
                    for seed in range(first_seed, first_seed + episodes):
                        decider = (
                            LearnedDecider(out) if agent == "learned" else DECIDERS.create(agent)
                        )
                        recs.append(run_episode(controller, decider, seed))
                        bar.update(success=bool(recs[-1]["success"]),
                                   error=bool(recs[-1].get("faults")), task=task, agent=agent)
                    row = {"task": task, "agent": agent, "episodes": episodes,
                           **{m: _mean(recs, m) for m in EVAL_METRICS}}
                    rows.append(row)
                    say(format_row(row))
            finally:
                controller.task.close()
    return rows


def _mean(recs: list[dict[str, Any]], metric: str) -> float | None:
    if metric == "megabytes":
        vals = [(r["bytes_up"] + r["bytes_down"]) / 1e6 for r in recs]
    else:
        vals = [float(r[metric]) for r in recs if r.get(metric) is not None]
    return float(np.mean(vals)) if vals else None


def format_row(row: dict[str, Any]) -> str:
    """One evaluation row as the line printed under the training summary."""

    def f(key: str, spec: str) -> str:
        v = row[key]
        return format(v, spec) if v is not None else "-"

    return (
        f"  {row['task']:<22s} {row['agent']:<11s} success {f('success', '.2f')}  "
        f"latency {f('latency_ms_mean', '6.1f')} ms  inferences {f('inferences', '5.1f')}  "
        f"preempt {f('preemptions', '4.1f')}  stalls {f('stall_steps', '5.1f')}  "
        f"jerk {f('rms_jerk', '7.1f')}  MB {f('megabytes', '6.2f')}  "
        f"decide {f('decision_cpu_us_mean', '6.1f')} us"
    )
