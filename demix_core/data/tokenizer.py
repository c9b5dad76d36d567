"""Train the workspace's byte-level BPE tokenizer on a balanced sample of every dataset."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

EOS = "<|endoftext|>"


def balanced_sample(files: Sequence[Path], bytes_per_file: int) -> Iterator[str]:
    """Up to ``bytes_per_file`` characters of each file, in 64 KB pieces."""
    for f in files:
        with open(f, encoding="utf-8") as fh:
            taken = 0
            while taken < bytes_per_file:
                piece = fh.read(min(65536, bytes_per_file - taken))
                if not piece:
                    break
                taken += len(piece)
                yield piece


def train_tokenizer(files: Sequence[Path], out_dir: str | os.PathLike[str], *, vocab_size: int = 4096,
                    bytes_per_file: int = 1_000_000) -> Path:
    """Train a byte-level BPE (``EOS`` as eos and pad) and save it as a Hugging Face tokenizer folder.

    Deterministic for the same files and settings.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(balanced_sample(files, bytes_per_file), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, bos_token=EOS,
                                   unk_token=None, model_max_length=1 << 20)
    out = Path(out_dir)
    fast.save_pretrained(str(out))
    return out
