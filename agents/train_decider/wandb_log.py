"""The trainer's W&B run: SB3's rollout metrics as they come, the held-out evaluation at the end."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rapid_env.agents.train_decider.settings import EVAL_METRICS
from rapid_env.wandb_mode import start_run


def start_wandb(mode: str, out: Path, config: dict[str, Any]) -> Any:
    """A W&B run (job type ``train-decider``) in ``out/wandb/``; None when ``mode`` is disabled.

    ``mode`` is already resolved (:func:`rapid_env.wandb_mode.resolve_mode`); the run is made by
    :func:`rapid_env.wandb_mode.start_run`, so a disabled run never imports wandb.
    Metrics go against ``global_step``.
    """
    run = start_run(mode, out, job_type="train-decider", config=config, name=out.resolve().name)
    if run is None:
        return None
    run.define_metric("global_step")
    for prefix in ("train", "rollout", "time", "eval"):
        run.define_metric(f"{prefix}/*", step_metric="global_step")
    return run


def wandb_writer(run: Any) -> Any:
    """An SB3 logger output format that logs each dump's numbers to ``run``."""
    from stable_baselines3.common.logger import KVWriter

    class WandbWriter(KVWriter):
        def write(
            self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0
        ) -> None:
            data = {
                k: float(v)
                for k, v in key_values.items()
                if isinstance(v, int | float | np.number) and not isinstance(v, bool)
            }
            if data:
                run.log({**data, "global_step": int(step)})

        def close(self) -> None:
            pass

    return WandbWriter()


def log_evaluation(run: Any, rows: Sequence[dict[str, Any]], step: int) -> None:
    """Held-out evaluation: ``eval/<agent>/<task>/<metric>``, a table, per-agent means."""
    if run is None or not rows:
        return
    import wandb

    data: dict[str, Any] = {"global_step": step}
    for row in rows:
        for metric in EVAL_METRICS:
            if row.get(metric) is not None:
                data[f"eval/{row['agent']}/{row['task']}/{metric}"] = row[metric]
    columns: list[str | int] = ["task", "agent", "episodes", *EVAL_METRICS]
    data["eval/table"] = wandb.Table(
        columns=columns, data=[[row.get(str(c)) for c in columns] for row in rows],
        allow_mixed_types=True,
    )
    run.log(data)
    for agent in dict.fromkeys(row["agent"] for row in rows):
        rates = [r["success"] for r in rows if r["agent"] == agent and r["success"] is not None]
        if rates:
            run.summary[f"eval/{agent}/success"] = float(np.mean(rates))
