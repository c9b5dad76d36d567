"""Forward passes of the fast scorer: packed batches, shared-prefix key/value caches, continuation log-probs.

A shared prefix (a few-shot prompt) runs once per evaluation; its keys and values serve every suffix of
its group. The cache holds *every* prefix position in every layer, also in sliding-window layers: a
``DynamicCache`` built from the model's config keeps only ``window - 1`` keys in a sliding layer and
reports that as its length, which would shift the suffix's positions and masks once the prefix is longer
than the window. With all keys kept, the model's own sliding-window mask (built from absolute positions)
hides what lies outside each query's window, exactly as in one full pass over prefix + suffix; hybrid
models (full and sliding layers) get the right mask per layer the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# Causal LMs whose logits are exactly ``lm_head(model(...).last_hidden_state)``.
PLAIN_HEAD = frozenset({"llama", "qwen2", "qwen3", "mistral", "olmo", "olmo2", "phi3", "smollm3"})

KV = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Unit:
    """One unique (context tokens, continuation tokens) pair: a row of a forward pass."""

    tokens: list[int]  # model input: (context + continuation)[-(max_len + 1):][:-1]
    ntargets: int  # the continuation: predicted by the last ntargets positions
    targets: list[int]


@dataclass
class Group:
    """Units that share their first ``len(prefix)`` input tokens (no continuation token among them)."""

    prefix: list[int]
    batches: list[list[int]]  # unit ids, suffixes packed like the plain batches


@dataclass
class Batch:
    """Right-padded inputs and where the continuation tokens sit in them."""

    ids: torch.Tensor  # (B, W)
    flat: torch.Tensor  # (T,) row * W + column of each continuation token's logit
    targets: torch.Tensor  # (T,)
    segment: torch.Tensor  # (T,) index of its unit within the batch
    units: torch.Tensor  # (B,) global unit ids


def is_plain(model: torch.nn.Module) -> bool:
    """A decoder LM whose logits are ``lm_head(model(...))`` and that takes a key/value cache."""
    config = getattr(model, "config", None)
    return (getattr(config, "model_type", None) in PLAIN_HEAD and not getattr(config, "final_logit_softcapping", 0)
            and getattr(model, "lm_head", None) is not None and getattr(model, "model", None) is not None)


def prefix_cache(model: torch.nn.Module, prefix: torch.Tensor) -> KV:
    """Per-layer (keys, values) of a shared prefix, batch 1, every position kept in every layer.

    Args:
        model: A model for which :func:`is_plain` holds.
        prefix: (1, P) token ids.

    Returns:
        One (keys, values) pair per layer, each (1, heads, P, head_dim).
    """
    from transformers import DynamicCache

    body: Any = model.model  # the decoder without its head
    cache: Any = DynamicCache()  # no config: full layers only, so sliding layers keep all P keys too
    body(input_ids=prefix, cache=cache, use_cache=True)
    return [(layer.keys, layer.values) for layer in cache.layers]


def cache_kwargs(kv: KV | None, rows: int) -> dict[str, Any]:
    """Forward arguments for a batch of ``rows``: no cache, or a fresh full-layer cache holding the shared
    prefix (views; the suffix pass appends to copies)."""
    if kv is None:
        return {"use_cache": False}
    from transformers import DynamicCache

    data = [(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in kv]
    return {"use_cache": True, "cache": DynamicCache(ddp_cache_data=data)}


def token_scores(model: torch.nn.Module, b: Batch, kv: KV | None = None, *,
                 head_only: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(target), target is the argmax) at the continuation positions, each (T,).

    Args:
        model: The model.
        b: A packed batch; with ``kv``, its rows are suffixes that follow that prefix cache.
        kv: A shared prefix's cache, or None.
        head_only: Apply the output head at continuation positions only (plain models).
    """
    head = getattr(model, "lm_head", None)
    extra = cache_kwargs(kv, b.ids.shape[0])
    if head_only and is_plain(model):
        body: Any = model.model
        hidden = body(input_ids=b.ids, **extra).last_hidden_state  # (B, W, H)
        rows = hidden.reshape(-1, hidden.shape[-1])[b.flat]  # (T, H): the head sees these only
    else:
        logits = model(input_ids=b.ids, **extra).logits  # (B, W, V)
        rows, head = logits.reshape(-1, logits.shape[-1])[b.flat], None  # (T, V)
    lls, hits = [], []
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", None) or 65_536)
    step = max(1, (1 << 26) // vocab)  # ~256 MB of fp32 logits at a time
    for i in range(0, rows.shape[0], step):
        logits = (head(rows[i: i + step]) if head is not None else rows[i: i + step]).float()  # (t, V)
        target = b.targets[i: i + step]
        lls.append(torch.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1))
        hits.append(logits.argmax(dim=-1) == target)
    return torch.cat(lls), torch.cat(hits)


def pack(units: list[Unit], batch: list[int], device: torch.device, offset: int = 0) -> Batch:
    """Right-padded rows of the units' inputs from ``offset`` on (their shared prefix cut off)."""
    width = len(units[batch[0]].tokens) - offset
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    flat: list[int] = []
    targets: list[int] = []
    segment: list[int] = []
    for r, i in enumerate(batch):
        u = units[i]
        n = len(u.tokens) - offset
        ids[r, :n] = torch.tensor(u.tokens[offset:])
        flat.extend(range(r * width + n - u.ntargets, r * width + n))
        targets.extend(u.targets)
        segment.extend([r] * u.ntargets)

    def long(x: list[int]) -> torch.Tensor:
        return torch.tensor(x, dtype=torch.long, device=device)

    return Batch(ids.to(device), long(flat), long(targets), long(segment), long(batch))


def plan(units: list[Unit], ids: list[int], batch_tokens: int, offset: int = 0) -> list[list[int]]:
    """Unit ids sorted longest first, packed so that rows x width (past ``offset``) stays under budget."""
    order = sorted(ids, key=lambda i: -len(units[i].tokens))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = len(units[current[0]].tokens if current else units[i].tokens) - offset
        if current and width * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def share(units: list[Unit], batch_tokens: int, min_prefix: int, min_saved: int) -> tuple[list[Group], list[int]]:
    """Group units whose inputs start alike; returns (groups, unit ids left to plain batches).

    Units are sorted by their tokens, so units with a common prefix sit side by side; a run of neighbours
    whose common prefix stays >= ``min_prefix`` tokens forms a group, whose prefix stops before any member's
    first scored position. Groups saving fewer than ``min_saved`` tokens are dropped (a prefix pass has a
    cost of its own).
    """
    order = sorted(range(len(units)), key=lambda i: units[i].tokens)
    runs: list[list[int]] = []
    for i in order:
        if runs and common(units[runs[-1][-1]].tokens, units[i].tokens) >= min_prefix:
            runs[-1].append(i)
        else:
            runs.append([i])
    groups, rest = [], []
    for run in runs:
        first = units[run[0]].tokens
        shared = min((common(first, units[i].tokens) for i in run[1:]), default=0)
        shared = min([shared, *(len(units[i].tokens) - units[i].ntargets for i in run)])
        if len(run) > 1 and shared >= min_prefix and shared * (len(run) - 1) >= min_saved:
            groups.append(Group(first[:shared], plan(units, run, batch_tokens, offset=shared)))
        else:
            rest.extend(run)
    return groups, rest


def common(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
