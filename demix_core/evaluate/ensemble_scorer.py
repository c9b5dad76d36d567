"""The ensemble proxy's scorer: a suite's scores for any mixture from cached component log-probs.

Built once per suite (each component's log-probs of every scored token: from the disk cache, else one
pass of that component), then ``score(mixture)`` is a weighted logsumexp over a (K, T) matrix, per-request
sums as lm-eval sums them, and the suite's own metric code, returning the same :class:`Scores` as the
merge proxy's suite.

Metrics that need the full distribution: whether the continuation is the greedy (argmax) decoding, i.e.
``acc`` of ``loglikelihood`` tasks and ``exact_match`` of ``multiple_choice`` tasks, cannot come from the
target tokens' log-probs. :meth:`EnsembleScorer.score` leaves them out and lists them in
:attr:`EnsembleScorer.unavailable`; :meth:`EnsembleScorer.exact` runs the ensemble model
(:class:`~demix_core.evaluate.ensemble.EnsembleModel`) through the suite and reports every metric exactly.
Multiple-choice ``acc``/``acc_norm``, ``bits_per_byte``, perplexities and the quick suite's BPB are all cached.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from demix_core.errors import EvaluationError
from demix_core.evaluate.ensemble import (
    EnsembleModel,
    check_weights,
    heldout_logprobs,
    mix_logprobs,
    suite_hash,
    task_logprobs,
    unit_offsets,
)
from demix_core.evaluate.ensemble_cache import LogprobCache, checkpoint_hash
from demix_core.evaluate.heldout import HeldoutScorer
from demix_core.evaluate.scores import Scores
from demix_core.evaluate.suite import QuickSuite, TaskSuite

GREEDY_METRICS = {"loglikelihood": ("acc",), "multiple_choice": ("exact_match",)}
LN2 = math.log(2.0)
CACHE_FOLDER = Path("cache") / "ensemble"  # inside the workspace


@dataclass
class Provenance:
    """Where each component's log-probs came from: ``"disk"``, ``"computed"`` (a checkpoint loaded),
    ``"computed (resident)"`` (a model given by ``load``) or ``"given"``."""

    source: dict[str, str]
    seconds: float


class EnsembleScorer:
    """Scores mixtures of an output ensemble from per-component token log-probs.

    Args:
        suite: The suite whose tokens were scored (a ``QuickSuite`` or ``TaskSuite``).
        logprobs: (K, T) float64: row i holds component i's log-probs of the suite's scored tokens
            (:func:`~demix_core.evaluate.ensemble.heldout_logprobs` / ``task_logprobs`` order).
        names: Component names, one per row.
        models: The component models, kept for :meth:`exact` (optional).
        lock: Held while scoring. lm-eval tasks keep per-evaluation state, so a suite shared with an
            ``Engine`` must share its lock too (``lock=engine._lock``); default: a lock of its own.
    """

    def __init__(self, suite: QuickSuite | TaskSuite, logprobs: torch.Tensor, names: Sequence[str], *,
                 models: Sequence[torch.nn.Module] | None = None, lock: Any = None) -> None:
        if logprobs.ndim != 2 or logprobs.shape[0] != len(names):
            raise EvaluationError(f"log-probs of shape {tuple(logprobs.shape)} do not fit {len(names)} components; "
                                  "give one row per component")
        self.suite = suite
        self.names = tuple(names)
        self.logprobs = logprobs.to(torch.float64)
        self.models = list(models) if models is not None else None
        self.unavailable: list[str] = []
        self.lock = lock if lock is not None else threading.RLock()
        self.provenance = Provenance({n: "given" for n in self.names}, 0.0)
        if isinstance(suite.scorer, HeldoutScorer):
            sets = suite.scorer.sets
            sizes = torch.tensor([hs.tokens for hs in sets.values()])
            self._segment = torch.repeat_interleave(torch.arange(len(sets)), sizes).to(logprobs.device)
        else:
            offsets = unit_offsets(suite.scorer)
            sizes = offsets[1:] - offsets[:-1]
            self._segment = torch.repeat_interleave(torch.arange(len(sizes)), sizes).to(logprobs.device)
            self.unavailable = greedy_metrics(suite.scorer)
        if self._segment.numel() != logprobs.shape[1]:
            raise EvaluationError(f"{logprobs.shape[1]} cached log-probs per component but the suite scores "
                                  f"{self._segment.numel()} tokens; rebuild the cache for this suite")

    @property
    def name(self) -> str:
        """The suite's name."""
        return self.suite.name

    def token_logprobs(self, weights: Sequence[float]) -> torch.Tensor:
        """The ensemble's (T,) float64 log-probs of the scored tokens for a mixture."""
        return mix_logprobs(self.logprobs, weights)

    def segment_sums(self, weights: Sequence[float]) -> torch.Tensor:
        """Summed log-probs per held-out set (quick) or per unique request (tasks), float64."""
        mixed = self.token_logprobs(weights)
        n = int(self._segment[-1]) + 1 if self._segment.numel() else 0
        return torch.zeros(n, dtype=torch.float64, device=mixed.device).index_add_(0, self._segment, mixed)

    def score(self, weights: Sequence[float]) -> Scores:
        """The mixture's :class:`Scores`, the same keys as the suite gives a model (less :attr:`unavailable`).

        Args:
            weights: One weight per component (in :attr:`names` order), non-negative, summing to 1.
        """
        w = check_weights(weights, len(self.names))
        with self.lock:
            if isinstance(self.suite, QuickSuite):
                quick = QuickSuite(cast(Any, _QuickMix(self)), self.suite.domain_of, self.suite.name)
                return quick.score(cast(Any, w))
            tasks = TaskSuite(_TaskMix(self), self.suite.domain_of, self.suite.primary_metric, self.suite.name)
            return tasks.score(cast(Any, w))

    def ensemble_model(self, weights: Sequence[float]) -> EnsembleModel:
        """The live ensemble module for a mixture (needs the models: ``build(..., keep_models=True)``)."""
        if self.models is None:
            raise EvaluationError("this ensemble scorer keeps no component models; build it with keep_models=True "
                                  "to run the ensemble model")
        return EnsembleModel(self.models, weights)

    def exact(self, weights: Sequence[float]) -> Scores:
        """Every metric of the suite, greedy ones included, by running the ensemble model (slow: K passes)."""
        model = self.ensemble_model(weights)
        with self.lock:
            return self.suite.score(model)

    @classmethod
    def build(cls, suite: QuickSuite | TaskSuite, components: Sequence[str | os.PathLike[str]], *,
              names: Sequence[str] | None = None, cache_dir: str | os.PathLike[str] | None = None,
              device: str | torch.device = "cpu", models: Sequence[torch.nn.Module] | None = None,
              keep_models: bool = False, lock: Any = None,
              load: Callable[[int], torch.nn.Module] | None = None) -> EnsembleScorer:
        """Collect every component's log-probs of the suite's tokens: from ``cache_dir``, else by one pass.

        Args:
            suite: A built suite (``build_suite(...)``); its tokens are what gets scored.
            components: The components' checkpoint folders (the cache key hashes them).
            names: Component names (default: the folders' names).
            cache_dir: The on-disk cache folder (None: memory only).
            device: Where log-probs are computed and mixed.
            models: Already loaded component models, in order (else loaded when needed); given models are
                kept for :meth:`exact`.
            keep_models: Keep the models for :meth:`exact` (loads any that the cache made unnecessary).
            lock: See the class; pass the ``Engine``'s lock when its suite is shared.
            load: ``load(i)`` gives component i as a live model for its one pass (the ``Engine`` passes its
                resident components, so nothing is read from disk); default: load the checkpoint. Models it
                gives are used at once and not kept (the ``Engine``'s is one proxy rewritten per component).
        """
        from demix_core.io.checkpoints import build_model, open_checkpoint

        start = time.perf_counter()
        names = list(names or [Path(p).name for p in components])
        if len(names) != len(components) or (models is not None and len(models) != len(components)):
            raise EvaluationError(f"{len(components)} components but {len(names)} names"
                                  f"{'' if models is None else f' and {len(models)} models'}; give one of each")
        dev = torch.device(device)
        root = Path(cache_dir) if cache_dir is not None else None
        cache = LogprobCache(root, suite_hash(suite)) if root is not None else None
        total = _tokens(suite)
        loaded: list[torch.nn.Module | None] = list(models) if models is not None else [None] * len(components)
        rows, source = [], {}
        for i, (name, path) in enumerate(zip(names, components, strict=True)):
            key = checkpoint_hash(path, root) if cache is not None else ""
            row = cache.load(name, key, total) if cache is not None else None
            source[name] = "disk" if row is not None else "computed"
            if row is None and loaded[i] is None and load is not None and not keep_models:
                row = component_logprobs(load(i), suite)
                source[name] = "computed (resident)"
                if cache is not None:
                    cache.save(name, key, row)
            if row is None or (keep_models and loaded[i] is None):
                loaded[i] = loaded[i] or build_model(open_checkpoint(path), device=dev)
            if row is None:
                row = component_logprobs(cast(torch.nn.Module, loaded[i]), suite)
                if cache is not None:
                    cache.save(name, key, row)
            rows.append(row.to(dev))
            if not keep_models and models is None:
                loaded[i] = None  # one component in memory at a time
        kept = [cast(torch.nn.Module, m) for m in loaded] if keep_models or models is not None else None
        scorer = cls(suite, torch.stack(rows), names, models=kept, lock=lock)
        scorer.provenance = Provenance(source, time.perf_counter() - start)
        return scorer


def component_logprobs(model: torch.nn.Module, suite: QuickSuite | TaskSuite) -> torch.Tensor:
    """One component's (T,) float64 log-probs of a suite's scored tokens."""
    if isinstance(suite.scorer, HeldoutScorer):
        return heldout_logprobs(model, suite.scorer)
    return task_logprobs(model, suite.scorer)


def greedy_metrics(fast: Any) -> list[str]:
    """``task/metric`` names that need the full distribution (greedy decoding), left out of cached scores."""
    out = []
    for name, task in fast.tasks.items():
        kind = getattr(task, "OUTPUT_TYPE", None) or task.get_config("output_type")
        for metric in task.aggregation():
            if metric in GREEDY_METRICS.get(str(kind), ()):
                out.append(f"{name}/{metric}")
    return out


def _tokens(suite: QuickSuite | TaskSuite) -> int:
    if isinstance(suite.scorer, HeldoutScorer):
        return sum(hs.tokens for hs in suite.scorer.sets.values())
    return int(unit_offsets(suite.scorer)[-1])


class _QuickMix:
    """Stands in for the held-out scorer: ``score(weights)`` gives its ``{set: {loss, bpb}}``."""

    def __init__(self, ens: EnsembleScorer) -> None:
        self.ens = ens

    def score(self, weights: Sequence[float]) -> dict[str, dict[str, float]]:
        sums = self.ens.segment_sums(weights).tolist()
        sets = cast(HeldoutScorer, self.ens.suite.scorer).sets
        return {name: {"loss": -s / hs.tokens, "bpb": -s / LN2 / hs.nbytes}
                for s, (name, hs) in zip(sums, sets.items(), strict=True)}


class _TaskMix:
    """Stands in for the fast task scorer: per-request sums from the cache, metrics by lm-eval."""

    def __init__(self, ens: EnsembleScorer) -> None:
        self.ens = ens
        self.fast: Any = cast(Any, ens.suite.scorer)
        self.tasks: dict[str, Any] = self.fast.tasks

    def score(self, weights: Sequence[float]) -> dict[str, dict[str, float]]:
        lls = self.ens.segment_sums(weights).tolist()
        greedy = [False] * len(lls)  # placeholder: the metrics that read it are removed below
        drop = set(self.ens.unavailable)
        out = {}
        for name, rows in self.fast.instances.items():
            metrics = self.fast._task_metrics(name, rows, lls, greedy)
            kept = {k: v for k, v in metrics.items() if f"{name}/{k.split(',')[0]}" not in drop}
            if not kept:
                raise EvaluationError(f"task {name!r} has only greedy-decoding metrics, which the ensemble proxy "
                                      "cannot score from cached log-probs; add a log-likelihood metric or use exact()")
            out[name] = kept
        return out


def workspace_scorer(workspace: Any, *, suite: str | None = None, device: str | torch.device = "auto",
                     tasks: Sequence[str] | None = None, limit: int | None = None,
                     include_paths: Sequence[str | os.PathLike[str]] = (), cache: bool = True,
                     keep_models: bool = False, lock: Any = None) -> EnsembleScorer:
    """An :class:`EnsembleScorer` over a workspace's components, with the cache in ``<workspace>/cache/ensemble``.

    Args:
        workspace: A loaded :class:`~demix_core.workspace.manifest.Workspace`.
        suite: ``quick`` or ``paper`` (default: the workspace's suite); ignored when ``tasks`` is given.
        device: ``auto``, ``cpu``, ``cuda``.
        tasks: lm-eval task names instead of a named suite.
        limit: Documents per lm-eval task.
        include_paths: The user's lm-eval YAML folders.
        cache: Read and write the on-disk cache (False: memory only).
        keep_models: Keep the components loaded for :meth:`EnsembleScorer.exact`.
        lock: Held while scoring (default: the scorer's own).
    """
    from demix_core.data.tokenizer import load_tokenizer
    from demix_core.evaluate.suite import build_suite
    from demix_core.io.checkpoints import build_model, open_checkpoint
    from demix_core.io.device import resolve_device

    dev = resolve_device(device)
    paths = workspace.component_paths()
    if not paths:
        raise EvaluationError(f"workspace {workspace.root} has no components; add components to demix.yaml first")
    tokenizer = load_tokenizer(workspace.path(workspace.tokenizer) if workspace.tokenizer else paths[0])
    first = build_model(open_checkpoint(paths[0]), device=dev)
    built = build_suite(suite or workspace.suite, model=first, tokenizer=tokenizer, workspace=workspace, tasks=tasks,
                        limit=limit, include_paths=include_paths)
    models: list[torch.nn.Module] | None = None
    if keep_models:
        models = [first, *(build_model(open_checkpoint(p), device=dev) for p in paths[1:])]
    return EnsembleScorer.build(built, paths, names=workspace.component_names, device=dev, models=models,
                                cache_dir=workspace.path(str(CACHE_FOLDER)) if cache else None, lock=lock)
