"""Bridge to lm-evaluation-harness: tasks built once, scored fast on a live model.

lm-eval defines the requests (contexts, continuations, few-shot, target delimiter), the tokenization
(``HFLM``: trailing spaces moved to the continuation, empty contexts conditioned on the prefix token,
rolling windows for ``loglikelihood_rolling``, left truncation to the model's window) and the metrics
(filters, ``process_results``, aggregations). We take all of that from lm-eval, so the numbers equal
``simple_evaluate``'s, and replace only the model calls:

- every request is tokenized once per suite and model/tokenizer, deduplicated, sorted by length and
  packed into right-padded batches of about ``batch_tokens`` tokens (kept on the model's device);
- requests that share a long prefix (a few-shot prompt: GSM8K's five worked problems, MATH's examples)
  are grouped: the prefix runs once per evaluation and its key/value cache serves every request of
  the group, so only the differing suffixes are computed (for decoder LMs in ``PLAIN_HEAD``);
- each evaluation runs one forward pass per batch and reads log-probabilities at the continuation
  positions only (for plain decoder LMs the output head is applied to those positions alone).
"""

from __future__ import annotations

import os
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from demix_core.errors import EvaluationError, near_matches
from demix_core.evaluate.benchdata import BENCHMARKS, require_benchmark, task_dir, write_task_dir

PREFIX = "demix_"
SUPPORTED = ("loglikelihood", "loglikelihood_rolling")
# Causal LMs whose logits are exactly ``lm_head(model(...).last_hidden_state)``.
PLAIN_HEAD = frozenset({"llama", "qwen2", "qwen3", "mistral", "olmo", "olmo2", "phi3", "smollm3"})


def quiet_lm_eval() -> None:
    """lm-eval logs every task at INFO and WARNING; keep the console for our own lines."""
    import logging

    for name in ("lm_eval", "lm-eval", "lm_eval.api.task", "lm_eval.evaluator", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)


def task_manager(include_paths: Sequence[str | os.PathLike[str]] = (), *, builtin: bool = False) -> Any:
    """An lm-eval TaskManager over our task folder plus the user's (built-ins, ~14 s to index, only when asked)."""
    from lm_eval.tasks import TaskManager

    quiet_lm_eval()
    for p in include_paths:
        if not Path(p).is_dir():
            raise EvaluationError(f"--include-path {p} is not a folder; give a folder of lm-eval task YAML")
    write_task_dir()
    return TaskManager(include_path=[str(task_dir()), *[str(p) for p in include_paths]], include_defaults=builtin)


def resolve_task_names(names: Sequence[str], manager: Any) -> list[str]:
    """Map short names (``arc_easy``) to our task names (``demix_arc_easy``); check they exist and have data."""
    known = set(manager.all_tasks)
    out = []
    for n in names:
        full = PREFIX + n if n in BENCHMARKS else n
        if full not in known:
            shown = sorted({k.removeprefix(PREFIX) for k in known if not k.startswith("_")})
            raise EvaluationError(f"unknown task {n!r}; {near_matches(n, shown)}")
        if full.startswith(PREFIX) and full.removeprefix(PREFIX) in BENCHMARKS:
            require_benchmark(full.removeprefix(PREFIX))
        out.append(full)
    return out


def load_tasks(names: Sequence[str], *, include_paths: Sequence[str | os.PathLike[str]] = (),
               builtin: bool | None = None) -> dict[str, Any]:
    """lm-eval Task objects by name (short names of our nine benchmarks work too).

    Args:
        names: Task or group names.
        include_paths: The user's lm-eval YAML folders.
        builtin: Index lm-eval's built-in tasks too (slow: ~14 s). ``None``: only when a name is
            neither ours nor in ``include_paths``.

    Returns:
        Task name -> lm-eval Task (groups flattened into their tasks).
    """
    from lm_eval.tasks import get_task_dict

    manager = task_manager(include_paths, builtin=bool(builtin))
    if builtin is None and any((PREFIX + n if n in BENCHMARKS else n) not in manager.all_tasks for n in names):
        manager = task_manager(include_paths, builtin=True)
    full = resolve_task_names(names, manager)
    try:
        tasks = get_task_dict(full, manager)
    except Exception as exc:  # lm-eval and datasets raise many types for a broken task or data file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "is a data file empty?"
        raise EvaluationError(f"cannot load task(s) {', '.join(full)} ({exc.__class__.__name__}: {first}); "
                              "check the task YAML and its data files") from None
    flat = dict(_flatten(tasks))
    ordered = {k: flat[k] for k in full if k in flat}  # the order asked for (groups: lm-eval's order)
    return {**ordered, **flat}


def _flatten(tasks: dict[Any, Any]) -> list[tuple[str, Any]]:
    out = []
    for key, value in tasks.items():
        if isinstance(value, dict):
            out.extend(_flatten(value))
        else:
            out.append((getattr(key, "group_name", None) or str(key), value))
    return out


@dataclass
class _Unit:
    """One unique (context tokens, continuation tokens) pair: a row of a forward pass."""

    tokens: list[int]  # model input: (context + continuation)[-(max_len + 1):][:-1]
    ntargets: int  # the continuation: predicted by the last ntargets positions
    targets: list[int]


@dataclass
class _Group:
    """Units that share their first ``len(prefix)`` input tokens (no continuation token among them)."""

    prefix: list[int]
    batches: list[list[int]]  # unit ids, suffixes packed like the plain batches


@dataclass
class _Batch:
    """Right-padded inputs and where the continuation tokens sit in them."""

    ids: torch.Tensor  # (B, W)
    flat: torch.Tensor  # (T,) row * W + column of each continuation token's logit
    targets: torch.Tensor  # (T,)
    segment: torch.Tensor  # (T,) index of its unit within the batch
    units: torch.Tensor  # (B,) global unit ids


class FastTaskScorer:
    """Scores lm-eval tasks on a live model with requests tokenized once.

    Args:
        tasks: Task name -> lm-eval Task (from :func:`load_tasks`).
        model: The live model that will be scored (the proxy); used once to set up lm-eval's tokenization.
        tokenizer: Its tokenizer.
        limit: Documents per task (the first N: a fixed-seed subsample for our converted benchmarks).
        batch_tokens: Padded tokens per forward pass.
        share_prefixes: Compute each long shared prefix once per evaluation (see the module docstring).
        min_prefix: Shortest prefix worth sharing, in tokens.
        min_saved: Fewest tokens a group must save to be shared.
        head_only: Apply the output head at continuation positions only (for decoder LMs in ``PLAIN_HEAD``);
            ``False`` computes the full logits as lm-eval does (same numbers, slower).
    """

    def __init__(self, tasks: dict[str, Any], model: torch.nn.Module, tokenizer: Any, *, limit: int | None = 100,
                 batch_tokens: int = 16_384, head_only: bool = True, share_prefixes: bool = True,
                 min_prefix: int = 64, min_saved: int = 2048) -> None:
        from lm_eval.models.huggingface import HFLM

        if limit is not None and limit < 1:
            raise EvaluationError(f"subsample size (--limit) must be at least 1 document per task, got {limit}")
        quiet_lm_eval()
        self.tasks = tasks
        self.limit = limit
        self.head_only = head_only
        self.lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
        self.max_length = int(self.lm.max_length)
        self.units: list[_Unit] = []
        self._index: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        # task -> [(instance, its unit ids)]: one unit for loglikelihood, one per window for rolling
        self.instances: dict[str, list[tuple[Any, list[int]]]] = {}
        for name, task in tasks.items():
            task.build_all_requests(limit=limit, rank=0, world_size=1)
            if not task.instances:
                raise EvaluationError(f"task {name!r} has no documents in its subsample (limit {limit}); check its "
                                      "data file or raise --limit")
            rows = []
            for inst in task.instances:
                if inst.request_type not in SUPPORTED:
                    raise EvaluationError(f"task {name!r} needs {inst.request_type} requests; only log-likelihood "
                                          "tasks (multiple choice, loglikelihood, loglikelihood_rolling) are scored")
                if inst.request_type == "loglikelihood":
                    pairs = [self._encode(*inst.args)]
                else:
                    pairs = self._rolling(inst.args[0])
                rows.append((inst, [self._unit(name, ctx, cont) for ctx, cont in pairs]))
            self.instances[name] = rows
        self.batch_tokens = batch_tokens
        self.groups, rest = self._share(min_prefix, min_saved) if share_prefixes else ([], list(range(len(self.units))))
        self.batches = self._plan(rest)
        self._placed: dict[tuple[torch.device, bool], list[tuple[torch.Tensor | None, list[_Batch]]]] = {}

    # --- tokenization, exactly as HFLM ---------------------------------------------------------------

    def _encode(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        if context == "":
            cont = self.lm.tok_encode(continuation, add_special_tokens=False)
            prefix = self.lm.prefix_token_id
            return ([prefix], cont) if not cont or prefix != cont[0] else (cont[:1], cont[1:])
        return self.lm._encode_pair(context, continuation)

    def _rolling(self, text: str) -> list[tuple[list[int], list[int]]]:
        from lm_eval import utils

        windows = utils.get_rolling_token_windows(token_list=self.lm.tok_encode(text),
                                                  prefix_token=self.lm.prefix_token_id,
                                                  max_seq_len=self.max_length, context_len=1)
        return [utils.make_disjoint_window(w) for w in windows]

    def _unit(self, task: str, ctx: list[int], cont: list[int]) -> int:
        if not cont:
            raise EvaluationError(f"task {task!r} has a request with an empty continuation; every target must "
                                  "have at least one token")
        if len(cont) > self.max_length:
            raise EvaluationError(f"task {task!r}: a continuation of {len(cont)} tokens exceeds the model's "
                                  f"{self.max_length}-token window; shorten the targets or use a longer-context model")
        tokens = (ctx + cont)[-(self.max_length + 1):][:-1]
        key = (tuple(tokens), tuple(cont))  # the input omits the last target token: key on both
        if key not in self._index:
            self._index[key] = len(self.units)
            self.units.append(_Unit(tokens, len(cont), cont))
        return self._index[key]

    def _share(self, min_prefix: int, min_saved: int) -> tuple[list[_Group], list[int]]:
        """Group units whose inputs start alike; returns (groups, units left to plain batches).

        Units are sorted by their tokens, so units with a common prefix sit side by side; a run of
        neighbours whose common prefix stays >= ``min_prefix`` tokens forms a group, whose prefix stops
        before any member's first scored position. Groups saving fewer than ``min_saved`` tokens are
        dropped (a prefix pass has a cost of its own).
        """
        order = sorted(range(len(self.units)), key=lambda i: self.units[i].tokens)
        runs: list[list[int]] = []
        for i in order:
            if runs and _common(self.units[runs[-1][-1]].tokens, self.units[i].tokens) >= min_prefix:
                runs[-1].append(i)
            else:
                runs.append([i])
        groups, rest = [], []
        for run in runs:
            first = self.units[run[0]].tokens
            shared = min((_common(first, self.units[i].tokens) for i in run[1:]), default=0)
            shared = min([shared, *(len(self.units[i].tokens) - self.units[i].ntargets for i in run)])
            if len(run) > 1 and shared >= min_prefix and shared * (len(run) - 1) >= min_saved:
                groups.append(_Group(first[:shared], self._plan(run, offset=shared)))
            else:
                rest.extend(run)
        return groups, rest

    def _plan(self, units: list[int], offset: int = 0) -> list[list[int]]:
        """Units sorted longest first, packed so that rows x width (past ``offset``) stays under budget."""
        order = sorted(units, key=lambda i: -len(self.units[i].tokens))
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            width = len(self.units[current[0]].tokens if current else self.units[i].tokens) - offset
            if current and width * (len(current) + 1) > self.batch_tokens:
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _pack(self, batch: list[int], device: torch.device, offset: int = 0) -> _Batch:
        """Right-padded rows of the units' inputs from ``offset`` on (their shared prefix cut off)."""
        width = len(self.units[batch[0]].tokens) - offset
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        flat: list[int] = []
        targets: list[int] = []
        segment: list[int] = []
        for r, i in enumerate(batch):
            u = self.units[i]
            n = len(u.tokens) - offset
            ids[r, :n] = torch.tensor(u.tokens[offset:])
            flat.extend(range(r * width + n - u.ntargets, r * width + n))
            targets.extend(u.targets)
            segment.extend([r] * u.ntargets)
        def long(x: list[int]) -> torch.Tensor:
            return torch.tensor(x, dtype=torch.long, device=device)

        return _Batch(ids.to(device), long(flat), long(targets), long(segment), long(batch))

    def _batches(self, device: torch.device, shared: bool) -> list[tuple[torch.Tensor | None, list[_Batch]]]:
        """[(prefix ids or None, batches)] placed on a device: the plain batches, then one entry per group
        (``shared=False``: every group's units as plain rows, for models we cannot feed a cache)."""
        key = (device, shared)
        if key not in self._placed:
            plan: list[tuple[torch.Tensor | None, list[_Batch]]] = [
                (None, [self._pack(b, device) for b in self.batches])]
            if shared:
                for g in self.groups:
                    prefix = torch.tensor([g.prefix], dtype=torch.long, device=device)
                    plan.append((prefix, [self._pack(b, device, len(g.prefix)) for b in g.batches]))
            elif self.groups:
                units = [i for g in self.groups for b in g.batches for i in b]
                plan.append((None, [self._pack(b, device) for b in self._plan(units)]))
            self._placed[key] = plan
        return self._placed[key]

    # --- forward passes ------------------------------------------------------------------------------

    @staticmethod
    def _plain(model: torch.nn.Module) -> bool:
        """A decoder LM whose logits are ``lm_head(model(...))`` and that takes a key/value cache."""
        config = getattr(model, "config", None)
        return (getattr(config, "model_type", None) in PLAIN_HEAD and not getattr(config, "final_logit_softcapping", 0)
                and getattr(model, "lm_head", None) is not None and getattr(model, "model", None) is not None)

    @staticmethod
    def _prefix_cache(model: torch.nn.Module, prefix: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (keys, values) of a shared prefix, batch 1."""
        body: Any = model.model  # the decoder without its head (``_plain`` models only)
        cache = body(input_ids=prefix, use_cache=True).cache
        return [(layer.keys, layer.values) for layer in cache.layers]

    @staticmethod
    def _cache_kwargs(model: torch.nn.Module, kv: list[tuple[torch.Tensor, torch.Tensor]] | None,
                      rows: int) -> dict[str, Any]:
        """Forward arguments for a batch of ``rows``: no cache, or a fresh one holding the shared prefix
        (views; the suffix pass appends to copies)."""
        if kv is None:
            return {"use_cache": False}
        from transformers import DynamicCache

        data = [(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in kv]
        config: Any = model.config
        return {"use_cache": True, "cache": DynamicCache(ddp_cache_data=data, config=config)}

    def _token_scores(self, model: torch.nn.Module, b: _Batch,
                      kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(target), target is the argmax) at the continuation positions, each (T,); with ``kv``, the
        batch holds suffixes that follow that prefix cache."""
        head = getattr(model, "lm_head", None)
        config = getattr(model, "config", None)
        extra = self._cache_kwargs(model, kv, b.ids.shape[0])
        if self.head_only and self._plain(model):
            body: Any = model.model
            hidden = body(input_ids=b.ids, **extra).last_hidden_state  # (B, W, H)
            rows = hidden.reshape(-1, hidden.shape[-1])[b.flat]  # (T, H): the head sees these only
        else:
            logits = model(input_ids=b.ids, **extra).logits  # (B, W, V)
            rows, head = logits.reshape(-1, logits.shape[-1])[b.flat], None  # (T, V)
        lls, hits = [], []
        vocab = int(getattr(config, "vocab_size", None) or 65_536)
        step = max(1, (1 << 26) // vocab)  # ~256 MB of fp32 logits at a time
        for i in range(0, rows.shape[0], step):
            logits = (head(rows[i: i + step]) if head is not None else rows[i: i + step]).float()  # (t, V)
            target = b.targets[i: i + step]
            lls.append(torch.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1))
            hits.append(logits.argmax(dim=-1) == target)
        return torch.cat(lls), torch.cat(hits)

    @torch.no_grad()
    def loglikelihoods(self, model: torch.nn.Module) -> tuple[list[float], list[bool]]:
        """(sum log p(continuation | context), is_greedy) for every unique unit, in unit order."""
        device = next(model.parameters()).device
        n = len(self.units)
        lls = torch.zeros(n, dtype=torch.float64, device=device)
        misses = torch.zeros(n, dtype=torch.float64, device=device)
        for prefix, batches in self._batches(device, self._plain(model)):
            kv = self._prefix_cache(model, prefix) if prefix is not None else None
            for b in batches:
                tok_ll, hit = self._token_scores(model, b, kv)
                zeros = torch.zeros(b.units.shape[0], dtype=torch.float64, device=device)
                lls[b.units] = zeros.index_add(0, b.segment, tok_ll.double())  # per-row sums, in float64
                misses[b.units] = zeros.index_add(0, b.segment, (~hit).double())
        return lls.tolist(), (misses == 0).tolist()

    # --- metrics, by lm-eval's own functions ---------------------------------------------------------

    def score(self, model: torch.nn.Module) -> dict[str, dict[str, float]]:
        """``{task: {metric: value}}`` as ``simple_evaluate`` reports them (``metric,filter`` for other filters)."""
        lls, greedy = self.loglikelihoods(model)
        out = {}
        for name, rows in self.instances.items():
            task = self.tasks[name]
            for inst, units in rows:
                if inst.request_type == "loglikelihood":
                    resp: Any = (lls[units[0]], greedy[units[0]])
                else:
                    resp = sum(lls[u] for u in units)
                inst.resps = [resp] * inst.repeats
                inst.filtered_resps = {}
            task.apply_filters()
            by_doc: dict[int, list[Any]] = defaultdict(list)
            for inst, _ in rows:
                by_doc[inst.doc_id].append(inst)
            items: dict[str, list[Any]] = defaultdict(list)
            for filter_key in rows[0][0].filtered_resps:
                for doc_id in sorted(by_doc):
                    insts = sorted(by_doc[doc_id], key=lambda x: x.idx)
                    metrics = task.process_results(insts[0].doc, [x.filtered_resps[filter_key] for x in insts])
                    for metric, value in metrics.items():
                        items[metric if filter_key == "none" else f"{metric},{filter_key}"].append(value)
            agg = task.aggregation()
            out[name] = {key: float(agg.get(key.split(",")[0], _mean)(values)) for key, values in items.items()}
        return out

    # --- sizes and timing ----------------------------------------------------------------------------

    @property
    def tokens(self) -> int:
        """Input tokens computed per evaluation (unpadded; each shared prefix once)."""
        shared = sum(len(g.prefix) * (sum(map(len, g.batches)) - 1) for g in self.groups)
        return self.tokens_unshared - shared

    @property
    def tokens_unshared(self) -> int:
        """Input tokens of all requests, as lm-eval computes them (each request in full)."""
        return sum(len(u.tokens) for u in self.units)

    @property
    def requests(self) -> int:
        """Unique forward-pass rows per evaluation."""
        return len(self.units)

    def forward_only_seconds(self, model: torch.nn.Module, repeats: int = 3) -> float:
        """Median wall time of plain ``model(ids).logits`` over the same forward passes (each shared prefix
        once, its suffixes on its cache): the floor to compare with."""
        device = next(model.parameters()).device
        plan = self._batches(device, self._plain(model))
        times = []
        with torch.no_grad():
            for _ in range(repeats):
                start = time.perf_counter()
                for prefix, batches in plan:
                    kv = self._prefix_cache(model, prefix) if prefix is not None else None
                    for b in batches:
                        _ = model(input_ids=b.ids, **self._cache_kwargs(model, kv, b.ids.shape[0])).logits
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - start)
        return statistics.median(times)


def _common(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _mean(values: list[Any]) -> float:
    return sum(values) / len(values)


def higher_is_better(task: Any) -> dict[str, bool]:
    """Direction of each metric of a task."""
    return {m: bool(v) for m, v in task.higher_is_better().items()}
