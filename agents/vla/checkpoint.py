"""Checkpoints: ``model.safetensors`` + ``config.json`` + tokenizer files + a model card.

Loading reads safetensors only (never ``torch.load``, never pickle), so a checkpoint from anyone
can be opened safely.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_model, save_model
from transformers import PreTrainedTokenizerFast

from rapid_env.agents.vla.base import ExecutableVLA
from rapid_env.agents.vla.config import VLAConfig
from rapid_env.agents.vla.digest import CONFIG, WEIGHTS
from rapid_env.agents.vla.families import build_model
from rapid_env.agents.vla.shipped import shipped_checkpoint as shipped_checkpoint
from rapid_env.agents.vla.tokenizer import load_tokenizer
from rapid_env.jsonfile import read_json_object

CARD_JSON, CARD_MD = "card.json", "README.md"


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


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
"""What ``save_pretrained`` writes and :func:`load_tokenizer` needs."""


def load_checkpoint(
    path: str | Path, label: str | None = None
) -> tuple[ExecutableVLA, PreTrainedTokenizerFast, dict[str, Any]]:
    """Load (model in eval mode, tokenizer, card) from a checkpoint directory.

    Every refusal is one line naming the checkpoint (``label``, e.g. ``ckpt:<dir>``): missing
    files, a ``config.json`` that is not a valid config, weights of another shape than the config
    builds (a summary, not the hundred lines of ``load_state_dict``), missing tokenizer files.

    Args:
        path: the checkpoint directory.
        label: how messages name it; default ``checkpoint <path>``.

    Raises:
        FileNotFoundError: the weights or the config are missing.
        ValueError: anything else above.
    """
    src = Path(path)
    name = label or f"checkpoint {src}"
    missing = [f for f in (WEIGHTS, CONFIG) if not (src / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{name} lacks {', '.join(missing)}")
    no_tokenizer = [f for f in TOKENIZER_FILES if not (src / f).is_file()]
    if no_tokenizer:
        raise ValueError(f"{name}: lacks the tokenizer file(s) {', '.join(no_tokenizer)} "
                         "(written with the weights by rapid-train)")
    data = read_json_object(src / CONFIG)
    try:
        cfg = VLAConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{src / CONFIG}: not a valid config ({exc})") from None
    model = build_model(cfg)
    _load_weights(model, src / WEIGHTS, name)
    card = read_json_object(src / CARD_JSON) if (src / CARD_JSON).is_file() else {}
    return model.eval(), load_tokenizer(src), card


def _load_weights(model: ExecutableVLA, file: Path, name: str) -> None:
    """Load ``file`` into ``model``; a mismatch is summarised in one line, not one per tensor.

    Shapes come from the file's header (``safe_open``), so the check reads no tensor data.
    """
    try:
        with safe_open(str(file), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors' own errors (a truncated or foreign file)
        raise ValueError(f"{name}: {WEIGHTS} cannot be read ({type(exc).__name__})") from None
    expected = model.state_dict()
    differ = [(k, got, tuple(expected[k].shape)) for k, got in shapes.items()
              if k in expected and got != tuple(expected[k].shape)]
    unexpected = sorted(set(shapes) - set(expected))
    stored = {expected[k].data_ptr() for k in shapes if k in expected}
    # a tied tensor is saved once under one of its names: missing only if no name of it is
    absent = sorted(k for k in set(expected) - set(shapes) if expected[k].data_ptr() not in stored)
    if differ or unexpected or absent:
        parts = []
        if differ:
            key, got, want = differ[0]
            parts.append(f"{len(differ)} tensors differ, e.g. {key!r}: {got} vs {want}")
        if absent:
            parts.append(f"{len(absent)} missing, e.g. {absent[0]!r}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]!r}")
        raise ValueError(f"{name}: weights do not match {CONFIG} ({'; '.join(parts)})")
    load_model(model, str(file))


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
        *(
            [f"- inputs: cameras {' + '.join(cfg.cameras)}, {cfg.proprio_dim}-D proprio; "
             f"{cfg.action_dim}-D actions"]
            if cfg.n_cameras > 1 or (cfg.proprio_dim, cfg.action_dim) != (4, 4)
            else []
        ),
        f"- data: {card.get('data', '?')}",
        f"- training: {card.get('training', '?')}",
        f"- command: `{card.get('command', '?')}`",
    ]
    lines += [f"- data command: `{c}`" for c in card.get("data_commands", [])]
    lines += [f"- eval command: `{card['eval_command']}`"] if card.get("eval_command") else []
    lines += [f"- note: {card[k]}" for k in ("data_note", "training_note", "eval_note")
              if card.get(k)]
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
    noisy = card.get("evaluation_noise") or {}
    if noisy:
        seen = card.get("noise_seen_in_training") or []
        lines += [
            "## Success under image noise, same seeds",
            "",
            "Corruption families seen in training: "
            + (", ".join(seen) if seen else "none") + ".",
            "",
            "| noise | seen in training | mean | vs clean | command |",
            "| --- | --- | --- | --- | --- |",
        ]
        for spec, r in noisy.items():
            parts = [p.split(":")[0] for p in spec.split("+")]
            known = "yes" if all(p in seen for p in parts) else "no (held out)"
            ratio = f"{r['mean'] / ev['mean']:.0%}" if ev and ev.get("mean") else "-"
            lines.append(f"| {spec} | {known} | {r['mean']:.3f} | {ratio} | `{r['command']}` |")
        lines.append("")
    return "\n".join(lines)
