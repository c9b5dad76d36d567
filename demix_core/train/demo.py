"""Build the demo workspace from real data: datasets -> tokenizer -> base -> components [-> references].

Every stage is skipped when its output exists, so a second run reuses the first's work, and an
interrupted run resumes (training resumes from its last saved step).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from demix_core.data.datasets import GENERAL, DatasetSpec, prepare_datasets
from demix_core.data.tokenizer import file_tokens, load_tokenizer, train_tokenizer
from demix_core.evaluate.heldout import HeldoutScorer
from demix_core.train.reference_set import train_reference_set
from demix_core.train.trainer import ModelSize, TrainConfig, read_training, train_base, train_component
from demix_core.workspace.manifest import (
    MANIFEST,
    ComponentEntry,
    DatasetEntry,
    ReferenceEntry,
    Workspace,
    load_workspace,
)

Log = Callable[[str], None]


@dataclass
class DemoSettings:
    """Sizes and budgets of the demo. ``quick()`` gives the tiny variant used by tests."""

    max_bytes_per_source: int = 5_000_000
    # Training text of each dataset but prose: about a tenth of prose's, as code and math are of web text in real
    # corpora, so the natural mixture is skewed (~2/3 prose) and beating it is a real question.
    max_train_bytes: int = 1_000_000
    vocab_size: int = 4096
    size: ModelSize = field(default_factory=ModelSize)
    base: TrainConfig = field(default_factory=lambda: TrainConfig(tokens=400 * 16 * 128, lr=2e-3, save_every=100))
    component: TrainConfig = field(default_factory=lambda: TrainConfig(tokens=250 * 16 * 128, lr=2e-4))
    share: float = 0.5
    heldout_tokens: int = 16_384
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoSettings:
        """Tiny sizes: the whole demo in well under a minute."""
        return cls(
            max_bytes_per_source=150_000, max_train_bytes=40_000, vocab_size=512,
            size=ModelSize(layers=1, hidden=32, heads=2, kv_heads=1, intermediate=64, max_positions=1024),
            base=TrainConfig(tokens=60 * 8 * 64, seq_len=64, batch=8, lr=3e-3, save_every=1000),
            component=TrainConfig(tokens=20 * 8 * 64, seq_len=64, batch=8, lr=1e-3, save_every=1000),
            heldout_tokens=2048,
        )


def build_demo(
    workspace: str | Path = "workspace/demo", *, quick: bool = False, references: int = 0, train_seed: int = 0,
    settings: DemoSettings | None = None, log: Log = print, progress: bool = True,
) -> Workspace:
    """Build (or complete) the demo workspace and print the held-out loss matrix.

    Args:
        workspace: The workspace folder.
        quick: Tiny sizes (tests, smoke runs).
        references: Also train this many reference models on sampled mixtures, and their
            compute-matched trained proxies (:func:`demix_core.train.reference_set.train_reference_set`).
        train_seed: The references' training seed: another than 0 trains repeats ``ref-XX-s<seed>`` of the same
            mixtures (no trained proxies).
        settings: Explicit sizes (overrides ``quick``).
        log: Where progress lines go.
        progress: tqdm bars for training.

    Returns:
        The saved workspace.
    """
    s = settings or (DemoSettings.quick() if quick else DemoSettings())
    root = Path(workspace).resolve()
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    log(f"[1/5] datasets -> {root / 'data'}")
    specs = prepare_datasets(root / "data", max_bytes_per_source=s.max_bytes_per_source,
                             max_train_bytes=s.max_train_bytes, seed=s.seed, log=log)
    general = next(d for d in specs if d.name == GENERAL)

    tok_dir = _tokenizer(root / "tokenizer", specs, s, log)
    tokens = _token_counts(load_tokenizer(tok_dir), specs)
    heldout = {d.name: str(d.heldout) for d in specs}

    base_dir = root / "base"
    # The base sees half of the general documents; components mix in all of them, so continued
    # training on general text brings new text, as continued pre-training does at scale.
    base_data = _base_split(general.train, root / "data" / f"{general.name}.base.txt")
    log(f"[3/5] base: {s.size.layers} layers x {s.size.hidden} hidden, {s.base.steps} steps on half of "
        f"{general.name}")
    if not base_dir.exists():
        train_base(tok_dir, [base_data], base_dir, cfg=s.base, size=s.size, heldout=heldout, progress=progress)

    log(f"[4/5] components: {len(specs)} x {s.component.steps} steps, share {s.share} with {general.name}, "
        f"lr {s.component.lr}")
    comps = [_component(root, d, general, s, tokens[d.name], heldout=heldout, log=log, progress=progress)
             for d in specs]
    ws = _save_workspace(root, specs, comps, tokens, s)

    log("[5/5] held-out loss (nats/token): rows base and components, columns datasets")
    matrix = loss_matrix(ws, max_tokens=s.heldout_tokens)
    log(matrix.to_string(float_format=lambda v: f"{v:.3f}"))
    for line in own_domain_verdicts(matrix):
        log(line)

    if references:  # the demo's seed draws the demo's mixtures: ref-00, ref-01, ... as they always were
        train_reference_set(ws, references, seed=s.seed, train_seed=train_seed, log=log, progress=progress)
    log(f"demo workspace ready in {time.perf_counter() - started:.0f}s: {root / MANIFEST}")
    return load_workspace(root)


def _tokenizer(tok_dir: Path, specs: list[DatasetSpec], s: DemoSettings, log: Log) -> Path:
    """Train the workspace tokenizer on every dataset unless it exists."""
    log(f"[2/5] tokenizer (byte-level BPE, vocab {s.vocab_size}) -> {tok_dir}")
    if not (tok_dir / "tokenizer.json").exists():
        train_tokenizer([d.train for d in specs], tok_dir, vocab_size=s.vocab_size)
    return tok_dir


def _save_workspace(root: Path, specs: list[DatasetSpec], comps: list[ComponentEntry], tokens: dict[str, int],
                    s: DemoSettings) -> Workspace:
    """Write the demo's manifest: components, base, tokenizer, datasets, references, quick suite."""
    ws = Workspace(
        root=root, name="demo", components=comps, base="base", tokenizer="tokenizer",
        datasets=[DatasetEntry(name=d.name, domain=d.domain, train=f"data/{d.train.name}",
                               heldout=f"data/{d.heldout.name}", tokens=tokens[d.name], source=", ".join(d.sources))
                  for d in specs],
        references=_existing_references(root), suite="quick", storage="sqlite:///studies.db",
        defaults={"method": "linear", "sampler": "front", "share": s.share},
    )
    ws.save()
    return ws


def _component(root: Path, d: DatasetSpec, general: DatasetSpec, s: DemoSettings, tokens: int, *,
               heldout: dict[str, str], log: Log, progress: bool) -> ComponentEntry:
    """Train one component unless it exists (continued from ``root/base``); its manifest entry."""
    out = root / "components" / d.name
    if not out.exists():
        share = 1.0 if d.name == general.name else s.share
        train_component(root / "base", [d.train], [general.train], out, cfg=s.component, share=share, name=d.name,
                        heldout=heldout, progress=progress)
    rec = read_training(out)
    log(f"  component {d.name:<7} drift {rec.get('drift', float('nan')):.1%}")
    return ComponentEntry(name=d.name, path=f"components/{d.name}", domain=d.domain, dataset=d.name,
                          tokens=tokens, drift=rec.get("drift"))


def _base_split(train: Path, out: Path) -> Path:
    """The half of a dataset's training documents (by a stable hash of their index) the base trains on."""
    from demix_core.data.sources import Document
    from demix_core.data.split import is_heldout, read_documents, write_documents

    if not out.exists():
        docs = [Document(str(i), t) for i, t in enumerate(read_documents(train))]
        write_documents([d for d in docs if is_heldout(d.id, 0.5, salt="base")], out)
    return out


def _token_counts(tokenizer, specs: list[DatasetSpec]) -> dict[str, int]:
    return {d.name: int(len(file_tokens(tokenizer, d.train))) for d in specs}


def loss_matrix(ws: Workspace, *, max_tokens: int = 16_384) -> pd.DataFrame:
    """Held-out loss of the base and every component on every dataset (rows: models)."""
    from demix_core.io.checkpoints import build_model, open_checkpoint

    tokenizer = load_tokenizer(ws.path(ws.tokenizer or ws.base or ws.components[0].path))
    scorer = HeldoutScorer(tokenizer, {d.name: ws.path(d.heldout) for d in ws.datasets}, max_tokens=max_tokens)
    rows = {}
    models = ([("base", ws.base_path())] if ws.base else []) + [(c.name, ws.path(c.path)) for c in ws.components]
    for name, path in models:
        assert path is not None
        model = build_model(open_checkpoint(path), device="cpu")
        rows[name] = {k: v["loss"] for k, v in scorer.score(model).items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def own_domain_verdicts(matrix: pd.DataFrame) -> list[str]:
    """One line per component: does it beat the base and every other component on its own dataset?"""
    lines = []
    for name in matrix.index:
        if name == "base" or name not in matrix.columns:
            continue
        col = matrix[name]
        best = col.idxmin()
        ok = best == name
        lines.append(f"  {'ok ' if ok else 'NO '} {name}: {col[name]:.3f} on its own data "
                     f"({'best of all rows' if ok else f'beaten by {best} at {col[best]:.3f}'})")
    return lines


def _existing_references(root: Path) -> list[ReferenceEntry]:
    """The trained models in the demo's folders, each with its mixture and training seed as its training.json
    records them (a repeat keeps its seed when the manifest is written again)."""
    out = []
    for folder, kind in (("references", "reference"), ("trained_proxies", "trained_proxy")):
        for p in sorted((root / folder).glob("*")):
            rec = read_training(p)
            if rec.get("mixture"):
                out.append(ReferenceEntry(name=p.name, path=f"{folder}/{p.name}", mixture=rec["mixture"], kind=kind,
                                          seed=int(rec.get("seed") or 0) or None))
    return out
