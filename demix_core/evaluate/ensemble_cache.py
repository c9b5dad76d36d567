"""On-disk cache of components' token log-probs, keyed by checkpoint and suite hashes.

Layout under a cache folder (the workspace's ``cache/ensemble`` by default)::

    <suite hash[:24]>/<component name>-<checkpoint hash[:24]>/logprobs.safetensors
    hashes.json    checkpoint hash memo: folder + weight files' sizes and mtimes -> SHA-256

A changed component has another checkpoint hash and a changed suite (other windows, tasks, limit or
tokenizer) another suite hash, so neither ever reads a stale entry; writing a component's entry
removes that component's older entries in the same suite folder. Entries are written atomically
(:func:`demix_core.io.atomic.atomic_dir`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch

from demix_core.io.atomic import atomic_dir, atomic_write_text, is_partial
from demix_core.io.checkpoints import open_checkpoint

FILE = "logprobs.safetensors"
KEY_CHARS = 24


def checkpoint_hash(path: str | os.PathLike[str], memo_dir: Path | None = None) -> str:
    """SHA-256 over a checkpoint's weights, config and tokenizer (memoised by file sizes and mtimes).

    Args:
        path: The Hugging Face checkpoint folder.
        memo_dir: Folder of ``hashes.json`` (None: no memo, hash the weights every time).
    """
    ckpt = open_checkpoint(path)
    files = sorted({info.file for info in ckpt.tensors.values()} | {"config.json"})
    stamp = "|".join(f"{f}:{(ckpt.path / f).stat().st_size}:{(ckpt.path / f).stat().st_mtime_ns}" for f in files)
    ident = f"{ckpt.path.resolve()}|{stamp}"
    memo: dict[str, str] = {}
    memo_file = memo_dir / "hashes.json" if memo_dir is not None else None
    if memo_file is not None and memo_file.is_file():
        try:
            memo = dict(json.loads(memo_file.read_text()))
        except (ValueError, TypeError):
            memo = {}  # a damaged memo is only a slower start
    if ident in memo:
        return memo[ident]
    config = json.dumps(ckpt.config, sort_keys=True)
    digest = hashlib.sha256(f"{ckpt.weights_hash()}|{ckpt.tokenizer_hash}|{config}".encode()).hexdigest()
    if memo_file is not None:
        memo[ident] = digest
        atomic_write_text(memo_file, json.dumps(memo, indent=1, sort_keys=True))
    return digest


class LogprobCache:
    """Per-component token log-prob vectors for one suite, on disk.

    Args:
        root: The cache folder.
        suite_key: The suite's hash (:func:`demix_core.evaluate.ensemble.suite_hash`).
    """

    def __init__(self, root: str | os.PathLike[str], suite_key: str) -> None:
        self.root = Path(root)
        self.suite_key = suite_key
        self.folder = self.root / suite_key[:KEY_CHARS]

    def entry(self, name: str, checkpoint_key: str) -> Path:
        """The folder of one component's entry."""
        return self.folder / f"{name}-{checkpoint_key[:KEY_CHARS]}"

    def load(self, name: str, checkpoint_key: str, tokens: int) -> torch.Tensor | None:
        """The cached (T,) float64 log-probs, or None when absent, unreadable or of another suite/size."""
        from safetensors import SafetensorError, safe_open

        file = self.entry(name, checkpoint_key) / FILE
        if not file.is_file():
            return None
        try:
            with safe_open(str(file), framework="pt") as fh:
                meta = fh.metadata() or {}
                if meta.get("suite") != self.suite_key or meta.get("checkpoint") != checkpoint_key:
                    return None
                t = fh.get_tensor("logprobs")
        except (SafetensorError, OSError, ValueError):
            return None  # a damaged entry is recomputed
        return t if t.dtype == torch.float64 and t.shape == (tokens,) else None

    def save(self, name: str, checkpoint_key: str, logprobs: torch.Tensor) -> Path:
        """Write one component's log-probs atomically; remove its older entries in this suite's folder."""
        from safetensors.torch import save_file

        out = self.entry(name, checkpoint_key)
        with atomic_dir(out, force=True) as tmp:
            save_file({"logprobs": logprobs.detach().to("cpu", torch.float64).contiguous()}, str(tmp / FILE),
                      metadata={"suite": self.suite_key, "checkpoint": checkpoint_key, "component": name})
        for old in self.folder.glob(f"{name}-*"):
            if old != out and old.is_dir() and not is_partial(old) and len(old.name) == len(out.name):
                shutil.rmtree(old, ignore_errors=True)
        return out
