"""One engine per workspace and device: components resident, one live proxy, one suite.

The CLI's ``eval``, the search worker, validation and the dashboard's mixer all evaluate mixtures
through this class, so there is one merge path and one scoring path.

One proxy per request: the proxy is one live module merged in place, so a merge and the scoring that
follows it run under the engine's lock. Sessions of the dashboard share an engine; each evaluation sees
exactly its own mixture's weights, whoever else is evaluating. Recent results are kept (keyed by the
mixture rounded to 1e-4, the merge method, its parameters and seed, and the suite), so a mixture already
scored, by a slider or by a study's trial (:meth:`Engine.remember_trials`), comes back at once.

What scores a mixture is a proxy kind (:mod:`demix_core.proxy`: ``merge``, the default, the components' weights
merged into one model and scored by the suite; ``ensemble``, their output ensemble scored from cached log-probs).
An engine scores its own kind, or any registered kind asked for by name (:meth:`Engine.kind`); each kind is made
once per engine and keeps what it builds (the ensemble's log-prob cache).
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from demix_core.data.tokenizer import load_tokenizer
from demix_core.evaluate.scores import Scores
from demix_core.evaluate.suite import QuickSuite, TaskSuite, build_suite
from demix_core.io.checkpoints import build_model, open_checkpoint
from demix_core.merge import ResidentComponents
from demix_core.mixing.mixture import Mixture
from demix_core.proxy import DEFAULT_KIND, ProxyKind, get_kind
from demix_core.workspace.manifest import Workspace


@dataclass(frozen=True)
class Measured:
    """Scores measured for a mixture elsewhere (a study's trial), as plain data the engine can keep."""

    mixture: Mapping[str, float]
    benchmarks: Mapping[str, float]
    domains: Mapping[str, float]
    eval_s: float = 0.0


@dataclass
class Evaluation:
    """A mixture's proxy scores, with timings and the proxy kind that gave them."""

    mixture: Mixture
    scores: Scores
    merge_seconds: float  # 0.0 for the ensemble proxy (nothing is merged)
    method: str  # the merge method; the kind's name for a kind that merges nothing ("ensemble")
    cached: bool = False  # True: recalled from the engine's recent results, not merged again
    proxy: str = DEFAULT_KIND  # the proxy kind (demix_core.proxy): "merge" or "ensemble"


CacheKey = tuple[tuple[float, ...], str, tuple[tuple[str, float], ...], int, str]
RECENT = 256  # results kept per engine (a few KB each)


class Engine:
    """Components loaded once on a device, a proxy merged in place, a suite built once.

    Args:
        workspace: The workspace.
        suite: ``quick``, ``paper``, or ignored when ``tasks`` is given.
        device: ``auto``, ``cpu``, ``cuda``.
        tasks: lm-eval task names instead of a named suite.
        limit: Documents per lm-eval task.
        include_paths: The user's lm-eval YAML folders.
        recent: Results kept for mixtures scored again (0: none).
        proxy: The proxy kind it scores (:mod:`demix_core.proxy`): ``merge`` (weights merged into one model) or
            ``ensemble`` (output ensemble from cached component log-probs; the cache is built on the first
            evaluation).
        ensemble_cache: Folder of the ensemble's on-disk log-prob cache (default: ``<workspace>/cache/ensemble``;
            give another for a read-only workspace).
        log: Called with the memory plan's line before the components are loaded (e.g. ``print``).
    """

    def __init__(self, workspace: Workspace, *, suite: str | None = None, device: str = "auto",
                 tasks: Sequence[str] | None = None, limit: int | None = None,
                 include_paths: Sequence[str] = (), recent: int = RECENT, proxy: str = DEFAULT_KIND,
                 ensemble_cache: str | os.PathLike[str] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.proxy_kind = get_kind(proxy).name
        self.workspace = workspace
        self.ensemble_cache = ensemble_cache
        self._kinds: dict[str, ProxyKind] = {}
        self._lock = threading.RLock()  # one proxy: merge + score of one request at a time
        self._recent: OrderedDict[CacheKey, Evaluation] = OrderedDict()
        self._recent_size = recent
        base = workspace.base_path()
        self.resident = ResidentComponents(
            [open_checkpoint(p) for p in workspace.component_paths()], names=workspace.component_names,
            base=open_checkpoint(base) if base else None, device=device, log=log)
        self.device = self.resident.device
        self.proxy = self.resident.new_proxy()
        self.tokenizer = load_tokenizer(workspace.path(workspace.tokenizer) if workspace.tokenizer
                                        else workspace.component_paths()[0])
        self.suite: QuickSuite | TaskSuite = build_suite(
            suite or workspace.suite, model=self.proxy.model, tokenizer=self.tokenizer, workspace=workspace,
            tasks=tasks, limit=limit, include_paths=include_paths)

    @property
    def names(self) -> tuple[str, ...]:
        """Component names."""
        return self.resident.names

    def mixture(self, weights: Mixture | str | Sequence[float] | Mapping[str, float]) -> Mixture:
        """Coerce ``"a=0.5,b=0.5"``, a sequence, a mapping or a Mixture."""
        if isinstance(weights, str):
            return self.workspace.parse_mixture(weights)
        return self.resident.mixture(weights)

    @property
    def lock(self) -> threading.RLock:
        """Held while the live proxy or the suite is in use: one merge and its scoring at a time."""
        return self._lock

    def kind(self, name: str | None = None) -> ProxyKind:
        """This engine's instance of a proxy kind (default: its own kind), made on first use.

        Raises:
            ConfigError: ``name`` is not a registered proxy kind.
        """
        name = self.proxy_kind if name is None else get_kind(name).name
        found = self._kinds.get(name)
        if found is None:  # no lock taken (a page asks while a measurement holds it); setdefault keeps one instance
            found = self._kinds.setdefault(name, get_kind(name)(self))
        return found

    def evaluate(self, weights: Mixture | str | Sequence[float] | Mapping[str, float], *, method: str = "linear",
                 params: Mapping[str, float] | None = None, seed: int = 0, fresh: bool = False,
                 proxy: str | None = None) -> Evaluation:
        """Score the mixture's proxy (this engine's kind, or ``proxy``), or recall a recent result.

        Merge proxy: the mixture is merged into the live proxy (in place) and the suite scores it.
        Ensemble proxy: the scores come from the cached component log-probs (``method``, ``params`` and
        ``seed`` do not apply). Safe to call from several threads: merge and score run under one lock.

        Args:
            weights: The mixture (``"a=0.5,b=0.5"``, a sequence, a mapping or a Mixture).
            method: Merge method (kinds that merge only).
            params: Merge method parameters (kinds that merge only).
            seed: Seed of stochastic merge methods (kinds that merge only).
            fresh: Merge and score even when a recent result exists (timing runs).
            proxy: The proxy kind to score (default: this engine's).

        Returns:
            The evaluation (``cached`` says whether it was recalled).
        """
        mix = self.mixture(weights)
        kind = self.kind(proxy)
        if not kind.merges:
            method, params, seed = kind.name, None, 0
        key = self.cache_key(mix, method, params, seed)
        with self._lock:
            hit = None if fresh else self._recent.get(key)
            if hit is not None:
                self._recent.move_to_end(key)
                return replace(copy.deepcopy(hit), cached=True)
            scores, merge_seconds = kind.score(mix, method=method, params=params, seed=seed)
            ev = Evaluation(mix, scores, merge_seconds, method, proxy=kind.name)
            self._remember(key, ev)
        return copy.deepcopy(ev)

    def cache_key(self, mix: Mixture, method: str, params: Mapping[str, float] | None, seed: int) -> CacheKey:
        """The recent-results key: mixture rounded to 1e-4, method, its parameters and seed, suite."""
        rounded = tuple(round(w, 4) + 0.0 for w in mix.weights)  # + 0.0: no -0.0
        return rounded, method, tuple(sorted((str(k), float(v)) for k, v in (params or {}).items())), seed, \
            self.suite.name

    def _remember(self, key: CacheKey, ev: Evaluation) -> None:
        if self._recent_size <= 0:
            return
        self._recent[key] = ev
        self._recent.move_to_end(key)
        while len(self._recent) > self._recent_size:
            self._recent.popitem(last=False)

    def remember_trials(self, results: Iterable[Measured], *, method: str = "linear", suite: str | None = None) -> int:
        """Keep a study's measured scores as recent results (the dashboard's mixer then shows a mixture a
        worker already scored at once). The results come from the trial record
        (:func:`demix_core.search.record.measured_results`); the engine reads no trial itself.

        Only results scored on this engine's suite count: ``suite`` is the study's (``quick``, ``paper`` or its
        task list) and must equal this engine's, and each result must carry this suite's benchmark keys.

        Args:
            results: The study's complete trials' scores.
            method: The study's merge method.
            suite: The study's suite; None when unknown (then nothing is remembered).

        Returns:
            How many results were remembered (none on an ensemble engine: studies score merged proxies).
        """
        if suite != self.suite.name or not self._recent or self.proxy_kind != "merge":
            return 0  # the directions and primary metrics come from one real evaluation on this engine
        template = next(reversed(self._recent.values())).scores
        count = 0
        for r in results:
            if set(r.benchmarks) != set(template.benchmarks) or set(r.domains) != set(template.domains):
                continue
            mix = self.resident.mixture(dict(r.mixture))
            scores = Scores(dict(r.benchmarks), dict(template.higher_is_better), dict(r.domains), float(r.eval_s),
                            list(template.primary))
            with self._lock:
                self._remember(self.cache_key(mix, method, None, 0), Evaluation(mix, scores, 0.0, method))
            count += 1
        return count

    def score_checkpoint(self, path: Any) -> Scores:
        """Score another checkpoint (a reference, a component) on the same suite."""
        model = build_model(open_checkpoint(path), device=self.device)
        with self._lock:  # the suite's task objects hold per-evaluation state
            return self.suite.score(model)

    def timed(self, weights: Any, repeats: int = 5) -> list[float]:
        """Wall times of repeated evaluations, recent results bypassed (merge + score, or the ensemble's
        cached scoring once its cache exists; for benchmarks)."""
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            self.evaluate(weights, fresh=True)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            times.append(time.perf_counter() - start)
        return times
