"""The decider's card: ``card.json`` (how it was trained, how it did) and a human ``README.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rapid_env.wrapper import COMPACT_ACTIONS


def write_card(out: Path, card: dict[str, Any]) -> None:
    """``card.json`` and a human ``README.md`` with the evaluation table and the commands."""
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    tr = card["training"]
    lines = [
        "# learned — PPO partition decider",
        "",
        "A stable-baselines3 PPO actor over the RAPID env's 11 kinematic/buffer/link features,",
        f"choosing among {', '.join(COMPACT_ACTIONS)} every control tick"
        + (" (plus a safety refill when starved)." if card["safety_refill"] else "."),
        "",
        f"- training: {tr['timesteps']} ticks on {', '.join(tr['tasks'])}, seeds from 0-999 "
        f"(generator seed {tr['seed']}), {tr['seconds'] / 60:.1f} min on 1 CPU thread",
        f"- reward weights: {card['reward']}",
        f"- env: policy {card['env']['policy']}, link {card['env']['link']}, noise "
        f"{card['env']['noise']}, profile {card['env']['profile']}, "
        f"{card['env']['max_episode_s']} s episodes",
        f"- command: `{card['command']}`",
        "",
        f"## Held-out evaluation, seeds {card['evaluation']['seeds']}",
        "",
        "| task | agent | success | latency ms | inferences | preemptions | stall ticks "
        "| rms jerk | MB | decide us |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in card["evaluation"]["rows"]:
        cells = [
            _cell(row[k], s)
            for k, s in (
                ("success", ".2f"), ("latency_ms_mean", ".1f"), ("inferences", ".1f"),
                ("preemptions", ".1f"), ("stall_steps", ".1f"), ("rms_jerk", ".1f"),
                ("megabytes", ".2f"), ("decision_cpu_us_mean", ".1f"),
            )
        ]
        lines.append(f"| {row['task']} | {row['agent']} | " + " | ".join(cells) + " |")
    lines += ["", "`decide us` is wall-clock CPU time per decide() call on the machine that ran "
              "the evaluation; everything else is simulated and reproducible.", ""]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def _cell(v: float | None, spec: str) -> str:
    return format(v, spec) if v is not None else "-"
