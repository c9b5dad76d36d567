"""A chosen mixture as the config a training framework reads.

Formats (each file states its unit):

- ``olmo-core``: YAML of OLMo-core's ``SourceMixtureDatasetConfig``: ``requested_tokens``,
  ``global_batch_size`` and ``source_list.sources[]`` with ``target_ratio``, ``paths``,
  ``max_repetition_ratio`` and ``max_source_fraction``. Unit: tokens.
- ``megatron``: JSON for Megatron-LM's ``--per-split-data-args-path`` (``train`` / ``valid`` / ``test``
  weight-prefix lists); the same list for ``--data-path`` is under ``_demix.data_path``. Unit: samples
  (sequences of ``--seq-length`` tokens, so the weights are token shares).
- ``nanotron``: YAML ``data_stages[].data.dataset`` with ``dataset_folder`` and ``dataset_weights``.
  Unit: samples (sequences of ``sequence_length`` tokens).
- ``streaming``: YAML ``streams:`` of MosaicML ``Stream(local=..., proportion=...)`` keyword arguments.
  Unit: samples (MDS records).
- ``demix``: JSON with the weights, the target, and per dataset its path, available and requested tokens
  and epochs. Unit: tokens.

Datasets at weight 0 are left out of the framework formats (the DeMix JSON keeps them). Dataset paths come
from the workspace (each component's dataset ``train`` file; for Megatron a prefix: that
path without its extension, the ``PREFIX.bin`` / ``PREFIX.idx`` its preprocessing writes). A framework reads
its own tokenized form of the data, so ``paths`` overrides any of them. Token counts are the workspace
tokenizer's (:func:`demix_core.workspace.feasible.available_tokens`).

Every export first checks the mixture against the workspace's budget at the target: a mixture that asks a
dataset for more than ``max_epochs x available`` tokens fails with one line naming the dataset that limits this
mixture and by how much (:meth:`demix_core.mixing.bounds.Bounds.check`). A budget that states no epoch cap
gets the default :data:`~demix_core.workspace.budget.DEFAULT_MAX_EPOCHS` (4), and every export states each
dataset's cap and whether it is that default; :func:`repetition_warning` is the one line for an export that
repeats a dataset more than the default (its cap raised, or ``none``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from demix_core.errors import BudgetError, ConfigError
from demix_core.io.atomic import atomic_write_text
from demix_core.mixing.mixture import Mixture
from demix_core.mixing.numbers import readable
from demix_core.workspace.budget import DEFAULT_EPOCHS_NOTE, DEFAULT_MAX_EPOCHS, Budget
from demix_core.workspace.feasible import resolve_bounds
from demix_core.workspace.manifest import Workspace

FORMATS = ("olmo-core", "megatron", "nanotron", "streaming", "demix")
UNITS = {"olmo-core": "tokens", "megatron": "samples", "nanotron": "samples", "streaming": "samples",
         "demix": "tokens"}
SUFFIXES = {"olmo-core": ".olmo-core.yaml", "megatron": ".megatron.json", "nanotron": ".nanotron.yaml",
            "streaming": ".streaming.yaml", "demix": ".demix.json"}


@dataclass(frozen=True)
class Source:
    """One dataset of the export: its weight, where it lives, and what the run takes from it."""

    name: str
    weight: float
    path: str
    heldout: str
    available: int | None  # tokens in the dataset (workspace tokenizer); None when unknown
    tokens: int  # tokens the run takes from it: weight x target, summing to the target exactly
    max_epochs: float | None  # the budget's repetition cap (None: unlimited)
    cap_default: bool = False  # whether max_epochs is DEFAULT_MAX_EPOCHS because the budget states no cap

    @property
    def epochs(self) -> float | None:
        """How many times the run goes through this dataset."""
        return self.tokens / self.available if self.available else None


@dataclass(frozen=True)
class ExportPlan:
    """What every format writes: the mixture, the target and the sources, checked against the budget."""

    mixture: Mixture
    target_tokens: int
    sources: tuple[Source, ...]
    workspace: str
    tokenizer: str | None


def plan_export(ws: Workspace, mixture: Mixture, *, target_tokens: int | None = None,
                paths: Mapping[str, str] | None = None, budget: Budget | None = None) -> ExportPlan:
    """Check ``mixture`` against the budget at the target and gather each dataset's path and token counts.

    Args:
        ws: The workspace.
        mixture: The mixture (any order of names; the workspace's is used).
        target_tokens: Training tokens of the run (default: the budget's ``target_tokens``).
        paths: Component name -> the path the framework should read instead of the workspace's file.
        budget: The budget to check against (default: the workspace's; ``demix export-mixture --max-epochs``
            passes the workspace's with its caps replaced).

    Raises:
        BudgetError: No target, an unreachable target at the epoch caps, or a mixture outside the bounds;
            one line naming the dataset and by how much.
        ConfigError: A path override for an unknown component, or a component without a dataset file.
    """
    target = target_tokens if target_tokens is not None else ws.budget.target_tokens
    if target is None:
        raise BudgetError("no target tokens: give --target-tokens N (training tokens of the run), or set it with "
                          f"`demix budget --workspace {ws.root} --target-tokens N`")
    if target <= 0:
        raise BudgetError(f"target tokens {target} must be > 0")
    mixture = Mixture.from_mapping(ws.component_names, mixture.as_dict())
    budget = budget if budget is not None else ws.budget
    bounds = resolve_bounds(ws, target_tokens=target, budget=budget, check=False)
    bounds.check(mixture.as_dict())  # names what limits this mixture (a mixture inside the bounds: some fits)
    paths = dict(paths or {})
    unknown = [n for n in paths if n not in ws.component_names]
    if unknown:
        raise ConfigError(f"path given for {unknown[0]!r}, which is no component; use one of "
                          f"{', '.join(ws.component_names)}")
    datasets = {d.name: d for d in ws.datasets}
    tokens = _apportion(mixture.weights, target)
    sources = []
    for c, w, n_tok, avail, ep in zip(ws.components, mixture.weights, tokens, bounds.available, bounds.max_epochs):
        ds = datasets.get(c.dataset or c.name)
        if c.name in paths:
            path = heldout = paths[c.name]
        elif ds is not None:
            path, heldout = str(ws.path(ds.train)), str(ws.path(ds.heldout))
        else:
            raise ConfigError(f"component {c.name!r} has no dataset in the workspace; give the path the framework "
                              f"reads with --path {c.name}=PATH")
        sources.append(Source(c.name, float(w), path, heldout, avail, n_tok, ep, budget.epochs_default(c.name)))
    return ExportPlan(mixture, int(target), tuple(sources), str(ws.root), str(ws.path(ws.tokenizer)) if ws.tokenizer
                      else None)


def _apportion(weights: tuple[float, ...], total: int) -> list[int]:
    """Whole token counts proportional to ``weights`` that sum to ``total`` (largest remainders)."""
    exact = [w * total for w in weights]
    whole = [math.floor(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: whole[i] - exact[i])[: total - sum(whole)]:
        whole[i] += 1
    return whole


def _prefix(path: str) -> str:
    """A Megatron dataset prefix: the path without its last extension."""
    p = Path(path)
    return str(p.with_suffix("")) if p.suffix else str(p)


def _header(plan: ExportPlan, fmt: str, unit_note: str) -> str:
    lines = [f"DeMix Studio mixture for {fmt} -- unit: {UNITS[fmt]} ({unit_note})",
             f"target {plan.target_tokens:,} training tokens; workspace {plan.workspace}"]
    if plan.tokenizer:
        lines.append(f"token counts from the workspace tokenizer {plan.tokenizer}")
    for s in plan.sources:
        avail = f"{s.available:,}" if s.available is not None else "unknown"
        ep = f"{s.epochs:.3g}" if s.epochs is not None else "?"
        lines.append(f"{s.name}: weight {s.weight:.6g}, {s.tokens:,} of {avail} tokens ({ep} epochs, "
                     f"{cap_words(s)})")
    if any(s.cap_default for s in plan.sources):
        lines.append(f"{DEFAULT_EPOCHS_NOTE}; set one with demix budget --max-epochs N (none: unlimited)")
    return "".join(f"# {line}\n" for line in lines)


def cap_words(s: Source) -> str:
    """A source's epoch cap in words: ``default cap 4``, ``cap 2``, ``no cap``."""
    if s.max_epochs is None:
        return "no cap"
    return f"default cap {s.max_epochs:g}" if s.cap_default else f"cap {s.max_epochs:g}"


def repetition_warning(plan: ExportPlan) -> str | None:
    """One line when the export repeats a dataset more than :data:`DEFAULT_MAX_EPOCHS` times (its cap raised or
    lifted), naming each such dataset; None otherwise (or where the tokens are unknown)."""
    over = [s for s in plan.sources if s.epochs is not None and s.epochs > DEFAULT_MAX_EPOCHS * (1 + 1e-9)]
    if not over:
        return None
    what = ", ".join(f"{s.name} {readable(s.epochs or 0)} times ({cap_words(s)})" for s in over)
    return (f"this mixture repeats {what}, above {DEFAULT_MAX_EPOCHS:g} epochs: repeated data beyond ~4 epochs "
            "loses most of its value (Muennighoff et al. 2023); lower the target tokens or those weights")


def render(plan: ExportPlan, fmt: str, *, global_batch_size: int | None = None) -> str:
    """The export's text in ``fmt`` (one of :data:`FORMATS`).

    Args:
        plan: From :func:`plan_export`.
        fmt: The format.
        global_batch_size: OLMo-core's ``global_batch_size`` (tokens per optimizer step); required there.

    Raises:
        ConfigError: An unknown format, or OLMo-core without a global batch size.
    """
    if fmt == "olmo-core":
        return _olmo_core(plan, global_batch_size)
    if fmt == "megatron":
        return _megatron(plan)
    if fmt == "nanotron":
        return _nanotron(plan)
    if fmt == "streaming":
        return _streaming(plan)
    if fmt == "demix":
        return _demix(plan)
    raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def _olmo_core(plan: ExportPlan, global_batch_size: int | None) -> str:
    if not global_batch_size or global_batch_size <= 0:
        raise ConfigError("olmo-core needs --global-batch-size N: tokens per optimizer step (a multiple of the "
                          "sequence length), as in SourceMixtureDatasetConfig")
    sources = []
    for s in plan.sources:
        if s.weight <= 0:
            continue  # OLMo-core requires 0 < target_ratio
        need = s.epochs or 1.0
        if s.max_epochs is None:  # unlimited: allow exactly the repetition this mixture needs
            repetition, fraction = max(1.0, need), 1.0
        elif s.max_epochs >= 1:
            repetition, fraction = float(s.max_epochs), 1.0
        else:  # a cap under one epoch is OLMo-core's max_source_fraction
            repetition, fraction = 1.0, float(s.max_epochs)
        sources.append({"source_name": s.name, "target_ratio": s.weight, "paths": [s.path],
                        "max_repetition_ratio": repetition, "max_source_fraction": fraction})
    body = {"source_mixture_config": {"requested_tokens": plan.target_tokens, "global_batch_size": global_batch_size,
                                      "source_list": {"sources": sources}}}
    note = "target_ratio is each source's share of requested_tokens; paths must hold the token .npy files"
    return _header(plan, "olmo-core", note) + yaml.safe_dump(body, sort_keys=False)


def _blend(plan: ExportPlan, *, heldout: bool = False) -> list[str]:
    out: list[str] = []
    for s in plan.sources:
        if s.weight > 0:
            out += [repr(s.weight), _prefix(s.heldout if heldout else s.path)]
    return out


def _megatron(plan: ExportPlan) -> str:
    train = _blend(plan)
    body = {"train": train, "valid": _blend(plan, heldout=True), "test": _blend(plan, heldout=True),
            "_demix": {"unit": "samples: Megatron draws whole sequences of --seq-length tokens from each prefix in "
                               "proportion to its weight, so the weights are token shares",
                       "data_path": " ".join(train), "target_tokens": plan.target_tokens,
                       "tokens": {s.name: s.tokens for s in plan.sources},
                       "epochs": {s.name: s.epochs for s in plan.sources},
                       "max_epochs": {s.name: s.max_epochs for s in plan.sources},
                       "max_epochs_default": [s.name for s in plan.sources if s.cap_default],
                       "prefixes": "each prefix names the PREFIX.bin / PREFIX.idx written by "
                                   "tools/preprocess_data.py"}}
    return json.dumps(body, indent=2) + "\n"


def _nanotron(plan: ExportPlan) -> str:
    used = [s for s in plan.sources if s.weight > 0]
    body = {"data_stages": [{"name": "DeMix mixture", "start_training_step": 1,
                             "data": {"dataset": {"dataset_folder": [s.path for s in used],
                                                  "dataset_weights": [s.weight for s in used]},
                                      "num_loading_workers": 1, "seed": 42}}]}
    note = "sequences drawn from each dataset_folder in proportion to dataset_weights; folders of tokenized data"
    return _header(plan, "nanotron", note) + yaml.safe_dump(body, sort_keys=False)


def _streaming(plan: ExportPlan) -> str:
    streams = {s.name: {"local": s.path, "proportion": s.weight} for s in plan.sources if s.weight > 0}
    note = ("proportion of samples (MDS records) per Stream; token shares when every record holds the same "
            "number of tokens. Python: StreamingDataset(streams=[Stream(**kw) for kw in streams.values()], ...)")
    return _header(plan, "streaming", note) + yaml.safe_dump({"streams": streams}, sort_keys=False)


def _demix(plan: ExportPlan) -> str:
    body = {"format": "demix-mixture", "version": 1, "unit": "tokens", "target_tokens": plan.target_tokens,
            "mixture": plan.mixture.as_dict(),
            "datasets": {s.name: {"weight": s.weight, "tokens": s.tokens, "available_tokens": s.available,
                                  "epochs": s.epochs, "max_epochs": s.max_epochs,
                                  "max_epochs_default": s.cap_default, "path": s.path,
                                  "heldout": s.heldout} for s in plan.sources},
            "workspace": plan.workspace, "tokenizer": plan.tokenizer}
    return json.dumps(body, indent=2) + "\n"


def read_weights(fmt: str, text: str) -> dict[str, float]:
    """The weights an export holds, keyed by dataset name (or by path / prefix where the format has no
    names: Megatron and Nanotron), normalised as the framework normalises them.

    Raises:
        ConfigError: An unknown format or a text that is not that format.
    """
    try:
        if fmt == "olmo-core":
            data = yaml.safe_load(text)
            sources = data["source_mixture_config"]["source_list"]["sources"]
            raw = {s["source_name"]: float(s["target_ratio"]) for s in sources}
        elif fmt == "megatron":
            train = json.loads(text)["train"]
            train = train.split() if isinstance(train, str) else train
            raw = {str(train[i + 1]).strip(): float(train[i]) for i in range(0, len(train), 2)}
        elif fmt == "nanotron":
            ds = yaml.safe_load(text)["data_stages"][0]["data"]["dataset"]
            folders = ds["dataset_folder"]
            raw = dict(folders) if isinstance(folders, dict) else dict(zip(folders, map(float, ds["dataset_weights"])))
        elif fmt == "streaming":
            raw = {k: float(v["proportion"]) for k, v in yaml.safe_load(text)["streams"].items()}
        elif fmt == "demix":
            raw = {k: float(v) for k, v in json.loads(text)["mixture"].items()}
        else:
            raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    except (KeyError, IndexError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"this is not a {fmt} mixture export ({exc.__class__.__name__}: {exc})") from None
    total = math.fsum(raw.values())
    return {k: v / total for k, v in raw.items()}


def source_keys(plan: ExportPlan, fmt: str) -> dict[str, str]:
    """Dataset name -> the key :func:`read_weights` gives it in ``fmt`` (its path or prefix where the format
    names sources by path)."""
    if fmt == "megatron":
        return {s.name: _prefix(s.path) for s in plan.sources}
    if fmt == "nanotron":
        return {s.name: s.path for s in plan.sources}
    return {s.name: s.name for s in plan.sources}


def export_mixture(ws: Workspace, mixture: Mixture, fmt: str, out: str | os.PathLike[str], *,
                   target_tokens: int | None = None, paths: Mapping[str, str] | None = None,
                   global_batch_size: int | None = None, force: bool = False,
                   budget: Budget | None = None) -> tuple[Path, ExportPlan]:
    """Check, render and write (atomically) one export; returns the file and its plan."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    plan = plan_export(ws, mixture, target_tokens=target_tokens, paths=paths, budget=budget)
    text = render(plan, fmt, global_batch_size=global_batch_size)
    return atomic_write_text(out, text, force=force), plan


def describe(plan: ExportPlan) -> list[dict[str, Any]]:
    """One row per dataset (for tables): weight, tokens taken, available, epochs, cap, path."""
    return [{"dataset": s.name, "weight": s.weight, "tokens": s.tokens, "available tokens": s.available,
             "epochs": s.epochs, "max epochs": s.max_epochs, "path": s.path} for s in plan.sources]


def export_text(ws: Workspace, mixture: Mixture, fmt: str, *, target_tokens: int | None = None,
                paths: Mapping[str, str] | None = None,
                global_batch_size: int | None = None) -> tuple[str, str, str | None]:
    """(file name, text, :func:`repetition_warning`) of one export, for a download button (the dashboard's Mixer
    and Recommend pages).

    Raises:
        BudgetError, ConfigError: As :func:`plan_export` and :func:`render`.
    """
    plan = plan_export(ws, mixture, target_tokens=target_tokens, paths=paths)
    return f"mixture{SUFFIXES[fmt]}", render(plan, fmt, global_batch_size=global_batch_size), repetition_warning(plan)
