"""The tokenizer, in one place: train, load, hash, copy, check against a model, and token streams.

Everything else (training, the engine, the suites, the CLI) goes through these functions, so the
engine needs no training code to load a tokenizer and one hash decides whether two tokenizers match.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from demix_core.data.readers import read_texts
from demix_core.errors import ConfigError, EvaluationError

EOS = "<|endoftext|>"
# Files whose bytes define the tokenizer; their hash must match across merged checkpoints.
TOKENIZER_CONTENT_FILES = (
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
)
TOKENIZER_FILES = (*TOKENIZER_CONTENT_FILES, "tokenizer_config.json", "chat_template.jinja")


# --- training -----------------------------------------------------------------------------------------


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


# --- files: load, hash, copy --------------------------------------------------------------------------


def load_tokenizer(folder: str | os.PathLike[str]) -> Any:
    """A Hugging Face tokenizer from a local folder (never the hub).

    Raises:
        ConfigError: The folder holds no loadable tokenizer.
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load a tokenizer from {folder} ({str(exc).splitlines()[0]})") from None


def tokenizer_hash(folder: str | os.PathLike[str]) -> str:
    """SHA-256 over the tokenizer's content files, in a fixed order ("" when there are none)."""
    folder = Path(folder)
    h = hashlib.sha256()
    found = False
    for name in TOKENIZER_CONTENT_FILES:
        f = folder / name
        if f.exists():
            found = True
            h.update(name.encode())
            h.update(f.read_bytes())
    return h.hexdigest() if found else ""


def copy_tokenizer(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> list[str]:
    """Copy the tokenizer files of ``src`` into ``dst`` (byte-identical: same hash); return the names copied."""
    copied = []
    for name in TOKENIZER_FILES:
        f = Path(src) / name
        if f.exists():
            shutil.copy2(f, Path(dst) / name)
            copied.append(name)
    return copied


def check_tokenizer(model: torch.nn.Module, tokenizer: Any, *, model_dir: str | os.PathLike[str] | None = None,
                    tokenizer_dir: str | os.PathLike[str] | None = None) -> None:
    """Refuse a tokenizer that does not belong to the model (one-line :class:`EvaluationError`).

    Checks that the tokenizer's ids fit the model's embedding table and, when both folders are given and
    hold tokenizer files, that they are the same tokenizer (same content hash).
    """
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and len(tokenizer) > vocab:
        raise EvaluationError(f"tokenizer has {len(tokenizer)} tokens but the model's vocabulary is {vocab}; "
                              "use the tokenizer saved with the model")
    if model_dir is not None and tokenizer_dir is not None:
        a, b = tokenizer_hash(model_dir), tokenizer_hash(tokenizer_dir)
        if a and b and a != b:
            raise EvaluationError(f"the tokenizer in {tokenizer_dir} (hash {b[:12]}) differs from the one saved with "
                                  f"the model in {model_dir} (hash {a[:12]}); use the model's own tokenizer")


# --- token streams ------------------------------------------------------------------------------------


def token_stream(tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """Documents tokenized and joined with the eos token: a flat int64 tensor."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise EvaluationError("the tokenizer has no eos token; set eos_token in its tokenizer_config.json")
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        encoded = [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
    else:
        encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    flat: list[int] = []
    for ids in encoded:
        flat.extend(ids)
        flat.append(eos)
    return torch.tensor(flat, dtype=torch.long)


_TOKEN_CACHE: dict[tuple[str, int, float, str, int], torch.Tensor] = {}


def file_tokens(tokenizer: Any, file: str | os.PathLike[str]) -> torch.Tensor:
    """A file's token stream (:func:`token_stream` of its documents), memoised per process.

    A demo tokenizes the same files for every run; the cache key holds the file's size and modification
    time and the tokenizer's name and length, so a changed file or tokenizer is tokenized again.
    """
    p = Path(file)
    try:
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime, str(getattr(tokenizer, "name_or_path", "")), len(tokenizer))
    except OSError:
        key = None
    if key is not None and key in _TOKEN_CACHE:
        return _TOKEN_CACHE[key]
    stream = token_stream(tokenizer, read_texts(file))
    if key is not None:
        if len(_TOKEN_CACHE) > 32:
            _TOKEN_CACHE.clear()
        _TOKEN_CACHE[key] = stream
    return stream
