"""Hugging Face causal-LM checkpoints: open, check compatibility, load, build, save (safetensors only)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from demix_core.data.tokenizer import tokenizer_hash
from demix_core.errors import CheckpointError, CompatibilityError
from demix_core.io.safetensors_header import read_header

CONFIG_FILE = "config.json"
SINGLE_WEIGHTS = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Config keys that decide parameter shapes or how they are used.
SHAPE_KEYS = (
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "tie_word_embeddings",
    "max_position_embeddings",
    "rope_theta",
    "hidden_act",
)


@dataclass(frozen=True)
class TensorInfo:
    """Name-level facts about one stored tensor."""

    shape: tuple[int, ...]
    dtype: str
    file: str


@dataclass
class Checkpoint:
    """An opened (not yet loaded) Hugging Face checkpoint folder.

    Attributes:
        path: The folder.
        config: ``config.json`` as a dict.
        tensors: Stored tensor name -> shape, dtype and file.
        tokenizer_hash: SHA-256 over the tokenizer's content files ("" when there is no tokenizer).
    """

    path: Path
    config: dict[str, Any]
    tensors: dict[str, TensorInfo]
    tokenizer_hash: str
    files: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The folder's name."""
        return self.path.name

    @property
    def architecture(self) -> str:
        """The first entry of ``architectures`` (or the model type)."""
        archs = self.config.get("architectures") or [self.config.get("model_type", "?")]
        return str(archs[0])

    @property
    def num_params(self) -> int:
        """Stored parameter count (tied weights counted once, as stored)."""
        total = 0
        for info in self.tensors.values():
            n = 1
            for d in info.shape:
                n *= d
            total += n
        return total

    def weights_hash(self) -> str:
        """SHA-256 over the weight files' bytes (for recipes)."""
        h = hashlib.sha256()
        for f in sorted({info.file for info in self.tensors.values()}):
            with open(self.path / f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
        return h.hexdigest()


def open_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Open a checkpoint folder and read its metadata (no weights are loaded).

    Raises:
        CheckpointError: Missing folder or config, pickle weights, no safetensors, an index that names
            missing files, or a truncated / corrupt safetensors file.
    """
    from demix_core.io.atomic import is_partial

    folder = Path(path)
    if is_partial(folder):
        raise CheckpointError(
            f"{folder} is the unfinished output of an interrupted write, not a checkpoint; the next run of the "
            "same command removes it: give the finished output folder")
    if not folder.exists():
        raise CheckpointError(f"checkpoint folder {folder} does not exist; check the path")
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint {folder} is a file; give the Hugging Face model folder")
    files = sorted(p.name for p in folder.iterdir())
    config = _read_config(folder)
    weight_files = _weight_files(folder, files)
    tensors: dict[str, TensorInfo] = {}
    for wf in weight_files:
        for name, info in read_header(folder / wf).items():
            if name in tensors:
                raise CheckpointError(f"tensor {name!r} appears in two files of {folder}; fix the shards")
            tensors[name] = TensorInfo(info[0], info[1], wf)
    if not tensors:
        raise CheckpointError(f"{folder} holds no tensors; it is not a model checkpoint")
    return Checkpoint(folder, config, tensors, tokenizer_hash(folder), files)


def _read_config(folder: Path) -> dict[str, Any]:
    cfg = folder / CONFIG_FILE
    if not cfg.exists():
        raise CheckpointError(f"{folder} has no {CONFIG_FILE}; is it a Hugging Face model folder?")
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg} is not valid JSON ({exc}); restore or re-save the checkpoint") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{cfg} is not a JSON object; restore or re-save the checkpoint")
    return data


def _weight_files(folder: Path, files: list[str]) -> list[str]:
    pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
    if INDEX_FILE in files:
        try:
            index = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
            shards = sorted(set(index["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise CheckpointError(f"{folder / INDEX_FILE} is malformed ({exc}); re-save the checkpoint") from None
        missing = [s for s in shards if s not in files]
        if missing:
            raise CheckpointError(f"{folder} index names missing shard {missing[0]}; copy all shards")
        return shards
    if SINGLE_WEIGHTS in files:
        return [SINGLE_WEIGHTS]
    loose = [f for f in files if f.endswith(".safetensors")]
    if loose:
        return loose
    if pickles:
        raise CheckpointError(
            f"{folder / pickles[0]} is a pickle checkpoint, which can run code when loaded; convert it "
            "to safetensors (model.save_pretrained(dir, safe_serialization=True)) and try again"
        )
    raise CheckpointError(f"{folder} has no .safetensors weights; save the model with save_pretrained")


# --- compatibility ----------------------------------------------------------------------------------


@dataclass
class CompatibilityReport:
    """What differs between a reference checkpoint (the first) and the others.

    Attributes:
        checkpoints: The checked checkpoints, the first being the reference.
        mismatches: Human-readable differences, most important first.
    """

    checkpoints: list[Checkpoint]
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        """True when every checkpoint can be merged with the first."""
        return not self.mismatches

    def summary(self) -> str:
        """The verdict in one line: compatible, or how many mismatches."""
        if self.ok:
            return f"compatible: all {len(self.checkpoints)} checkpoints can be merged"
        return f"NOT compatible: {len(self.mismatches)} mismatch(es)"

    def lines(self) -> list[str]:
        """A printable report."""
        out = []
        for c in self.checkpoints:
            tok = c.tokenizer_hash[:12] if c.tokenizer_hash else "none"
            out.append(
                f"{c.path}: {c.architecture}, {c.num_params:,} params, {len(c.tensors)} tensors, "
                f"dtype {_main_dtype(c)}, tokenizer {tok}"
            )
        out.append(self.summary())
        out.extend(f"  - {m}" for m in self.mismatches)
        return out


def _main_dtype(c: Checkpoint) -> str:
    counts: dict[str, int] = {}
    for info in c.tensors.values():
        counts[info.dtype] = counts.get(info.dtype, 0) + 1
    return max(counts, key=lambda k: counts[k])


def check_compatibility(
    checkpoints: Sequence[Checkpoint], *, limit: int = 10, check_tokenizer: bool = True
) -> CompatibilityReport:
    """Compare every checkpoint with the first: architecture, shape config, tensors, tokenizer.

    Each checkpoint's problems are listed (at most ``limit`` per checkpoint, tensor-level ones
    summarised after three), so one badly mismatched checkpoint cannot hide another's problem.

    Args:
        checkpoints: At least one opened checkpoint.
        limit: List at most this many mismatches per checkpoint.
        check_tokenizer: Compare tokenizer hashes.
    """
    ref, mismatches = checkpoints[0], []
    for other in checkpoints[1:]:
        where = f"{other.path} vs {ref.path}"
        found: list[str] = []
        if other.architecture != ref.architecture:
            found.append(f"architecture {other.architecture} != {ref.architecture} ({where})")
        for key in SHAPE_KEYS:
            if ref.config.get(key) != other.config.get(key):
                found.append(f"config {key}: {other.config.get(key)!r} != {ref.config.get(key)!r} ({where})")
        if check_tokenizer and other.tokenizer_hash != ref.tokenizer_hash:
            found.append(
                f"tokenizer differs: {other.path} ({other.tokenizer_hash[:12] or 'none'}) vs "
                f"{ref.path} ({ref.tokenizer_hash[:12] or 'none'}); merged models need one tokenizer"
            )
        missing = sorted(set(ref.tensors) - set(other.tensors))
        extra = sorted(set(other.tensors) - set(ref.tensors))
        if missing:
            found.append(f"tensor {missing[0]} missing from {other.path} (+{len(missing) - 1} more)")
        if extra:
            found.append(f"tensor {extra[0]} only in {other.path} (+{len(extra) - 1} more)")
        tensor_lines = []
        for name in sorted(set(ref.tensors) & set(other.tensors)):
            a, b = ref.tensors[name], other.tensors[name]
            if a.shape != b.shape:
                tensor_lines.append(f"shape of {name}: {list(b.shape)} != {list(a.shape)} ({where})")
            elif a.dtype != b.dtype:
                tensor_lines.append(f"dtype of {name}: {b.dtype} != {a.dtype} ({where})")
        found.extend(tensor_lines[:3])
        if len(tensor_lines) > 3:
            found.append(f"+{len(tensor_lines) - 3} more tensors differ in shape or dtype in {other.path}")
        mismatches.extend(found[:limit])
    return CompatibilityReport(list(checkpoints), mismatches)


def require_compatible(checkpoints: Sequence[Checkpoint], *, check_tokenizer: bool = True) -> None:
    """Raise a one-line :class:`CompatibilityError` naming the first mismatches, if any."""
    report = check_compatibility(checkpoints, limit=3, check_tokenizer=check_tokenizer)
    if not report.ok:
        raise CompatibilityError(
            "checkpoints cannot be merged: " + "; ".join(report.mismatches[:3])
            + "; merge only models fine-tuned from the same base"
        )


# --- loading and saving -----------------------------------------------------------------------------


def load_tensors(
    ckpt: Checkpoint, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """Load every stored tensor of ``ckpt`` onto ``device`` (cast to ``dtype`` when given)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in sorted({info.file for info in ckpt.tensors.values()}):
        try:
            part = load_file(str(ckpt.path / f), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"cannot read {ckpt.path / f} ({exc}); copy or save it again") from None
        for k, v in part.items():
            out[k] = v.to(device=device, dtype=dtype or v.dtype)
    return out


def build_model(
    ckpt: Checkpoint, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> torch.nn.Module:
    """Load the checkpoint as a transformers causal LM, offline and from safetensors only, in eval mode."""
    from transformers import AutoModelForCausalLM

    torch_dtype = dtype or _torch_dtype(_main_dtype(ckpt))
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(ckpt.path), local_files_only=True, use_safetensors=True, dtype=torch_dtype
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load {ckpt.path} as a causal LM ({first})") from None
    model.to(device)  # type: ignore[arg-type]  # transformers types .to() for its own wrapper only
    model.eval()
    return model


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str = "") -> None:
    """Copy ``state`` into the model's parameters; tied parameters may be stored once."""
    params = dict(model.named_parameters())
    missing = [n for n in params if n not in state]
    unexpected = [n for n in state if n not in params and n not in _tied_aliases(model)]
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"weights in {source or 'state'} do not fit the model: {what}")
    with torch.no_grad():
        for n, p in params.items():
            t = state[n]
            if tuple(t.shape) != tuple(p.shape):
                raise CheckpointError(f"{n} in {source}: shape {list(t.shape)} != model's {list(p.shape)}")
            p.copy_(t)


def _tied_aliases(model: torch.nn.Module) -> set[str]:
    """State-dict names that alias another parameter (tied embeddings)."""
    names = set(model.state_dict().keys())
    return names - {n for n, _ in model.named_parameters()}


def _torch_dtype(name: str) -> torch.dtype:
    table = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
    if name not in table:
        raise CheckpointError(f"unsupported weight dtype {name}; use float32, float16 or bfloat16")
    return table[name]


def save_model(model: Any, folder: str | os.PathLike[str]) -> None:
    """Save a transformers model as safetensors (tied weights handled by ``save_pretrained``)."""
    model.save_pretrained(str(folder), safe_serialization=True)
