"""One engine per workspace and device: components resident, one live proxy, one suite.

The CLI's ``eval``, the search worker, validation and the dashboard's mixer all evaluate mixtures
through this class, so there is one merge path and one scoring path.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from demix_core.checkpoints import build_model, open_checkpoint
from demix_core.evaluate.scores import Scores
from demix_core.evaluate.suite import QuickSuite, TaskSuite, build_suite
from demix_core.merge import ResidentComponents
from demix_core.mixture import Mixture
from demix_core.train import load_tokenizer
from demix_core.workspace import Workspace


@dataclass
class Evaluation:
    """A mixture's merged proxy scores, with timings."""

    mixture: Mixture
    scores: Scores
    merge_seconds: float
    method: str


class Engine:
    """Components loaded once on a device, a proxy merged in place, a suite built once.

    Args:
        workspace: The workspace.
        suite: ``quick``, ``paper``, or ignored when ``tasks`` is given.
        device: ``auto``, ``cpu``, ``cuda``.
        tasks: lm-eval task names instead of a named suite.
        limit: Documents per lm-eval task.
    """

    def __init__(self, workspace: Workspace, *, suite: str | None = None, device: str = "auto",
                 tasks: Sequence[str] | None = None, limit: int | None = None,
                 include_paths: Sequence[str] = ()) -> None:
        self.workspace = workspace
        base = workspace.base_path()
        self.resident = ResidentComponents(
            [open_checkpoint(p) for p in workspace.component_paths()], names=workspace.component_names,
            base=open_checkpoint(base) if base else None, device=device)
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

    def evaluate(self, weights: Mixture | str | Sequence[float] | Mapping[str, float], *, method: str = "linear",
                 params: Mapping[str, float] | None = None, seed: int = 0) -> Evaluation:
        """Merge the mixture into the live proxy (in place) and score it."""
        mix = self.mixture(weights)
        self.resident.merge_into(self.proxy, mix, method=method, params=params, seed=seed)
        scores = self.suite.score(self.proxy.model)
        return Evaluation(mix, scores, self.proxy.last_merge_seconds, method)

    def score_checkpoint(self, path: Any) -> Scores:
        """Score another checkpoint (a reference, a component) on the same suite."""
        model = build_model(open_checkpoint(path), device=self.device)
        return self.suite.score(model)

    def timed(self, weights: Any, repeats: int = 5) -> list[float]:
        """Wall times of repeated merge + score (for benchmarks)."""
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            self.evaluate(weights)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            times.append(time.perf_counter() - start)
        return times
