"""The tiny transformers checkpoint shared by the adapter and transformers-backend tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.agents.hf_adapter.helpers import WORDS


@pytest.fixture(scope="package")
def hf_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real transformers checkpoint (tiny Llama + WordLevel tokenizer), saved as safetensors."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]"
    ).save_pretrained(path)
    assert (path / "model.safetensors").is_file()
    return path
