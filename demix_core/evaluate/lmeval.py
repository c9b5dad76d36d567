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
  the group, so only the differing suffixes are computed (for decoder LMs in ``forward.PLAIN_HEAD``);
- each evaluation runs one forward pass per batch and reads log-probabilities at the continuation
  positions only (for plain decoder LMs the output head is applied to those positions alone).
"""

from __future__ import annotations

import io
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any

import torch

from demix_core.errors import DemixError, EvaluationError, near_matches
from demix_core.evaluate.benchdata import BENCHMARKS, require_benchmark, task_dir, write_task_dir
from demix_core.evaluate.forward import (
    Batch,
    Unit,
    cache_kwargs,
    is_plain,
    pack,
    plan,
    prefix_cache,
    share,
    token_scores,
)

PREFIX = "demix_"
SUPPORTED = ("loglikelihood", "loglikelihood_rolling")
FEWSHOT_SEED = 1234  # simple_evaluate's default fewshot_random_seed (lm_eval.defaults.DEFAULT_OTHER_SEED)


def quiet_lm_eval() -> None:
    """lm-eval logs every task at INFO and WARNING; keep the console for our own lines."""
    import logging

    import datasets

    for name in ("lm_eval", "lm-eval", "lm_eval.api.task", "lm_eval.evaluator", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    datasets.disable_progress_bars()  # "Generating test split" per data file


def task_manager(include_paths: Sequence[str | os.PathLike[str]] = (), *, builtin: bool = False) -> Any:
    """An lm-eval TaskManager over our task folder plus the user's (built-ins, ~14 s to index, only when asked)."""
    from lm_eval.tasks import TaskManager

    quiet_lm_eval()
    for p in include_paths:
        if not Path(p).is_dir():
            raise EvaluationError(f"task include path {p} is not a folder; give a folder of lm-eval task YAML")
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
        head_only: Apply the output head at continuation positions only (for decoder LMs in ``forward.PLAIN_HEAD``);
            ``False`` computes the full logits as lm-eval does (same numbers, slower).
    """

    def __init__(self, tasks: dict[str, Any], model: torch.nn.Module, tokenizer: Any, *, limit: int | None = 100,
                 batch_tokens: int = 16_384, head_only: bool = True, share_prefixes: bool = True,
                 min_prefix: int = 64, min_saved: int = 2048) -> None:
        from lm_eval.models.huggingface import HFLM

        if limit is not None and limit < 1:
            raise EvaluationError(f"subsample size must be at least 1 document per task, got {limit}; raise the limit")
        quiet_lm_eval()
        self.tasks = tasks
        self.limit = limit
        self.head_only = head_only
        self.lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
        self.max_length = int(self.lm.max_length)
        self.units: list[Unit] = []
        self._index: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        # task -> [(instance, its unit ids)]: one unit for loglikelihood, one per window for rolling
        self.instances: dict[str, list[tuple[Any, list[int]]]] = {}
        for name, task in tasks.items():
            self.instances[name] = self._requests(name, task, limit)
        self.batch_tokens = batch_tokens
        everything = list(range(len(self.units)))
        self.groups, rest = (share(self.units, batch_tokens, min_prefix, min_saved) if share_prefixes
                              else ([], everything))
        self.batches = plan(self.units, rest, batch_tokens)
        self._placed: dict[tuple[torch.device, bool], list[tuple[torch.Tensor | None, list[Batch]]]] = {}

    # --- requests and tokenization, exactly as simple_evaluate and HFLM -------------------------------

    def _requests(self, name: str, task: Any, limit: int | None) -> list[tuple[Any, list[int]]]:
        """Build a task's requests as ``simple_evaluate`` does (few-shot sampler seeded with its default,
        ``num_fewshot`` 0 when unset) and tokenize them into units."""
        if task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=FEWSHOT_SEED)  # else lm-eval's sampler is an unseeded Random()
        with redirect_stderr(io.StringIO()):  # lm-eval's per-task tqdm bar (it has no switch)
            task.build_all_requests(limit=limit, rank=0, world_size=1)
        if not task.instances:
            raise EvaluationError(f"task {name!r} has no documents in its subsample (limit {limit}); check its "
                                  "data file or raise the subsample size")
        rows = []
        for inst in task.instances:
            if inst.request_type not in SUPPORTED:
                raise EvaluationError(f"task {name!r} needs {inst.request_type} requests; only log-likelihood "
                                      "tasks (multiple choice, loglikelihood, loglikelihood_rolling) are scored")
            pairs = [self._encode(*inst.args)] if inst.request_type == "loglikelihood" else self._rolling(inst.args[0])
            rows.append((inst, [self._unit(name, ctx, cont) for ctx, cont in pairs]))
        return rows

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
            self.units.append(Unit(tokens, len(cont), cont))
        return self._index[key]

    def placed_batches(self, device: torch.device, shared: bool) -> list[tuple[torch.Tensor | None, list[Batch]]]:
        """[(prefix ids or None, batches)] placed on a device: the plain batches, then one entry per group
        (``shared=False``: every group's units as plain rows, for models we cannot feed a cache)."""
        key = (device, shared)
        if key not in self._placed:
            placed: list[tuple[torch.Tensor | None, list[Batch]]] = [
                (None, [pack(self.units, b, device) for b in self.batches])]
            if shared:
                for g in self.groups:
                    prefix = torch.tensor([g.prefix], dtype=torch.long, device=device)
                    placed.append((prefix, [pack(self.units, b, device, len(g.prefix)) for b in g.batches]))
            elif self.groups:
                units = [i for g in self.groups for b in g.batches for i in b]
                regrouped = plan(self.units, units, self.batch_tokens)
                placed.append((None, [pack(self.units, b, device) for b in regrouped]))
            self._placed[key] = placed
        return self._placed[key]

    # --- forward passes ------------------------------------------------------------------------------

    @torch.no_grad()
    def loglikelihoods(self, model: torch.nn.Module) -> tuple[list[float], list[bool]]:
        """(sum log p(continuation | context), is_greedy) for every unique unit, in unit order."""
        device = next(model.parameters()).device
        n = len(self.units)
        lls = torch.zeros(n, dtype=torch.float64, device=device)
        misses = torch.zeros(n, dtype=torch.float64, device=device)
        for prefix, batches in self.placed_batches(device, is_plain(model)):
            kv = prefix_cache(model, prefix) if prefix is not None else None
            for b in batches:
                tok_ll, hit = token_scores(model, b, kv, head_only=self.head_only)
                zeros = torch.zeros(b.units.shape[0], dtype=torch.float64, device=device)
                lls[b.units] = zeros.index_add(0, b.segment, tok_ll.double())  # per-row sums, in float64
                misses[b.units] = zeros.index_add(0, b.segment, (~hit).double())
        return lls.tolist(), (misses == 0).tolist()

    # --- metrics, by lm-eval's own functions ---------------------------------------------------------

    def score(self, model: torch.nn.Module) -> dict[str, dict[str, float]]:
        """``{task: {metric: value}}`` as ``simple_evaluate`` reports them (``metric,filter`` for other filters).

        Raises:
            EvaluationError: lm-eval's filters or metrics failed on a task's data (one line naming both).
        """
        lls, greedy = self.loglikelihoods(model)
        return {name: self._task_metrics(name, rows, lls, greedy) for name, rows in self.instances.items()}

    def _task_metrics(self, name: str, rows: list[tuple[Any, list[int]]], lls: list[float],
                      greedy: list[bool]) -> dict[str, float]:
        """One task's metrics from the units' log-likelihoods, by lm-eval's filters, process_results and
        aggregations."""
        task = self.tasks[name]
        for inst, units in rows:
            resp: Any = (lls[units[0]], greedy[units[0]]) if inst.request_type == "loglikelihood" else sum(
                lls[u] for u in units)
            inst.resps = [resp] * inst.repeats
            inst.filtered_resps = {}
        metric_names = ", ".join(str(k) for k in task.aggregation()) or "?"
        with _lm_eval_errors(name, f"its filters or metrics ({metric_names})"):
            task.apply_filters()
        by_doc: dict[int, list[Any]] = defaultdict(list)
        for inst, _ in rows:
            by_doc[inst.doc_id].append(inst)
        items: dict[str, list[Any]] = defaultdict(list)
        for filter_key in rows[0][0].filtered_resps:
            for doc_id in sorted(by_doc):
                insts = sorted(by_doc[doc_id], key=lambda x: x.idx)
                with _lm_eval_errors(name, f"metric(s) {metric_names} on document {doc_id}"):
                    metrics = task.process_results(insts[0].doc, [x.filtered_resps[filter_key] for x in insts])
                for metric, value in metrics.items():
                    items[metric if filter_key == "none" else f"{metric},{filter_key}"].append(value)
        agg = task.aggregation()
        out = {}
        for key, values in items.items():
            with _lm_eval_errors(name, f"metric {key.split(',')[0]!r}"):
                out[key] = float(agg.get(key.split(",")[0], _mean)(values))
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
        placed = self.placed_batches(device, is_plain(model))
        times = []
        with torch.no_grad():
            for _ in range(repeats):
                start = time.perf_counter()
                for prefix, batches in placed:
                    kv = prefix_cache(model, prefix) if prefix is not None else None
                    for b in batches:
                        _ = model(input_ids=b.ids, **cache_kwargs(kv, b.ids.shape[0])).logits
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - start)
        return statistics.median(times)


@contextmanager
def _lm_eval_errors(task: str, what: str) -> Iterator[None]:
    """lm-eval's own exceptions inside a user's task, as one :class:`EvaluationError` line."""
    try:
        yield
    except DemixError:
        raise
    except Exception as exc:  # lm-eval and numpy raise any type for data a metric cannot handle
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise EvaluationError(f"task {task!r}: lm-eval failed in {what} ({exc.__class__.__name__}: {first}); "
                              "remove that metric from the task's metric_list or fix its data") from None


def _mean(values: list[Any]) -> float:
    return sum(values) / len(values)


def higher_is_better(task: Any) -> dict[str, bool]:
    """Direction of each metric of a task."""
    return {m: bool(v) for m, v in task.higher_is_better().items()}
