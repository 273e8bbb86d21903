"""Tiny pretrained-model directories for tests: a Llama with a word-level tokenizer of its own,
saved the way save_pretrained writes them (safetensors, tokenizer.json)."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

WORDS = "the quick brown fox jumps over lazy dog a cat sat on mat and ran far away . , !".split()


def word_tokenizer(words: list[str] = WORDS) -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(["<unk>", "<eos>", *words])}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>", pad_token="<eos>")


def save_llama(directory: Path, layers: int = 4, rows: int | None = None,
               tokenizer: PreTrainedTokenizerFast | None = None,
               seed: int = 0) -> LlamaForCausalLM:
    """A random tiny Llama of ``layers`` layers with ``rows`` token embeddings (default: the tokenizer's length),
    saved in ``directory`` with ``tokenizer`` (none if None)."""
    import torch

    torch.manual_seed(seed)
    size = rows if rows is not None else len(tokenizer if tokenizer is not None else word_tokenizer())
    config = LlamaConfig(vocab_size=size, hidden_size=16, intermediate_size=32, num_hidden_layers=layers,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=False, pad_token_id=None, bos_token_id=None, eos_token_id=None)
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    return model


def save_gqa_llama(directory: Path, layers: int = 4) -> None:
    """A random tiny Llama with the word tokenizer and grouped-query attention: 4 query heads in 2 key/value
    groups of 2 (hidden 16, MLP 32)."""
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(word_tokenizer()), hidden_size=16, intermediate_size=32,
                                 num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                 max_position_embeddings=64, tie_word_embeddings=False)).save_pretrained(directory)
    word_tokenizer().save_pretrained(directory)
