"""Bridge to lm-evaluation-harness: tasks built once, scored fast on a live model.

lm-eval defines the requests (contexts, continuations, few-shot) and the metrics (``process_results``
and aggregations); its ``HFLM`` defines how a (context, continuation) pair is tokenized. We take all
three from lm-eval, so the numbers equal ``simple_evaluate``'s, and replace only the model calls:
requests are tokenized once per suite, sorted by length, and each evaluation is one forward pass per
batch with log-probabilities read at the continuation positions only.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from demix_core.errors import EvaluationError, near_matches
from demix_core.evaluate.benchdata import BENCHMARKS, require_benchmark, task_dir, write_task_dir

PREFIX = "demix_"


def quiet_lm_eval() -> None:
    """lm-eval logs every task at INFO and WARNING; keep the console for our own lines."""
    import logging

    for name in ("lm_eval", "lm-eval", "lm_eval.api.task", "lm_eval.evaluator", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)


def task_manager(include_paths: Sequence[str | os.PathLike[str]] = (), *, builtin: bool = False) -> Any:
    """An lm-eval TaskManager over our task folder plus the user's (built-ins only when asked)."""
    from lm_eval.tasks import TaskManager

    quiet_lm_eval()
    if not (task_dir() / "_mc.yaml").exists():
        write_task_dir()
    paths = [str(task_dir()), *[str(p) for p in include_paths]]
    for p in include_paths:
        if not Path(p).is_dir():
            raise EvaluationError(f"--include-path {p} is not a folder of lm-eval task YAML")
    return TaskManager(include_path=paths, include_defaults=builtin)


def resolve_task_names(names: Sequence[str], manager: Any) -> list[str]:
    """Map short names (``arc_easy``) to our task names (``demix_arc_easy``); check they exist."""
    known = list(manager.all_tasks)
    out = []
    for n in names:
        full = PREFIX + n if n in BENCHMARKS else n
        if full not in known:
            shown = sorted({k.removeprefix(PREFIX) for k in known if not k.startswith("_")})
            raise EvaluationError(f"unknown task {n!r}; {near_matches(n, shown)}")
        if full.startswith(PREFIX):
            require_benchmark(full.removeprefix(PREFIX))
        out.append(full)
    return out


def load_tasks(names: Sequence[str], *, include_paths: Sequence[str | os.PathLike[str]] = (),
               builtin: bool = False) -> dict[str, Any]:
    """lm-eval Task objects by name (short names of our nine benchmarks work too)."""
    from lm_eval.tasks import get_task_dict

    manager = task_manager(include_paths, builtin=builtin)
    full = resolve_task_names(names, manager)
    try:
        tasks = get_task_dict(full, manager)
    except Exception as exc:  # lm-eval and datasets raise many types for a broken task or data file
        raise EvaluationError(f"cannot load tasks {', '.join(full)} ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return {name: task for name, task in _flatten(tasks)}


def _flatten(tasks: dict[Any, Any]) -> list[tuple[str, Any]]:
    out = []
    for key, value in tasks.items():
        if isinstance(value, dict):
            out.extend(_flatten(value))
        else:
            out.append((getattr(key, "group_name", None) or str(key), value))
    return out


@dataclass
class _Request:
    """One unique (context tokens, continuation tokens) pair."""

    tokens: list[int]  # model input: (context + continuation)[-(max_len + 1):][:-1]
    targets: list[int]  # continuation tokens, predicted by the last len(targets) positions


class FastTaskScorer:
    """Scores lm-eval tasks on a live model with requests tokenized once.

    Args:
        tasks: Task name -> lm-eval Task (from :func:`load_tasks`).
        model: A live model (the proxy); used once to set up lm-eval's tokenization.
        tokenizer: Its tokenizer.
        limit: Documents per task (the first N of a fixed-seed shuffle).
        batch_tokens: Padded tokens per forward pass.
    """

    def __init__(self, tasks: dict[str, Any], model: torch.nn.Module, tokenizer: Any, *, limit: int | None = 100,
                 batch_tokens: int = 16_384) -> None:
        from lm_eval.models.huggingface import HFLM

        if limit is not None and limit < 1:
            raise EvaluationError(f"subsample size must be at least 1 document per task, got {limit}")
        quiet_lm_eval()
        self.tasks = tasks
        self.limit = limit
        self.lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
        self.max_length = int(self.lm.max_length)
        index: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        self.requests: list[_Request] = []
        self.instances: dict[str, list[tuple[Any, int]]] = {}
        for name, task in tasks.items():
            task.build_all_requests(limit=limit, rank=0, world_size=1)
            if not task.instances:
                raise EvaluationError(f"task {name!r} has no documents in its subsample; raise --limit or check "
                                      "its data")
            rows = []
            for inst in task.instances:
                if inst.request_type != "loglikelihood":
                    raise EvaluationError(f"task {name!r} needs {inst.request_type}; only log-likelihood tasks are "
                                          "scored (multiple choice, bits-per-byte)")
                ctx_enc, cont_enc = self._encode(*inst.args)
                if len(cont_enc) > self.max_length:
                    raise EvaluationError(f"task {name!r}: a continuation of {len(cont_enc)} tokens exceeds the "
                                          f"model's {self.max_length}-token window; use a model with longer context")
                key = (tuple(ctx_enc), tuple(cont_enc))
                if key not in index:
                    whole = (ctx_enc + cont_enc)[-(self.max_length + 1):][:-1]
                    index[key] = len(self.requests)
                    self.requests.append(_Request(whole, cont_enc))
                rows.append((inst, index[key]))
            self.instances[name] = rows
        # Length-sorted batches of roughly batch_tokens padded tokens.
        order = sorted(range(len(self.requests)), key=lambda i: -len(self.requests[i].tokens))
        self.batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            width = len(self.requests[current[0]].tokens) if current else len(self.requests[i].tokens)
            if current and width * (len(current) + 1) > batch_tokens:
                self.batches.append(current)
                current = []
            current.append(i)
        if current:
            self.batches.append(current)
        self._tensors = [self._pack(b) for b in self.batches]

    def _encode(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        if context == "":
            return [self.lm.prefix_token_id], self.lm.tok_encode(continuation, add_special_tokens=False)
        return self.lm._encode_pair(context, continuation)

    def _pack(self, batch: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded inputs, attention mask, and flat (row, position, target) of continuation tokens."""
        width = max(len(self.requests[i].tokens) for i in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        rows, cols, tgts = [], [], []
        for r, i in enumerate(batch):
            req = self.requests[i]
            n = len(req.tokens)
            ids[r, :n] = torch.tensor(req.tokens)
            mask[r, :n] = 1
            k = len(req.targets)
            rows.extend([r] * k)
            cols.extend(range(n - k, n))
            tgts.extend(req.targets)
        return ids, mask, torch.tensor(rows), torch.stack([torch.tensor(cols), torch.tensor(tgts)])

    @torch.no_grad()
    def loglikelihoods(self, model: torch.nn.Module) -> tuple[list[float], list[bool]]:
        """(sum log p(continuation | context), is_greedy) for every unique request."""
        device = next(model.parameters()).device
        lls = [0.0] * len(self.requests)
        greedy = [False] * len(self.requests)
        for batch, (ids, mask, rows, cols_tgts) in zip(self.batches, self._tensors):
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            cols, tgts = cols_tgts[0].to(device), cols_tgts[1].to(device)
            picked = logits[rows.to(device), cols].float()  # (T, V): only continuation positions
            logp = torch.log_softmax(picked, dim=-1)
            tok_ll = logp.gather(1, tgts[:, None]).squeeze(1)
            hit = picked.argmax(dim=-1) == tgts
            start = 0
            for i in batch:
                k = len(self.requests[i].targets)
                lls[i] = float(tok_ll[start: start + k].sum())
                greedy[i] = bool(hit[start: start + k].all())
                start += k
        return lls, greedy

    def score(self, model: torch.nn.Module) -> dict[str, dict[str, float]]:
        """``{task: {metric: value}}`` exactly as lm-eval aggregates them."""
        lls, greedy = self.loglikelihoods(model)
        out = {}
        for name, rows in self.instances.items():
            task = self.tasks[name]
            per_doc: dict[int, list[tuple[int, int]]] = defaultdict(list)
            docs = {}
            for inst, ri in rows:
                per_doc[inst.doc_id].append((inst.idx, ri))
                docs[inst.doc_id] = inst.doc
            items: dict[str, list[Any]] = defaultdict(list)
            for doc_id, reqs in per_doc.items():
                reqs.sort()
                results = [(lls[ri], greedy[ri]) for _, ri in reqs]
                for metric, value in task.process_results(docs[doc_id], results).items():
                    items[metric].append(value)
            agg = task.aggregation()
            out[name] = {m: float(agg[m](v)) for m, v in items.items()}
        return out

    @property
    def tokens(self) -> int:
        """Input tokens per evaluation (unpadded)."""
        return sum(len(r.tokens) for r in self.requests)

    def forward_only_seconds(self, model: torch.nn.Module, repeats: int = 3) -> float:
        """Median wall time of the bare forward passes over the same batches (the floor)."""
        import statistics
        import time

        device = next(model.parameters()).device
        times = []
        with torch.no_grad():
            for _ in range(repeats):
                start = time.perf_counter()
                for ids, mask, _, _ in self._tensors:
                    model(input_ids=ids.to(device), attention_mask=mask.to(device))
                times.append(time.perf_counter() - start)
        return statistics.median(times)


def higher_is_better(task: Any) -> dict[str, bool]:
    """Direction of each metric of a task."""
    return {m: bool(v) for m, v in task.higher_is_better().items()}


def nan_to_none(x: float) -> float | None:
    """JSON-friendly floats."""
    return None if math.isnan(x) else x
