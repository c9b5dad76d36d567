"""Tiny Qwen2-style models and a byte-level tokenizer, built offline, for tests and benchmarks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def tiny_config(*, hidden: int = 32, layers: int = 2, vocab: int = 320, heads: int = 4,
                intermediate: int | None = None, tie: bool = True, **extra: Any) -> Any:
    """A Qwen2 config of the given size (no download)."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate or hidden * 3,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=512, tie_word_embeddings=tie, **extra,
    )


def byte_tokenizer(vocab: int = 320) -> Any:
    """A byte-level BPE tokenizer trained on a few sentences (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = ["the quick brown fox jumps over the lazy dog", "def f(x): return x + 1", "2 + 2 = 4"] * 20
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(text, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def save_tiny(folder: str | os.PathLike[str], *, seed: int, config: Any | None = None,
              tokenizer: Any | None = None, base: str | os.PathLike[str] | None = None,
              noise: float = 0.02, dtype: torch.dtype = torch.float32) -> Path:
    """Save a tiny causal LM: random init from ``seed``, or ``base`` plus seeded noise (a "fine-tune")."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    if base is not None:
        model = AutoModelForCausalLM.from_pretrained(str(base), local_files_only=True, dtype=dtype)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * noise)
    else:
        model = AutoModelForCausalLM.from_config(config or tiny_config(), dtype=dtype)
    out = Path(folder)
    model.save_pretrained(str(out), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return out
