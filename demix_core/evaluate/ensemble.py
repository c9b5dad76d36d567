"""The output ensemble of components, and each component's log-probs of every scored token.

The ensemble proxy of a mixture ``w`` is the token-level mixture of the components' predictions
(MDE, arXiv 2502.15950): ``log p(x_t | x_<t) = log sum_i w_i p_i(x_t | x_<t)``. Because each component's
``log p_i`` of a scored token does not depend on the mixture, a suite's scored tokens are run through
each component once (:func:`token_logprobs`); every mixture is then a weighted logsumexp over that
(K, T) matrix (:func:`mix_logprobs`). :class:`EnsembleModel` is the same ensemble as a live module
(its logits are the mixture's log-probabilities), which lm-eval and our scorers run like any causal LM:
the cached scores equal its scores.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch

from demix_core.errors import EvaluationError
from demix_core.evaluate.forward import is_plain, prefix_cache, token_scores
from demix_core.evaluate.heldout import HeldoutScorer

CACHE_VERSION = 1  # bump when the layout or the computation of cached log-probs changes


class EnsembleModel(torch.nn.Module):
    """``logits = log sum_i w_i softmax(logits_i)`` over K causal LMs that share a tokenizer.

    The logits are float64 log-probabilities (already normalised: a ``log_softmax`` of them changes
    nothing), so lm-eval's ``HFLM`` and our scorers evaluate the ensemble like any causal LM.
    Components with weight 0 are not run.

    Args:
        models: The components (same vocabulary, same device).
        weights: Initial mixture weights (non-negative, summing to 1; default: uniform).
    """

    def __init__(self, models: Sequence[torch.nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not models:
            raise EvaluationError("an ensemble needs at least one component model; give the components")
        self.models = torch.nn.ModuleList(models)
        self.config = getattr(models[0], "config", None)
        self.weights: tuple[float, ...] = ()
        self.set_weights(weights if weights is not None else [1.0 / len(models)] * len(models))

    def set_weights(self, weights: Sequence[float]) -> None:
        """Set the mixture (checked: one weight per component, non-negative, summing to 1 within 1e-6)."""
        self.weights = check_weights(weights, len(self.models))

    @property
    def device(self) -> torch.device:
        """The components' device (lm-eval reads it)."""
        return next(self.parameters()).device

    def tie_weights(self) -> None:
        """Nothing to tie (lm-eval calls this on the models it wraps)."""

    def forward(self, input_ids: torch.Tensor, **kwargs: Any) -> Any:
        """Run every component with a non-zero weight and mix their probabilities.

        Args:
            input_ids: (B, L) token ids.
            **kwargs: Passed to each component (``attention_mask``, ``use_cache``...).

        Returns:
            A ``CausalLMOutput`` whose ``logits`` (B, L, V) are the ensemble's float64 log-probabilities.
        """
        from transformers.modeling_outputs import CausalLMOutput

        kwargs.pop("cache", None)  # a prefix cache belongs to one model; the ensemble runs in full
        kwargs["use_cache"] = False
        mixed: torch.Tensor | None = None
        for w, model in zip(self.weights, self.models, strict=True):
            if w <= 0.0:
                continue
            logp = torch.log_softmax(model(input_ids=input_ids, **kwargs).logits.float(), dim=-1).double()
            term = logp + math.log(w)  # (B, L, V)
            mixed = term if mixed is None else torch.logaddexp(mixed, term)
        assert mixed is not None  # check_weights guarantees a positive weight
        return CausalLMOutput(logits=mixed)


def check_weights(weights: Sequence[float], k: int) -> tuple[float, ...]:
    """One non-negative weight per component, summing to 1 (within 1e-6): else :class:`EvaluationError`."""
    w = tuple(float(x) for x in weights)
    if len(w) != k:
        raise EvaluationError(f"the mixture has {len(w)} weights but there are {k} components; give one per component")
    if any(not math.isfinite(x) or x < 0.0 for x in w) or abs(sum(w) - 1.0) > 1e-6:
        raise EvaluationError(f"mixture weights {list(w)} must be non-negative and sum to 1; normalise them")
    return w


def mix_logprobs(logprobs: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """The ensemble's log-prob of every cached token: ``logsumexp_i(log w_i + logprobs[i])``.

    Args:
        logprobs: (K, T) float64 per-component log-probs of the scored tokens.
        weights: The mixture, checked by :func:`check_weights`.

    Returns:
        (T,) float64. A mixture with one weight 1 gives that component's row exactly.
    """
    w = check_weights(weights, logprobs.shape[0])
    rows = [i for i, x in enumerate(w) if x > 0.0]
    if len(rows) == 1:
        return logprobs[rows[0]]
    logw = torch.tensor([math.log(w[i]) for i in rows], dtype=logprobs.dtype, device=logprobs.device)
    return torch.logsumexp(logprobs[rows] + logw[:, None], dim=0)  # (T,)


@torch.no_grad()
def heldout_logprobs(model: torch.nn.Module, scorer: HeldoutScorer) -> torch.Tensor:
    """log p(token) of every predicted held-out token, sets in order, windows row-major: (T,) float64."""
    device = next(model.parameters()).device
    out = []
    for hs in scorer.sets.values():
        for start in range(0, len(hs.windows), scorer.batch):
            w = hs.windows[start: start + scorer.batch].to(device)  # (b, L + 1)
            logits = model(input_ids=w[:, :-1], use_cache=False).logits.float()  # (b, L, V)
            lp = torch.log_softmax(logits, dim=-1).gather(2, w[:, 1:, None]).squeeze(2)  # (b, L)
            out.append(lp.reshape(-1).double())
    return torch.cat(out)


def unit_offsets(fast: Any) -> torch.Tensor:
    """Start of each unit's continuation tokens in the flat token order (units in order): (U + 1,)."""
    sizes = torch.tensor([u.ntargets for u in fast.units], dtype=torch.long)
    return torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])


@torch.no_grad()
def task_logprobs(model: torch.nn.Module, fast: Any) -> torch.Tensor:
    """log p(token) of every continuation token of an lm-eval suite's units (shared prefixes run once).

    Args:
        model: A component.
        fast: A :class:`~demix_core.evaluate.lmeval.FastTaskScorer` (its units, batches and groups).

    Returns:
        (T,) float64, units in order, each unit's continuation tokens in order (see :func:`unit_offsets`).
    """
    device = next(model.parameters()).device
    offsets = unit_offsets(fast).to(device)
    out = torch.zeros(int(offsets[-1]), dtype=torch.float64, device=device)
    for prefix, batches in fast.placed_batches(device, is_plain(model)):
        kv = prefix_cache(model, prefix) if prefix is not None else None
        for b in batches:
            tok_ll, _ = token_scores(model, b, kv, head_only=fast.head_only)  # (T_b,)
            first = torch.ones_like(b.segment, dtype=torch.bool)
            first[1:] = b.segment[1:] != b.segment[:-1]
            starts = torch.nonzero(first).squeeze(1)  # where each row's tokens begin
            run = torch.arange(len(b.segment), device=device) - starts[torch.cumsum(first.long(), 0) - 1]
            out[offsets[b.units[b.segment]] + run] = tok_ll.double()
    return out


def suite_hash(suite: Any) -> str:
    """SHA-256 over everything a suite scores (held-out windows and bytes, or lm-eval units and window)."""
    h = hashlib.sha256(f"demix-ensemble-v{CACHE_VERSION}:{type(suite).__name__}".encode())
    scorer = suite.scorer
    if isinstance(scorer, HeldoutScorer):
        for name, hs in scorer.sets.items():
            h.update(f"|{name}:{hs.nbytes}:{tuple(hs.windows.shape)}".encode())
            h.update(hs.windows.to(torch.int64).contiguous().numpy().tobytes())
        return h.hexdigest()
    h.update(f"|max_length={scorer.max_length}".encode())
    for u in scorer.units:
        h.update(f"|{len(u.tokens)}:{len(u.targets)}".encode())
        h.update(torch.tensor(u.tokens + u.targets, dtype=torch.int64).numpy().tobytes())
    return h.hexdigest()
