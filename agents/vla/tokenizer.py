"""A real word-level tokenizer for instructions, trained here and saved with each checkpoint.

Downloading a pretrained tokenizer is not allowed, and a 13-sentence corpus does not need BPE:
a lower-casing, whitespace/punctuation-splitting ``WordLevel`` model (the ``tokenizers``
library) wrapped in ``PreTrainedTokenizerFast`` gives the usual ``save_pretrained`` /
``from_pretrained`` round trip, and unseen words map to ``[UNK]`` instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from rapid_env.tasks.suite import MT10

SPECIALS = ("[PAD]", "[UNK]", "[BOS]")
# Words users plausibly write for these tasks, so a paraphrase is not all [UNK].
EXTRA_WORDS = (
    "move",
    "grasp",
    "grab",
    "lift",
    "put",
    "place",
    "close",
    "open",
    "pull",
    "press",
    "push",
    "slide",
    "insert",
    "the",
    "a",
    "to",
    "into",
    "from",
    "on",
    "of",
    "and",
    "it",
    "target",
    "goal",
    "left",
    "right",
    "up",
    "down",
    "block",
    "cube",
    "object",
    "gripper",
    "arm",
    "robot",
)


def build_tokenizer(sentences: Iterable[str] | None = None) -> PreTrainedTokenizerFast:
    """Build the tokenizer from ``sentences`` (default: the MT10 instructions) plus common words."""
    pre = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    norm = normalizers.Lowercase()
    corpus = list(sentences) if sentences is not None else [t.instruction for t in MT10]
    words: list[str] = []
    for s in corpus:
        for w, _ in pre.pre_tokenize_str(norm.normalize_str(s)):
            if w not in words:
                words.append(w)
    words += [w for w in EXTRA_WORDS if w not in words]
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = norm
    tok.pre_tokenizer = pre
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]"
    )


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved next to a checkpoint (local files only)."""
    return PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
