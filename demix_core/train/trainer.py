"""Training, plain and readable: the base from scratch, components and references continued from it.

- base: a small Qwen2-style model trained from scratch on general prose;
- component: continued from the base on one dataset mixed with general prose at share beta
  (each sequence comes from the dataset with probability beta, else from the general data);
- reference: continued from the base on a real mixture, with the same general share and the same
  budget and schedule as a component: each sequence comes from the general data with probability
  1 - beta, else from dataset i with probability w_i. So the reference sees exactly the data
  distribution that the weight-merge of the components with weights w stands for.

Sequences are random windows of ``seq_len + 1`` tokens from each dataset's token stream (documents
joined by eos), drawn by one seeded generator. The learning rate warms up linearly, then follows a
cosine to ``min_lr_ratio * lr``. A resumable state is saved every ``save_every`` steps in
``<out>.partial/``; rerunning resumes from it and ends with the same weights as an uninterrupted run.
The final checkpoint is written atomically with ``training.json``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from demix_core.data.tokenizer import copy_tokenizer, file_tokens, load_tokenizer, tokenizer_hash
from demix_core.errors import ConfigError, DataError
from demix_core.evaluate.heldout import HeldoutScorer
from demix_core.io.atomic import atomic_dir, check_output, refuse_inputs
from demix_core.io.checkpoints import open_checkpoint

TRAINING_FILE = "training.json"
StepCallback = Callable[[int, int, float], None]


@dataclass
class TrainConfig:
    """Optimisation settings shared by base, component and reference training."""

    tokens: int
    seq_len: int = 128
    batch: int = 16
    lr: float = 2e-4
    warmup: float = 0.05
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    seed: int = 0
    save_every: int = 100
    log_every: int = 10
    allow_repeat: bool = False

    @property
    def steps(self) -> int:
        """Optimizer steps the token budget buys."""
        return max(1, self.tokens // (self.batch * self.seq_len))

    def lr_at(self, step: int) -> float:
        """Warmup then cosine to ``min_lr_ratio * lr`` (step counts from 0)."""
        warm = max(1, int(self.warmup * self.steps))
        if step < warm:
            return self.lr * (step + 1) / warm
        progress = (step - warm) / max(1, self.steps - warm)
        floor = self.min_lr_ratio * self.lr
        return floor + (self.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class ModelSize:
    """Shape of a base model (Qwen2 architecture)."""

    layers: int = 2
    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    max_positions: int = 1024


@dataclass
class DataSource:
    """A named token stream and its sampling probability."""

    name: str
    files: list[str]
    probability: float
    stream: torch.Tensor = field(repr=False, default_factory=lambda: torch.zeros(0, dtype=torch.long))


def _streams(tokenizer: Any, sources: list[DataSource], cfg: TrainConfig) -> None:
    """Tokenize each source once and check the budget against the data (unless repeats are allowed)."""
    for s in sources:
        s.stream = torch.cat([file_tokens(tokenizer, f) for f in s.files])
        if len(s.stream) <= cfg.seq_len + 1:
            raise DataError(f"data {s.name!r} ({', '.join(s.files)}) has {len(s.stream)} tokens, fewer than one "
                            f"window of {cfg.seq_len}; give more text or lower --seq-len")
        needed = int(cfg.steps * cfg.batch * cfg.seq_len * s.probability)
        if needed > len(s.stream) and not cfg.allow_repeat:
            raise DataError(f"token budget needs ~{needed:,} tokens of {s.name!r} but its data has "
                            f"{len(s.stream):,}; lower --tokens or pass --allow-repeat")


def _batch(sources: list[DataSource], cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """(batch, seq_len + 1) windows: a source per row by probability, then a random offset."""
    probs = torch.tensor([s.probability for s in sources], dtype=torch.float64)
    picks = torch.multinomial(probs, cfg.batch, replacement=True, generator=gen)
    rows = []
    for i in picks.tolist():
        stream = sources[i].stream
        start = int(torch.randint(0, len(stream) - cfg.seq_len - 1, (1,), generator=gen))
        rows.append(stream[start: start + cfg.seq_len + 1])
    return torch.stack(rows)


def drift(model: torch.nn.Module, base_state: Mapping[str, torch.Tensor]) -> float:
    """delta = ||theta - theta_base|| / ||theta_base|| over all parameters."""
    num, den = 0.0, 0.0
    for name, p in model.named_parameters():
        b = base_state[name].to(p.device, torch.float64)
        num += float((p.detach().double() - b).pow(2).sum())
        den += float(b.pow(2).sum())
    return math.sqrt(num / den) if den > 0 else float("nan")


def _partial_dir(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def _save_partial(folder: Path, model: Any, opt: torch.optim.Optimizer, gen: torch.Generator, step: int,
                  curve: list[list[float]], fingerprint: dict[str, Any]) -> None:
    with atomic_dir(folder, force=True) as tmp:
        model.save_pretrained(str(tmp / "model"), safe_serialization=True)
        torch.save({"optimizer": opt.state_dict(), "generator": gen.get_state(), "step": step, "curve": curve},
                   tmp / "state.pt")
        (tmp / "fingerprint.json").write_text(json.dumps(fingerprint, sort_keys=True))


def _load_partial(folder: Path, model: Any, opt: torch.optim.Optimizer, gen: torch.Generator,
                  fingerprint: dict[str, Any]) -> tuple[int, list[list[float]]]:
    """Restore a saved state if it belongs to the same run; return (step, loss curve)."""
    fp = folder / "fingerprint.json"
    if not fp.exists() or json.loads(fp.read_text()) != json.loads(json.dumps(fingerprint, sort_keys=True)):
        return 0, []
    from safetensors.torch import load_file

    state = load_file(str(folder / "model" / "model.safetensors"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(state[name])
    saved = torch.load(folder / "state.pt", weights_only=True)
    opt.load_state_dict(saved["optimizer"])
    gen.set_state(saved["generator"])
    return int(saved["step"]), [list(x) for x in saved["curve"]]


def _optimizer(model: Any, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms and biases)."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


def _step(model: Any, opt: torch.optim.Optimizer, batch: torch.Tensor) -> float:
    """One optimizer step on a (batch, seq_len + 1) window batch; returns the loss."""
    loss = model(input_ids=batch[:, :-1], labels=batch[:, :-1].clone()).loss
    # transformers shifts labels inside the model: predict token t+1 from tokens <= t.
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(loss.detach())


def _record(model: Any, sources: list[DataSource], cfg: TrainConfig, curve: list[list[float]],
            seconds: float) -> dict[str, Any]:
    """The run's ``training.json`` fields besides the caller's metadata."""
    total = cfg.steps
    return {
        "tokens_seen": total * cfg.batch * cfg.seq_len, "steps": total,
        "schedule": {"lr": cfg.lr, "warmup_steps": max(1, int(cfg.warmup * total)), "min_lr_ratio": cfg.min_lr_ratio,
                     "shape": "linear warmup, cosine to floor"},
        "config": asdict(cfg), "loss_curve": curve, "final_loss": curve[-1][1] if curve else None,
        "wall_seconds": round(seconds, 2), "params": sum(p.numel() for p in model.parameters()),
        "data_tokens": {s.name: int(len(s.stream)) for s in sources},
    }


def _train(
    model: Any, tokenizer: Any, sources: list[DataSource], cfg: TrainConfig, out: Path, *,
    tokenizer_src: str | os.PathLike[str], meta: dict[str, Any],
    base_state: Mapping[str, torch.Tensor] | None, heldout: Mapping[str, str] | None,
    on_step: StepCallback | None, force: bool, progress: bool,
) -> Path:
    """The loop shared by every kind of training."""
    total = cfg.steps
    fingerprint = {"meta": meta, "config": asdict(cfg), "sources": [(s.name, s.files, s.probability) for s in sources]}
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = _optimizer(model, cfg)
    partial = _partial_dir(out)
    step, curve = _load_partial(partial, model, opt, gen, fingerprint) if partial.exists() else (0, [])
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, desc=out.name, unit="step", leave=False, disable=None)
    model.train()
    start = time.perf_counter()
    running = 0.0
    while step < total:
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        value = _step(model, opt, _batch(sources, cfg, gen))
        step += 1
        running = value if step == 1 else 0.9 * running + 0.1 * value
        if step % cfg.log_every == 0 or step == total:
            curve.append([step, value])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}")
        if on_step is not None:
            on_step(step, total, value)
        if step % cfg.save_every == 0 and step < total:
            _save_partial(partial, model, opt, gen, step, curve, fingerprint)
    if bar is not None:
        bar.close()
    model.eval()
    record = {**meta, **_record(model, sources, cfg, curve, time.perf_counter() - start)}
    if base_state is not None:
        record["drift"] = drift(model, base_state)
    if heldout:
        scorer = HeldoutScorer(tokenizer, heldout, seq_len=cfg.seq_len)
        record["heldout"] = scorer.score(model)
    with atomic_dir(out, force=force) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        copy_tokenizer(tokenizer_src, tmp)  # byte-identical files keep the tokenizer hash
        (tmp / TRAINING_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(partial, ignore_errors=True)
    return out


def train_base(
    tokenizer_dir: str | os.PathLike[str], data: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
    cfg: TrainConfig, size: ModelSize | None = None, heldout: Mapping[str, str] | None = None,
    on_step: StepCallback | None = None, force: bool = False, progress: bool = False,
) -> Path:
    """Train a base model from scratch on general prose.

    Args:
        tokenizer_dir: A Hugging Face tokenizer folder.
        data: Text files (txt, jsonl, parquet).
        out: The checkpoint folder to write.
        cfg: Budget and optimisation.
        size: Model shape (default ~1M parameters with a 4k vocabulary).
        heldout: Name -> held-out file, scored at the end into ``training.json``.
        on_step: Called after every step with (step, total, loss).
        force: Replace ``out`` if it exists.
        progress: Show a tqdm bar.
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = check_output(out, force=force)
    refuse_inputs(out, {"tokenizer": tokenizer_dir})
    size = size or ModelSize()
    tokenizer = load_tokenizer(tokenizer_dir)
    sources = [DataSource("general", [str(f) for f in data], 1.0)]
    _streams(tokenizer, sources, cfg)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=size.hidden, intermediate_size=size.intermediate,
        num_hidden_layers=size.layers, num_attention_heads=size.heads, num_key_value_heads=size.kv_heads,
        max_position_embeddings=size.max_positions, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(cfg.seed)
    model = Qwen2ForCausalLM(config)
    meta = {"kind": "base", "data": {"general": [str(f) for f in data]}, "size": asdict(size),
            "tokenizer_sha256": tokenizer_hash(tokenizer_dir), "seed": cfg.seed}
    return _train(model, tokenizer, sources, cfg, Path(out), tokenizer_src=tokenizer_dir, meta=meta,
                  base_state=None, heldout=heldout,
                  on_step=on_step, force=force, progress=progress)


def _continued(base_dir: str | os.PathLike[str], tokenizer_dir: str | os.PathLike[str] | None) -> tuple[Any, Any, dict]:
    """Load the base model and tokenizer; refuse a tokenizer that differs from the base's."""
    from transformers import AutoModelForCausalLM

    ckpt = open_checkpoint(base_dir)
    if tokenizer_dir is not None and tokenizer_hash(tokenizer_dir) != ckpt.tokenizer_hash:
        raise DataError(f"tokenizer {tokenizer_dir} differs from the base's ({base_dir}); "
                        "tokenize the data with the base's tokenizer")
    tokenizer = load_tokenizer(tokenizer_dir or base_dir)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), local_files_only=True, use_safetensors=True,
                                                 dtype=torch.float32)
    base_state = {n: p.detach().clone() for n, p in model.named_parameters()}
    return model, tokenizer, base_state


def train_component(
    base_dir: str | os.PathLike[str], data: Sequence[str | os.PathLike[str]],
    general: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *, cfg: TrainConfig, share: float = 0.5,
    name: str = "component", tokenizer_dir: str | os.PathLike[str] | None = None,
    heldout: Mapping[str, str] | None = None, on_step: StepCallback | None = None, force: bool = False,
    progress: bool = False,
) -> Path:
    """Continue the base on one dataset mixed with general prose at ``share`` (the paper's beta = 0.5).

    With ``share=1`` (or no general files) the component sees only its dataset.
    """
    if not 0 < share <= 1:
        raise ConfigError(f"--share must lie in (0, 1], got {share}")
    out = check_output(out, force=force)
    refuse_inputs(out, {"base": base_dir, **({"tokenizer": tokenizer_dir} if tokenizer_dir else {})})
    model, tokenizer, base_state = _continued(base_dir, tokenizer_dir)
    sources = [DataSource(name, [str(f) for f in data], share)]
    if general and share < 1:
        sources.append(DataSource("general", [str(f) for f in general], 1 - share))
    else:
        sources[0].probability = 1.0
    _streams(tokenizer, sources, cfg)
    meta = {"kind": "component", "base": str(Path(base_dir).resolve()), "dataset": name,
            "data": {s.name: s.files for s in sources}, "share": share, "seed": cfg.seed}
    return _train(model, tokenizer, sources, cfg, Path(out), tokenizer_src=base_dir, meta=meta,
                  base_state=base_state, heldout=heldout,
                  on_step=on_step, force=force, progress=progress)


def train_reference(
    base_dir: str | os.PathLike[str], datasets: Mapping[str, Sequence[str | os.PathLike[str]]],
    mixture: Mapping[str, float], general: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
    cfg: TrainConfig, share: float = 0.5, kind: str = "reference", heldout: Mapping[str, str] | None = None,
    on_step: StepCallback | None = None, force: bool = False, progress: bool = False,
) -> Path:
    """Continue the base on a real mixture: general with probability ``1 - share``, else dataset i with
    probability ``mixture[i]`` (a dataset that is itself the general data gets its weight folded in)."""
    out = check_output(out, force=force)
    refuse_inputs(out, {"base": base_dir})
    unknown = [k for k in mixture if k not in datasets]
    if unknown:
        raise ConfigError(f"mixture names unknown dataset {unknown[0]!r}; datasets: {', '.join(datasets)}")
    total = sum(mixture.values())
    if total <= 0:
        raise ConfigError("mixture weights sum to 0")
    model, tokenizer, base_state = _continued(base_dir, None)
    sources = [DataSource(n, [str(f) for f in datasets[n]], share * w / total) for n, w in mixture.items() if w > 0]
    if general and share < 1:
        sources.append(DataSource("general", [str(f) for f in general], 1 - share))
    norm = sum(s.probability for s in sources)
    for s in sources:
        s.probability /= norm
    _streams(tokenizer, sources, cfg)
    meta = {"kind": kind, "base": str(Path(base_dir).resolve()), "mixture": dict(mixture), "share": share,
            "data": {s.name: s.files for s in sources}, "probabilities": {s.name: s.probability for s in sources},
            "seed": cfg.seed}
    return _train(model, tokenizer, sources, cfg, Path(out), tokenizer_src=base_dir, meta=meta,
                  base_state=base_state, heldout=heldout,
                  on_step=on_step, force=force, progress=progress)


def read_training(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``training.json`` of a checkpoint ({} when absent)."""
    f = Path(folder) / TRAINING_FILE
    return json.loads(f.read_text()) if f.exists() else {}
