"""One engine per workspace and device: components resident, one live proxy, one suite.

The CLI's ``eval``, the search worker, validation and the dashboard's mixer all evaluate mixtures
through this class, so there is one merge path and one scoring path.

One proxy per request: the proxy is one live module merged in place, so a merge and the scoring that
follows it run under the engine's lock. Sessions of the dashboard share an engine; each evaluation sees
exactly its own mixture's weights, whoever else is evaluating. Recent results are kept (keyed by the
mixture rounded to 1e-4, the merge method, its parameters and seed, and the suite), so a mixture already
scored, by a slider or by a study's trial (:meth:`Engine.remember_trials`), comes back at once.

Two proxy kinds: ``merge`` (the default: the components' weights merged into one model, scored by the
suite) and ``ensemble`` (the components' output ensemble, log sum_i w_i p_i, scored from each component's
cached log-probs of the suite's tokens by an :class:`~demix_core.evaluate.ensemble_scorer.EnsembleScorer`
built once on this engine's suite; the cache lives in ``<workspace>/cache/ensemble``).
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

from demix_core.data.tokenizer import load_tokenizer
from demix_core.errors import ConfigError
from demix_core.evaluate.scores import Scores
from demix_core.evaluate.suite import QuickSuite, TaskSuite, build_suite
from demix_core.io.checkpoints import build_model, open_checkpoint
from demix_core.merge import ResidentComponents
from demix_core.mixing.mixture import Mixture
from demix_core.workspace.manifest import Workspace

if TYPE_CHECKING:
    from demix_core.evaluate.ensemble_scorer import EnsembleScorer


@dataclass
class Evaluation:
    """A mixture's proxy scores, with timings and the proxy kind that gave them."""

    mixture: Mixture
    scores: Scores
    merge_seconds: float  # 0.0 for the ensemble proxy (nothing is merged)
    method: str  # the merge method; "ensemble" for the ensemble proxy
    cached: bool = False  # True: recalled from the engine's recent results, not merged again
    proxy: str = "merge"  # the proxy kind: "merge" or "ensemble"


CacheKey = tuple[tuple[float, ...], str, tuple[tuple[str, float], ...], int, str]
PROXY_KINDS = ("merge", "ensemble")


def check_proxy_kind(kind: str) -> str:
    """Return ``kind`` when it is a proxy kind, else raise a one-line :class:`ConfigError` naming the kinds."""
    if kind not in PROXY_KINDS:
        raise ConfigError(f"unknown proxy kind {kind!r}; use one of: {', '.join(PROXY_KINDS)}")
    return kind
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
        proxy: ``merge`` (weights merged into one model) or ``ensemble`` (output ensemble from cached
            component log-probs; the cache is built on the first evaluation).
        ensemble_cache: Folder of the ensemble's on-disk log-prob cache (default: ``<workspace>/cache/ensemble``;
            give another for a read-only workspace).
        log: Called with the memory plan's line before the components are loaded (e.g. ``print``).
    """

    def __init__(self, workspace: Workspace, *, suite: str | None = None, device: str = "auto",
                 tasks: Sequence[str] | None = None, limit: int | None = None,
                 include_paths: Sequence[str] = (), recent: int = RECENT, proxy: str = "merge",
                 ensemble_cache: str | os.PathLike[str] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.proxy_kind = check_proxy_kind(proxy)
        self.workspace = workspace
        self._ensemble: EnsembleScorer | None = None
        self._ensemble_cache = ensemble_cache
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
    def ensemble_built(self) -> bool:
        """Whether :meth:`ensemble_scorer` is built already (asking builds nothing and writes nothing)."""
        return self._ensemble is not None

    def ensemble_scorer(self) -> EnsembleScorer:
        """The ensemble proxy's scorer on this engine's suite (built, or read from the disk cache, once).

        A component whose log-probs are not cached is scored from the resident components: its one-hot
        linear merge (exactly its weights) is written into the live proxy, so nothing is read from disk.
        """
        from demix_core.evaluate.ensemble_scorer import CACHE_FOLDER, EnsembleScorer

        with self._lock:
            if self._ensemble is None:
                self._ensemble = EnsembleScorer.build(
                    self.suite, self.workspace.component_paths(), names=self.names, device=self.device,
                    cache_dir=self._ensemble_cache or self.workspace.path(str(CACHE_FOLDER)), lock=self._lock,
                    load=self._resident_component)
            return self._ensemble

    def _resident_component(self, i: int) -> torch.nn.Module:
        """Component ``i`` as a live model: its one-hot mixture merged into the proxy (the proxy is rewritten by
        the next merge; callers hold the lock)."""
        k = len(self.names)
        self.resident.merge_into(self.proxy, self.resident.mixture([float(j == i) for j in range(k)]),
                                 method="linear")
        return self.proxy.model

    def evaluate(self, weights: Mixture | str | Sequence[float] | Mapping[str, float], *, method: str = "linear",
                 params: Mapping[str, float] | None = None, seed: int = 0, fresh: bool = False) -> Evaluation:
        """Score the mixture's proxy (this engine's kind), or recall a recent result.

        Merge proxy: the mixture is merged into the live proxy (in place) and the suite scores it.
        Ensemble proxy: the scores come from the cached component log-probs (``method``, ``params`` and
        ``seed`` do not apply). Safe to call from several threads: merge and score run under one lock.

        Args:
            weights: The mixture (``"a=0.5,b=0.5"``, a sequence, a mapping or a Mixture).
            method: Merge method (merge proxy only).
            params: Merge method parameters (merge proxy only).
            seed: Seed of stochastic merge methods (merge proxy only).
            fresh: Merge and score even when a recent result exists (timing runs).

        Returns:
            The evaluation (``cached`` says whether it was recalled).
        """
        mix = self.mixture(weights)
        if self.proxy_kind == "ensemble":
            method, params, seed = "ensemble", None, 0
        key = self.cache_key(mix, method, params, seed)
        with self._lock:
            hit = None if fresh else self._recent.get(key)
            if hit is not None:
                self._recent.move_to_end(key)
                return replace(copy.deepcopy(hit), cached=True)
            if self.proxy_kind == "ensemble":
                scorer = self.ensemble_scorer()
                start = time.perf_counter()
                scores = scorer.score(mix.weights)
                scores.seconds = time.perf_counter() - start
                ev = Evaluation(mix, scores, 0.0, method, proxy="ensemble")
            else:
                self.resident.merge_into(self.proxy, mix, method=method, params=params, seed=seed)
                scores = self.suite.score(self.proxy.model)
                ev = Evaluation(mix, scores, self.proxy.last_merge_seconds, method)
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

    def remember_trials(self, trials: Iterable[Any], *, method: str = "linear", suite: str | None = None) -> int:
        """Keep the scores of a study's finished trials as recent results (the dashboard's mixer then shows
        a mixture a worker already scored at once).

        Only trials scored on this engine's suite count: ``suite`` is the study's (``quick``, ``paper`` or its
        task list) and must equal this engine's; each trial needs the ``mixture``, ``benchmarks`` and
        ``domains`` user attributes a worker records, with this suite's benchmark keys.

        Args:
            trials: Optuna ``FrozenTrial`` objects (any state; only complete ones are used).
            method: The study's merge method.
            suite: The study's suite; None when unknown (then nothing is remembered).

        Returns:
            How many trials were remembered (none on an ensemble engine: studies score merged proxies).
        """
        if suite != self.suite.name or not self._recent or self.proxy_kind != "merge":
            return 0  # the directions and primary metrics come from one real evaluation on this engine
        template = next(reversed(self._recent.values())).scores
        count = 0
        for t in trials:
            attrs = getattr(t, "user_attrs", {})
            if getattr(getattr(t, "state", None), "name", "") != "COMPLETE" or not {"mixture", "benchmarks",
                                                                                   "domains"} <= set(attrs):
                continue
            if set(attrs["benchmarks"]) != set(template.benchmarks) or set(attrs["domains"]) != set(template.domains):
                continue
            mix = self.resident.mixture(attrs["mixture"])
            scores = Scores(dict(attrs["benchmarks"]), dict(template.higher_is_better), dict(attrs["domains"]),
                            float(attrs.get("eval_s", 0.0)), list(template.primary))
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
