"""Held-out loss and bits-per-byte of text files, tokenized once and scored on a live model.

Used by the demo's loss matrix, by training (held-out loss in ``training.json``) and by the ``quick``
suite: the windows are built once per tokenizer; each call is forward passes only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from demix_core.data.readers import read_prefix
from demix_core.data.tokenizer import token_stream
from demix_core.errors import EvaluationError
from demix_core.workspace.manifest import DEFAULT_HELDOUT_TOKENS

LN2 = math.log(2.0)


@dataclass
class HeldoutSet:
    """Pre-tokenized windows of one text source.

    Attributes:
        windows: (n, seq_len + 1) token ids; each row predicts tokens 1..seq_len from 0..seq_len-1.
        nbytes: UTF-8 bytes of the predicted tokens (for bits-per-byte).
    """

    windows: torch.Tensor
    nbytes: int

    @property
    def tokens(self) -> int:
        """Number of predicted tokens."""
        return int(self.windows.shape[0] * (self.windows.shape[1] - 1))


def build_heldout(tokenizer: Any, path: str | os.PathLike[str], *, seq_len: int = 128,
                  max_tokens: int = DEFAULT_HELDOUT_TOKENS, text_field: str = "text") -> HeldoutSet:
    """Non-overlapping windows covering the first ``max_tokens`` predicted tokens of a file.

    The slice is deterministic: the file's documents in order, tokenized and joined with the eos token,
    cut after ``max_tokens`` predicted tokens (fewer when the file is shorter). Only the start of the file
    is read (a few characters per token, more when that was not enough).

    Raises:
        DataError: The file is missing, empty, malformed or lacks ``text_field``.
        EvaluationError: The file holds less than one window of tokens.
    """
    want = max(1, max_tokens // seq_len)
    need = want * seq_len + 1
    max_chars = need * 8 + 4096
    while True:
        texts, more = read_prefix(path, text_field=text_field, max_chars=max_chars)
        stream = token_stream(tokenizer, texts)
        # A cut document may tokenize differently at the cut: keep a margin before it.
        if not more or len(stream) >= need + 64:
            break
        max_chars *= 4
    n = min((len(stream) - 1) // seq_len, want)
    if n < 1:
        raise EvaluationError(f"{path} is too short for one window of {seq_len} tokens; give more text")
    windows = torch.stack([stream[i * seq_len: i * seq_len + seq_len + 1] for i in range(n)])
    predicted = windows[:, 1:].reshape(-1).tolist()
    nbytes = len(tokenizer.decode(predicted, clean_up_tokenization_spaces=False).encode("utf-8"))
    return HeldoutSet(windows, max(nbytes, 1))


class HeldoutScorer:
    """Scores a model's held-out loss on several named files, tokenized once.

    Args:
        tokenizer: The model's tokenizer.
        files: Name -> text file (any format :func:`~demix_core.data.readers.read_texts` reads).
        seq_len: Window length.
        max_tokens: Tokens scored per file (the first ones: a deterministic slice).
        batch: Windows per forward pass.
        text_fields: Name -> the JSON field / parquet column holding the text (default ``text``).
    """

    def __init__(self, tokenizer: Any, files: Mapping[str, str | os.PathLike[str]], *, seq_len: int = 128,
                 max_tokens: int = DEFAULT_HELDOUT_TOKENS, batch: int = 32,
                 text_fields: Mapping[str, str] | None = None) -> None:
        fields = text_fields or {}
        self.sets = {name: build_heldout(tokenizer, Path(p), seq_len=seq_len, max_tokens=max_tokens,
                                         text_field=fields.get(name) or "text")
                     for name, p in files.items()}
        self.max_tokens = max_tokens
        self.batch = batch

    @torch.no_grad()
    def score(self, model: torch.nn.Module) -> dict[str, dict[str, float]]:
        """``{name: {"loss": nats per token, "bpb": bits per byte}}`` for the model as it is now."""
        device = next(model.parameters()).device
        out = {}
        for name, hs in self.sets.items():
            total = 0.0
            for start in range(0, len(hs.windows), self.batch):
                w = hs.windows[start: start + self.batch].to(device)
                logits = model(input_ids=w[:, :-1], use_cache=False).logits.float()
                nll = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum")
                total += float(nll)
            out[name] = {"loss": total / hs.tokens, "bpb": total / LN2 / hs.nbytes}
        return out
