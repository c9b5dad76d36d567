"""Beat the mixture you have: keep only candidates the predictor expects to beat it beyond noise.

A team's question is seldom "which mixture has the best composite of ranks"; it is "can we do better than the
mixture we train today, without losing a domain, and by more than noise?". :func:`screen` answers it for the
predictor's candidates. Per domain ``d``, a candidate's *margin* is its lower confidence bound minus the target's
prediction::

    margin_d = predicted_d(candidate) - predicted_d(target) - z * error_d

where ``error_d`` is the predictor's out-of-fold root mean square error on that domain (how far its predictions
miss on trials it did not see) and ``z`` the one-sided normal quantile of ``confidence``. A candidate qualifies when
every domain's margin reaches that domain's noise floor (the seed sd validation measured on repeated trained
mixtures; 0 where none was measured). With ``total`` weights it must instead beat the target on the weighted sum
of domains, where the error and floor combine as independent terms (square root of the weighted sum of squares).
With ``beat="some"`` it must beat the target by the floor on at least one domain and lose on none by more than the
floor, both at the lower bound (a claim of "not worse" is held to the same confidence as one of "better"; judged on
the mean instead, it passed mixtures on the demo that trained worse on code by 7 floors).

The target is ``natural`` (weights proportional to the components' training tokens: what training on everything
as it comes gives), ``uniform``, or any ``name=weight,...`` (the mixture a team trains today).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from demix_core.errors import ConfigError, MixtureError, StudyError
from demix_core.mixing.mixture import Mixture
from demix_core.search.picks import DEFAULT_CONFIDENCE

NATURAL = "natural"
UNIFORM = "uniform"
CURRENT = "current"  # a mixture given by its weights
SOME = "some domain"  # the screen's term of beat="some": the best domain's margin over its floor


@dataclass(frozen=True)
class Against:
    """What ``recommend --against`` asks: the target, the floor per domain, the confidence, and optionally the
    domain weights of a weighted total."""

    target: Target
    floor: Mapping[str, float] | None = None
    confidence: float = DEFAULT_CONFIDENCE
    total: Mapping[str, float] | None = None
    beat: str = "every"  # every | some (total: given by ``total``)
    measured: Mapping[str, float] | None = None  # the target's own measured scores (a trial of it), else predicted


class NothingBeats(StudyError):
    """No candidate is expected to beat the target beyond noise; ``screen`` says which domain blocks it."""

    def __init__(self, screen: Screen) -> None:
        super().__init__(screen.summary())
        self.screen = screen


def natural_mixture(names: Sequence[str], tokens: Sequence[float]) -> dict[str, float]:
    """Weights proportional to the components' training tokens (uniform when none has tokens)."""
    t = np.array([max(float(x), 0.0) for x in tokens])
    if t.sum() <= 0:
        return {n: 1.0 / len(names) for n in names}
    return {n: float(v / t.sum()) for n, v in zip(names, t)}


@dataclass(frozen=True)
class Target:
    """The mixture to beat: ``natural``, ``uniform`` or ``current`` (given by its weights)."""

    label: str
    mixture: Mixture

    def describe(self) -> str:
        """``natural (prose=0.68 code=0.08 ...)``."""
        return f"{self.label} ({self.mixture.label(2)})"


def parse_target(spec: str, names: Sequence[str], tokens: Sequence[float]) -> Target:
    """``natural``, ``uniform`` or ``name=weight,...`` over the components ``names``.

    Raises:
        ConfigError: Anything else (the message names the bad part and the components).
    """
    text = spec.strip()
    if text.lower() == NATURAL:
        return Target(NATURAL, Mixture.from_mapping(names, natural_mixture(names, tokens)))
    if text.lower() == UNIFORM:
        return Target(UNIFORM, Mixture.from_weights(names, [1.0] * len(names)))
    if "=" not in text:
        raise ConfigError(f"--against {spec!r} is not natural, uniform or name=weight,...; e.g. --against natural "
                          f"or --against {names[0]}=0.7,{names[-1]}=0.3 (components: {', '.join(names)})")
    try:
        return Target(CURRENT, Mixture.parse(text, names))
    except MixtureError as exc:  # names the bad weight or component
        raise ConfigError(f"--against {spec!r}: {exc}") from None


def z_of(confidence: float) -> float:
    """The one-sided normal quantile of ``confidence`` (0.5 -> 0: the predictor's mean).

    Raises:
        ConfigError: ``confidence`` outside [0.5, 1).
    """
    if not 0.5 <= confidence < 1.0:
        raise ConfigError(f"confidence {confidence} must lie in [0.5, 1) (0.5 judges on the predictor's mean; 0.8 "
                          "on an 80% lower bound); e.g. --confidence 0.8")
    from scipy.stats import norm

    return float(norm.ppf(confidence))


@dataclass
class Screen:
    """Which candidates are expected to beat the target beyond noise, and by how much.

    Attributes:
        margin: Domain (or ``total``) -> (n,) each candidate's lower-bound margin over the target, minus the floor
            (a candidate qualifies where every entry is >= 0).
        qualified: (n,) which candidates qualify.
    """

    target: Target
    domains: list[str]
    floor: dict[str, float]  # domain -> noise floor used (0: not measured)
    floor_known: bool
    confidence: float
    error: dict[str, float]  # domain -> the predictor's out-of-fold RMSE
    target_predicted: dict[str, float]
    margin: dict[str, np.ndarray]
    qualified: np.ndarray
    total: dict[str, float] | None = None  # domain weights of the weighted total (None: every domain)
    beat: str = "every"  # every, total or some
    target_measured: bool = False  # the target's scores come from a trial of it, not from the predictor

    @property
    def count(self) -> int:
        """How many candidates qualify."""
        return int(self.qualified.sum())

    def pass_rates(self) -> dict[str, float]:
        """Per checked term (domain, or ``total``): the share of candidates that reach it on their own."""
        return {k: float(np.mean(v >= 0)) for k, v in self.margin.items()}

    def blocking(self) -> str | None:
        """The term that blocks most: the one fewest candidates reach (None when some candidate qualifies)."""
        if self.count:
            return None
        rates = self.pass_rates()
        return min(rates, key=lambda k: (rates[k], float(self.margin[k].max())))

    def summary(self) -> str:
        """One sentence: how many qualify, or which domain blocks and by how much."""
        on = {"total": "on the weighted total", "some": "on some domain without losing any beyond it"}.get(
            self.beat, "on every domain")
        how = (f"by at least the noise floor {on}, at the {self.confidence:.0%} lower bound of the predictor's "
               "out-of-fold error")
        if not self.floor_known:
            how += " (noise floor unknown: judged on the predictor's error alone)"
        if not self.target_measured:
            how += (f" ({self.target.label}'s own scores are predicted, not measured: no trial of the study holds "
                    "it; the predictor can miss most where trials are few)")
        n = len(self.qualified)
        if self.count:
            return f"{self.count:,} of {n:,} candidates are expected to beat {self.target.describe()} {how}"
        block = self.blocking()
        assert block is not None
        best = float(self.margin[block].max())
        rates = self.pass_rates()
        others = ", ".join(f"{k} {r:.0%}" for k, r in rates.items() if k != block)
        if block == SOME:
            why = (f"no candidate gains the floor on any domain without losing one (the best falls {-best:.3g} short"
                   + (f"; candidates not losing each domain: {others}" if others else "") + ")")
        elif best < 0:
            why = (f"{block} blocks it (the best candidate's lower bound falls {-best:.3g} short of the floor on "
                   f"{block}" + (f"; candidates reaching the other terms: {others}" if others else "") + ")")
        else:
            why = (f"{block} blocks it together with the rest: {rates[block]:.0%} of candidates reach {block} and "
                   f"{others}, but none reaches all at once")
        return (f"no candidate of {n:,} is expected to beat {self.target.describe()} {how}: {why}; ask for less "
                "(--confidence 0.5 judges on the mean, --beat some on one domain without losing the others, --beat "
                "total on a weighted total) or run more trials")

    def at(self, predicted: Mapping[str, float]) -> dict[str, dict[str, float]]:
        """Per domain, for one mixture's predictions: its predicted gain over the target, the lower bound of that
        gain, and the floor it has to reach."""
        z = z_of(self.confidence)
        return {d: {"gain": float(predicted[d]) - self.target_predicted[d],
                    "lower": float(predicted[d]) - self.target_predicted[d] - z * self.error[d],
                    "floor": self.floor[d]} for d in self.domains}

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"target": self.target.label, "mixture": self.target.mixture.as_dict(),
                "target_predicted": self.target_predicted, "confidence": self.confidence, "error": self.error,
                "floor": self.floor, "floor_known": self.floor_known, "total": self.total, "beat": self.beat,
                "target_measured": self.target_measured,
                "qualified": self.count, "candidates": int(len(self.qualified)), "pass_rates": self.pass_rates(),
                "blocking": self.blocking(), "summary": self.summary()}


def screen(predicted: Mapping[str, np.ndarray], target_predicted: Mapping[str, float], domains: Sequence[str],
           error: Mapping[str, float], floor: Mapping[str, float] | None, target: Target, *,
           confidence: float = DEFAULT_CONFIDENCE, total: Mapping[str, float] | None = None,
           beat: str = "every", target_measured: bool = False) -> Screen:
    """Screen candidates (their per-domain predictions) against ``target`` (its per-domain prediction).

    Args:
        predicted: Domain -> (n,) the candidates' predictions (higher is better).
        target_predicted: Domain -> the target's prediction (or its measured scores: ``target_measured``).
        domains: The domains that must be beaten.
        error: Domain -> the predictor's out-of-fold RMSE.
        floor: Domain -> noise floor (seed sd); None or a missing domain: 0 (not measured).
        target: The mixture to beat.
        confidence: One-sided level of the lower bound (0.5: the mean).
        total: Domain weights: beat the target on the weighted total instead of on every domain.
        beat: ``every`` (each domain by its floor), ``some`` (one domain by its floor, none worse than minus its
            floor); with ``total`` given: ``total``.

    Raises:
        StudyError: A domain the predictor has no predictions or error for.
    """
    z = z_of(confidence)
    lacking = [d for d in domains if d not in predicted or d not in error or d not in target_predicted]
    if lacking:
        raise StudyError(f"the predictor has no {', '.join(lacking)} scores to compare with {target.label}; the "
                         "study was made with another suite")
    floors = {d: float((floor or {}).get(d, 0.0)) for d in domains}
    gain = {d: np.asarray(predicted[d], dtype=float) - float(target_predicted[d]) for d in domains}
    if total is not None:
        w = {d: float(total.get(d, 0.0)) for d in domains}
        if sum(w.values()) <= 0:
            raise ConfigError("the weighted total needs a positive weight on some domain; e.g. --weighting "
                              + ",".join(f"{d}=1" for d in domains))
        spread = float(np.sqrt(sum((w[d] * error[d]) ** 2 for d in domains)))
        need = float(np.sqrt(sum((w[d] * floors[d]) ** 2 for d in domains)))
        weighted = np.sum([w[d] * gain[d] for d in domains], axis=0)
        margin = {"total": np.asarray(weighted, dtype=float) - z * spread - need}
        beat = "total"
    elif beat == "some":
        lower = {d: gain[d] - z * float(error[d]) for d in domains}
        margin = {d: lower[d] + floors[d] for d in domains}  # at the same bound, losing nothing beyond the floor
        margin[SOME] = np.max([lower[d] - floors[d] for d in domains], axis=0)  # better by the floor somewhere
    elif beat != "every":
        raise ConfigError(f"unknown --beat {beat!r}; choose every, some or total")
    else:
        margin = {d: gain[d] - z * float(error[d]) - floors[d] for d in domains}
    qualified = np.all(np.stack(list(margin.values())) >= 0, axis=0)
    return Screen(target, list(domains), floors, bool(floor), confidence, {d: float(error[d]) for d in domains},
                  {d: float(target_predicted[d]) for d in domains}, margin, qualified,
                  dict(total) if total is not None else None, beat, target_measured)
