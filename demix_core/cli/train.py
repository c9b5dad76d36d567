"""``demix train`` (a component) and ``demix train-base``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from demix_core.cli.common import positive_int
from demix_core.errors import ConfigError


def register(sub: Any) -> None:
    """Add the training commands."""
    t = sub.add_parser("train", help="train a component: continue a base on data mixed with general text")
    t.add_argument("--base", required=True, help="base checkpoint folder")
    t.add_argument("--data", nargs="+", required=True, help="the dataset's files (.txt, .jsonl, .parquet)")
    t.add_argument("--general", nargs="*", default=[], help="general text files mixed in at 1 - share")
    t.add_argument("--share", type=float, default=0.5, help="fraction of sequences from --data (default 0.5)")
    t.add_argument("--name", default=None, help="dataset name recorded in training.json")
    _common(t)
    t.set_defaults(func=run_train)

    b = sub.add_parser("train-base", help="train a base model from scratch on general text")
    b.add_argument("--tokenizer", required=True, help="Hugging Face tokenizer folder")
    b.add_argument("--data", nargs="+", required=True, help="general text files")
    b.add_argument("--layers", type=int, default=2)
    b.add_argument("--hidden", type=int, default=128)
    b.add_argument("--heads", type=int, default=4)
    b.add_argument("--kv-heads", type=int, default=2)
    b.add_argument("--intermediate", type=int, default=384)
    _common(b, lr=2e-3)
    b.set_defaults(func=run_train_base)


def _common(p: argparse.ArgumentParser, lr: float = 2e-4) -> None:
    p.add_argument("--tokens", type=positive_int, required=True, help="token budget")
    p.add_argument("--out", required=True, help="output checkpoint folder")
    p.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr})")
    p.add_argument("--seq-len", type=positive_int, default=128)
    p.add_argument("--batch", type=positive_int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=positive_int, default=100, help="steps between resumable saves")
    p.add_argument("--heldout", nargs="*", default=[], help="held-out files scored at the end")
    p.add_argument("--allow-repeat", action="store_true", help="allow a budget larger than the data")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")


def _cfg(args: argparse.Namespace) -> Any:
    from demix_core.train.trainer import TrainConfig  # torch

    if args.tokens <= 0:
        raise ConfigError(f"--tokens must be positive, got {args.tokens}")
    return TrainConfig(tokens=args.tokens, seq_len=args.seq_len, batch=args.batch, lr=args.lr, seed=args.seed,
                       save_every=args.save_every, allow_repeat=args.allow_repeat)


def _heldout(files: list[str]) -> dict[str, str]:
    return {Path(f).name: f for f in files}


def run_train(args: argparse.Namespace) -> int:
    """Train a component."""
    from demix_core.train.trainer import read_training, train_component  # torch

    out = train_component(args.base, args.data, args.general, args.out, cfg=_cfg(args), share=args.share,
                          name=args.name or Path(args.data[0]).stem, heldout=_heldout(args.heldout),
                          force=args.force, progress=True)
    rec = read_training(out)
    print(f"trained {out}: {rec['steps']} steps, {rec['tokens_seen']:,} tokens, final loss {rec['final_loss']:.3f}, "
          f"drift from base {rec['drift']:.1%}")
    return 0


def run_train_base(args: argparse.Namespace) -> int:
    """Train a base model."""
    from demix_core.train.trainer import ModelSize, read_training, train_base  # torch

    size = ModelSize(layers=args.layers, hidden=args.hidden, heads=args.heads, kv_heads=args.kv_heads,
                     intermediate=args.intermediate)
    out = train_base(args.tokenizer, args.data, args.out, cfg=_cfg(args), size=size, heldout=_heldout(args.heldout),
                     force=args.force, progress=True)
    rec = read_training(out)
    print(f"trained {out}: {rec['params']:,} params, {rec['steps']} steps, final loss {rec['final_loss']:.3f}")
    return 0
