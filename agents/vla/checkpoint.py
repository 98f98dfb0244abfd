"""Checkpoints: ``model.safetensors`` + ``config.json`` + tokenizer files + a model card.

Loading reads safetensors only (never ``torch.load``, never pickle), so a checkpoint from anyone
can be opened safely.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model
from transformers import PreTrainedTokenizerFast

import rapid_env
from rapid_env.agents.vla.base import ExecutableVLA
from rapid_env.agents.vla.config import VLAConfig
from rapid_env.agents.vla.families import build_model
from rapid_env.agents.vla.tokenizer import load_tokenizer

# Package data of ``rapid_env`` (next to profiles.json), wherever the package is installed.
CHECKPOINT_ROOT = Path(rapid_env.__file__).resolve().parent / "data" / "checkpoints"
WEIGHTS, CONFIG, CARD_JSON, CARD_MD = "model.safetensors", "config.json", "card.json", "README.md"


def shipped_checkpoint(family: str) -> Path:
    """Where the repo ships the trained checkpoint of ``family``."""
    return CHECKPOINT_ROOT / family


def save_checkpoint(
    path: str | Path,
    model: ExecutableVLA,
    tokenizer: PreTrainedTokenizerFast,
    card: dict[str, Any],
) -> Path:
    """Write a checkpoint directory (created if missing) and its model card."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, str(out / WEIGHTS))
    model.cfg.save(out / CONFIG)
    tokenizer.save_pretrained(str(out))
    (out / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n")
    (out / CARD_MD).write_text(render_card(model.cfg, card))
    return out


def load_checkpoint(
    path: str | Path,
) -> tuple[ExecutableVLA, PreTrainedTokenizerFast, dict[str, Any]]:
    """Load (model in eval mode, tokenizer, card) from a checkpoint directory."""
    src = Path(path)
    missing = [f for f in (WEIGHTS, CONFIG) if not (src / f).is_file()]
    if missing:
        raise FileNotFoundError(f"checkpoint {src} lacks {', '.join(missing)}")
    cfg = VLAConfig.load(src / CONFIG)
    model = build_model(cfg)
    load_model(model, str(src / WEIGHTS))
    card = json.loads((src / CARD_JSON).read_text()) if (src / CARD_JSON).is_file() else {}
    return model.eval(), load_tokenizer(src), card


def render_card(cfg: VLAConfig, card: dict[str, Any]) -> str:
    """The human-readable model card (README.md in the checkpoint)."""
    lines = [
        f"# {cfg.family} — executable VLA checkpoint",
        "",
        card.get("summary", ""),
        "",
        f"- parameters: {card.get('parameters', '?'):,}"
        if isinstance(card.get("parameters"), int)
        else "- parameters: ?",
        f"- image: {cfg.image_size} px, chunk {cfg.chunk_size}, width {cfg.width}, "
        f"decode {cfg.decode if cfg.family == 'ar-token' else '-'}",
        f"- data: {card.get('data', '?')}",
        f"- training: {card.get('training', '?')}",
        f"- command: `{card.get('command', '?')}`",
    ]
    lines += [f"- data command: `{c}`" for c in card.get("data_commands", [])]
    lines += [f"- note: {card[k]}" for k in ("data_note", "training_note") if card.get(k)]
    lines.append("")
    ev = card.get("evaluation")
    if ev:
        lines += [
            f"## Success at zero latency, clean image, held-out seeds {ev['seeds']}",
            "",
            "| task | success |",
            "| --- | --- |",
        ]
        lines += [f"| {t} | {r:.2f} |" for t, r in ev["per_task"].items()]
        lines += [f"| **mean** | **{ev['mean']:.3f}** |", ""]
    return "\n".join(lines)
