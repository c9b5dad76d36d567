"""Suites: benchmarks -> domains -> :class:`Scores`, built once and scored many times on a live model.

- ``quick``: held-out bits-per-byte of every dataset of the workspace (the first ``heldout_tokens`` tokens
  of each held-out file, a deterministic slice; a manifest without ``heldout_tokens`` splits
  ``QUICK_TOKENS`` over its datasets), grouped into the datasets' domains. Fast enough for sliders (a
  ~1M-parameter proxy in under half a second on CPU).
- ``paper``: the paper's nine benchmarks through lm-eval (general: ARC-E, HellaSwag, PIQA, SIQA,
  WinoGrande; code: MBPP, HumanEval; math: GSM8K, MATH): accuracy where multiple choice, and
  bits-per-byte of the gold continuation or solution everywhere (``PAPER_LIMIT`` documents each).
- any list of lm-eval task names (``--tasks``), with ``--include-path`` for users' own YAML folders.

One rule gives every task its domain, ours and the user's alike: ``metadata: {domain: ...}`` in its YAML,
else the task's own name (:func:`task_domain`).

A domain's score is the mean over its benchmarks of the primary metric, sign-flipped when lower is
better, so every domain score is higher-is-better (see :mod:`demix_core.evaluate.scores`).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from demix_core.data.tokenizer import check_tokenizer
from demix_core.errors import EvaluationError, near_matches
from demix_core.evaluate.benchdata import BENCHMARKS
from demix_core.evaluate.heldout import HeldoutScorer
from demix_core.evaluate.scores import Scores
from demix_core.workspace.manifest import Workspace

SUITES = ("quick", "paper")
PRIMARY_METRICS = ("bits_per_byte", "acc", "acc_norm")
SHORT = {"bits_per_byte": "bpb"}
PAPER_LIMIT = 100  # documents per benchmark in the paper suite unless --limit says otherwise
CPU_BATCH_TOKENS = 4_096  # padded tokens per forward pass on CPU
DEVICE_BATCH_TOKENS = 16_384  # ... on GPUs and other accelerators


class Suite(Protocol):
    """Anything that scores a live model into :class:`Scores`."""

    name: str
    domains: list[str]

    def score(self, model: torch.nn.Module) -> Scores:
        """Score the model as it is now."""
        ...


def _domain_scores(values: Mapping[str, float], primary: Mapping[str, str], hib: Mapping[str, bool],
                   domain_of: Mapping[str, str]) -> dict[str, float]:
    sums: dict[str, list[float]] = defaultdict(list)
    for bench, key in primary.items():
        v = values[key]
        sums[domain_of[bench]].append(v if hib[key] else -v)
    return {d: sum(v) / len(v) for d, v in sums.items()}


class _DomainScored:
    """What every suite shares: domains from ``domain_of`` and the end of ``score``."""

    domain_of: dict[str, str]

    @property
    def domains(self) -> list[str]:
        """Domains in first-seen order."""
        return list(dict.fromkeys(self.domain_of.values()))

    def _scores(self, values: dict[str, float], hib: dict[str, bool], primary: Mapping[str, str],
                start: float) -> Scores:
        """Scores with per-domain averages of the primary metrics (lower-is-better ones negated)."""
        domains = _domain_scores(values, primary, hib, self.domain_of)
        return Scores(values, hib, domains, time.perf_counter() - start, list(primary.values()))


@dataclass
class QuickSuite(_DomainScored):
    """Held-out bits-per-byte per workspace dataset, grouped by the datasets' domains."""

    scorer: HeldoutScorer
    domain_of: dict[str, str]
    name: str = "quick"

    def score(self, model: torch.nn.Module) -> Scores:
        """Forward passes over the pre-tokenized held-out windows."""
        start = time.perf_counter()
        raw = self.scorer.score(model)
        values = {f"{d}/bpb": r["bpb"] for d, r in raw.items()}
        return self._scores(values, {k: False for k in values}, {d: f"{d}/bpb" for d in raw}, start)


@dataclass
class TaskSuite(_DomainScored):
    """lm-eval tasks scored by :class:`~demix_core.evaluate.lmeval.FastTaskScorer`."""

    scorer: Any
    domain_of: dict[str, str]
    primary_metric: str = "bits_per_byte"
    name: str = "paper"

    def score(self, model: torch.nn.Module) -> Scores:
        """Forward passes only; metrics computed by lm-eval's own functions."""
        from demix_core.evaluate.lmeval import higher_is_better

        start = time.perf_counter()
        raw = self.scorer.score(model)
        values, hib, primary = {}, {}, {}
        for task_name, metrics in raw.items():
            bench = _bench(task_name)
            directions = higher_is_better(self.scorer.tasks[task_name])
            for m, v in metrics.items():
                key = f"{bench}/{SHORT.get(m, m)}"
                values[key] = v
                hib[key] = directions.get(m.split(",")[0], m != "bits_per_byte")
            chosen = self.primary_metric if self.primary_metric in metrics else next(iter(metrics))
            primary[bench] = f"{bench}/{SHORT.get(chosen, chosen)}"
        return self._scores(values, hib, primary, start)


def build_suite(
    name: str = "quick", *, model: torch.nn.Module, tokenizer: Any, workspace: Workspace | None = None,
    tasks: Sequence[str] | None = None, include_paths: Sequence[str | os.PathLike[str]] = (),
    limit: int | None = None, primary_metric: str = "bits_per_byte", quick_tokens: int | None = None,
    batch_tokens: int | None = None,
) -> QuickSuite | TaskSuite:
    """Build a suite once (tasks loaded, requests tokenized) for a model and tokenizer.

    Args:
        name: ``quick`` or ``paper`` (ignored when ``tasks`` is given).
        model: The live model that will be scored (the proxy); used to set up tokenization.
        tokenizer: Its tokenizer.
        workspace: Needed by ``quick`` (its datasets' held-out files).
        tasks: lm-eval task names instead of a named suite (our nine by short name, the user's from
            ``include_paths``, else lm-eval's built-ins).
        include_paths: Extra lm-eval YAML folders.
        limit: Documents per task (default 100 for ``paper``; all for ``tasks``).
        primary_metric: ``bits_per_byte``, ``acc`` or ``acc_norm`` (a task without it uses its first metric).
        quick_tokens: Held-out tokens scored in ``quick``, split evenly over the workspace's datasets (default:
            :meth:`~demix_core.workspace.manifest.Workspace.heldout_slice`).
        batch_tokens: Padded tokens per forward pass for lm-eval tasks (default: 4,096 on CPU, where small
            batches stay in cache and ran 25% faster than 16,384 on the demo; 16,384 on accelerators).

    Returns:
        A suite whose ``score(model)`` gives :class:`Scores` for the model as it is now.
    """
    check_tokenizer(model, tokenizer)
    if batch_tokens is None:
        on_cpu = next(model.parameters()).device.type == "cpu"
        batch_tokens = CPU_BATCH_TOKENS if on_cpu else DEVICE_BATCH_TOKENS
    if primary_metric not in PRIMARY_METRICS:
        raise EvaluationError(f"unknown primary metric {primary_metric!r}; use one of {', '.join(PRIMARY_METRICS)}")
    if limit is not None and limit < 1:
        raise EvaluationError(f"subsample size must be at least 1 document per task, got {limit}; raise the limit")
    if tasks:
        from demix_core.evaluate.lmeval import FastTaskScorer, load_tasks

        loaded = load_tasks(tasks, include_paths=include_paths)
        scorer = FastTaskScorer(loaded, model, tokenizer, limit=limit, batch_tokens=batch_tokens)
        return TaskSuite(scorer, {_bench(t): task_domain(t, task) for t, task in loaded.items()}, primary_metric,
                         "custom")
    if name == "quick":
        if workspace is None or not workspace.datasets:
            raise EvaluationError("the quick suite scores a workspace's held-out datasets; give a workspace "
                                  "with datasets or use the paper suite")
        files = {d.name: str(workspace.path(d.heldout)) for d in workspace.datasets}
        heldout = HeldoutScorer(tokenizer, files, max_tokens=workspace.heldout_slice(quick_tokens), batch=64,
                                text_fields={d.name: d.text_field for d in workspace.datasets if d.text_field})
        return QuickSuite(heldout, {d.name: d.domain for d in workspace.datasets})
    if name == "paper":
        from demix_core.evaluate.lmeval import FastTaskScorer, load_tasks

        loaded = load_tasks(list(BENCHMARKS), builtin=False)
        scorer = FastTaskScorer(loaded, model, tokenizer, limit=limit or PAPER_LIMIT, batch_tokens=batch_tokens)
        return TaskSuite(scorer, {_bench(t): task_domain(t, task) for t, task in loaded.items()}, primary_metric)
    raise EvaluationError(f"unknown suite {name!r}; {near_matches(name, list(SUITES))} (or give lm-eval task names)")


def _bench(task_name: str) -> str:
    from demix_core.evaluate.lmeval import PREFIX

    return task_name.removeprefix(PREFIX)


def task_domain(task_name: str, task: Any) -> str:
    """A task's domain: ``metadata: {domain: ...}`` in its YAML, else the task's own name (so each
    unlabelled task is an objective of its own). The shipped paper tasks carry their domain the same way."""
    metadata = getattr(getattr(task, "config", None), "metadata", None) or {}
    return str(metadata.get("domain", _bench(task_name)))
