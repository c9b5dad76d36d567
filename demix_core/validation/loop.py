"""Close the loop: train the recommended mixture and simple baselines, and say whether the recommendation wins.

``demix recommend --train`` writes the plan (:class:`LoopPlan`: the recommended mixture and the baselines'
mixtures, each with the name of the reference that trains it) to ``<workspace>/validation/loop.json`` and trains
what is missing; ``demix validate`` scores those references and reports (:func:`loop_report`):

- each model's per-domain scores and its composite: the DeMix composite (per domain, the percentile rank among
  the references and this model; then the weighted mean over domains), computed against the *other*
  references only, so two models that no reference separates get the same composite;
- its rank among those references (1 = best) and its regret: the best reference's composite minus its own
  (negative: it beats every reference), with a bootstrap 95% interval over references resampled with replacement;
- for each baseline, the recommendation's composite minus the baseline's with the paired interval (the same
  resampled references for both): ``beat`` when it lies above 0, ``not beat`` below, else ``inconclusive``.

Baselines: ``uniform`` (equal weights), ``natural`` (weights proportional to the components' training tokens),
``best trial`` (the study's complete trial with the best composite of its measured proxy scores) and ``null pick``
(the study's trial mixture the weight-only null ranks best: the composite of its per-domain weights).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from demix_core.evaluate.scores import composite
from demix_core.mixing.mixture import Mixture
from demix_core.search.against import CURRENT, Target, natural_mixture
from demix_core.validation.calls import call_text, calls_sentence, domain_calls
from demix_core.validation.report import null_scores
from demix_core.validation.stats import Figure, outcome
from demix_core.workspace.records import LoopPlan, read_plan

RECOMMENDED = "recommended"
BASELINES = ("uniform", "natural", "best trial", "null pick", CURRENT)


def trial_composite(values: np.ndarray, weights: Mapping[str, float] | None, domains: Sequence[str]) -> np.ndarray:
    """The DeMix composite of (n, D) domain scores (percentile ranks among the n, weighted mean over domains)."""
    return composite([dict(zip(domains, map(float, row))) for row in values], weights)


def baseline_mixtures(ws: Any, names: Sequence[str], domains: Sequence[str], trials: Sequence[Mapping[str, float]],
                      values: np.ndarray, weights: Mapping[str, float] | None = None) -> dict[str, dict[str, float]]:
    """The four baselines' mixtures.

    Args:
        ws: The workspace (components' tokens and domains).
        names: Component names.
        domains: The study's domains (objectives), in ``values``' column order.
        trials: Each complete trial's mixture.
        values: (n, D) the trials' measured domain scores.
        weights: Domain weights of the composite (None: equal).
    """
    k = len(names)
    out = {"uniform": {n: 1.0 / k for n in names},
           "natural": natural_mixture(names, [float(ws.component(n).tokens) for n in names])}
    if len(trials):
        best = int(np.argmax(trial_composite(values, weights, domains)))
        out["best trial"] = {n: float(trials[best].get(n, 0.0)) for n in names}
        null = null_scores(trials, ws.domains(), domains)
        nullc = trial_composite(np.stack([null[d] for d in domains], axis=1), weights, domains)
        out["null pick"] = {n: float(trials[int(np.argmax(nullc))].get(n, 0.0)) for n in names}
    return out


def plan_for_study(ws: Any, study: Any, recommended: Mixture, *, weighting: Any, proxy: str,
                   repeats: int = 1, against: Target | None = None) -> LoopPlan:
    """The loop's plan for a study and its recommendation, each model trained at seeds ``0 .. repeats - 1`` (names:
    an existing reference of the same mixture, else ``loop-<role>-<hash>``; seed s adds ``-s<s>``). ``against``:
    the mixture the recommendation was asked to beat (natural and uniform are baselines already; a mixture given
    by its weights joins them as ``current``)."""
    from optuna.trial import TrialState

    from demix_core.search import record
    from demix_core.train.references import default_name, find_reference

    names = list(ws.component_names)
    domains = record.domains(study)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if record.mixture(t) and record.trial_proxy(t, study) == proxy]
    values = np.array([t.values for t in done], dtype=float).reshape(len(done), len(domains))
    weights = weighting if isinstance(weighting, Mapping) else None
    mixtures = {RECOMMENDED: recommended.as_dict(),
                **baseline_mixtures(ws, names, domains, [record.mixture(t) or {} for t in done], values, weights)}
    if against is not None and against.label == CURRENT:
        mixtures[CURRENT] = against.mixture.as_dict()
    out_names: dict[str, str] = {}
    for role, mix in mixtures.items():
        m = Mixture.from_mapping(names, mix)
        found = find_reference(ws, m)
        same = next((out_names[r] for r in out_names
                     if np.allclose(list(mixtures[r].values()), list(mix.values()), atol=1e-6)), None)
        out_names[role] = (found.name if found is not None else same or
                           default_name(m, "loop-" + role.replace(" ", "-")))
    return LoopPlan(study.study_name, weighting, proxy, mixtures, out_names, repeats,
                    against.label if against is not None else None)


def train_loop(ws: Any, study: Any, mixture: Mixture, *, weighting: Any, proxy: str, baselines: bool = True,
               repeats: int = 1, against: Target | None = None, log: Callable[[str], None] = print) -> LoopPlan:
    """Record the loop's plan for a study's recommendation and train its missing models, the recommendation first
    (``demix recommend --train``). Resumable: a model already trained is kept, one cut short continues.

    Args:
        ws: The workspace (with datasets and a base).
        study: The study the recommendation came from.
        mixture: The recommended mixture.
        weighting: The composite's weighting (``composite``, ``average`` or domain weights).
        proxy: The proxy kind whose trials the baselines come from.
        baselines: Also train uniform, natural, the best trial and the null pick.
        repeats: Train each model at seeds ``0 .. repeats - 1`` (repeats: validation's noise floor).
        against: The mixture the recommendation was asked to beat (``recommend --against``).
        log: Where progress lines go.
    """
    from demix_core.workspace.records import write_plan

    plan = plan_for_study(ws, study, mixture, weighting=weighting, proxy=proxy, repeats=repeats, against=against)
    path = write_plan(ws, plan)
    log(f"the loop's plan -> {path}")
    train_plan(ws, plan, baselines=baselines, log=log)
    log(f"trained: {', '.join(plan_roles(plan, baselines))}; `demix validate --workspace {ws.root}` reports how the "
        "recommendation ranks")
    return plan


def plan_roles(plan: LoopPlan, baselines: bool = True) -> list[str]:
    """The roles a plan trains, the recommendation first."""
    return [RECOMMENDED] + ([r for r in plan.mixtures if r != RECOMMENDED] if baselines else [])


def train_plan(ws: Any, plan: LoopPlan, *, baselines: bool = True, log: Callable[[str], None] = print) -> None:
    """Train the plan's models that are missing (each resumes a run cut short), the recommendation first, each at
    the plan's seeds."""
    from demix_core.train.references import train_workspace_reference

    roles = plan_roles(plan, baselines)
    for i, role in enumerate(roles, 1):
        mix = Mixture.from_mapping(ws.component_names, plan.mixtures[role])
        for seed, name in enumerate(plan.model_names(role)):
            at = f" (seed {seed} of {plan.repeats})" if plan.repeats > 1 else ""
            log(f"model {i} of {len(roles)}: {role} = {mix.label(3)} as reference {name}{at}")
            train_workspace_reference(ws, mix, name=name, seed=seed, log=log)


@dataclass
class LoopEntry:
    """One trained model of the loop, against the references."""

    role: str
    name: str
    mixture: dict[str, float]
    domains: dict[str, float]
    composite: float
    rank: int  # 1 + references with a higher composite
    regret: Figure  # best reference's composite - this model's
    domain_ranks: dict[str, int] = field(default_factory=dict)
    versus: Figure | None = None  # baselines: recommended's composite - this one's (paired)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # baselines: domain -> difference, interval, call
    repeats: int = 1  # how many trained seeds its scores are the mean of

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        def fig(f: Figure | None) -> dict[str, float] | None:
            return None if f is None else {"value": f.value, "low": f.low, "high": f.high}

        return {"role": self.role, "name": self.name, "mixture": self.mixture, "domains": self.domains,
                "composite": self.composite, "rank": self.rank, "regret": fig(self.regret),
                "domain_ranks": self.domain_ranks, "versus": fig(self.versus),
                "outcome": outcome(self.versus) if self.versus is not None else None, "calls": self.calls,
                "repeats": self.repeats}

    def calls_line(self) -> str:
        """``  recommended minus <role> per domain: general +0.003 [-0.004, +0.010] within noise (floor 0.002)``."""
        def one(d: str, c: Mapping[str, Any]) -> str:
            floor = "" if c["floor"] is None else f" (floor {c['floor']:.3g})"
            return f"{d} {call_text(c)}{floor}"

        return f"  recommended minus {self.role} per domain: " + ", ".join(one(d, c) for d, c in self.calls.items())


@dataclass
class LoopReport:
    """The loop's models, the references' composites, and what was not trained."""

    entries: list[LoopEntry]
    references: list[str]
    reference_composite: list[float]
    missing: dict[str, str]  # role -> reference name not trained yet
    study: str = ""
    proxy: str = ""  # the proxy kind whose trials the recommendation was fitted on
    against: str | None = None  # the role the recommendation was asked to beat (None: natural is the one to beat)

    def entry(self, role: str) -> LoopEntry | None:
        """The entry of ``role``, or None."""
        return next((e for e in self.entries if e.role == role), None)

    def verdict(self) -> str:
        """One sentence: does the trained recommendation beat each baseline beyond noise?"""
        rec = self.entry(RECOMMENDED)
        if rec is None:
            return ("Loop: the recommendation is not trained yet; run `demix recommend --train` (or Train as "
                    "reference on the Recommend page).")
        parts = []
        for e in self.entries:
            if e.role == RECOMMENDED or e.versus is None:
                continue
            word = {"beat": "beats", "not beat": "does NOT beat", "inconclusive": "is inconclusive against"}[
                outcome(e.versus)]
            parts.append(f"{word} {e.role} ({e.versus.value:+.2f} [{e.versus.low:+.2f}, {e.versus.high:+.2f}])")
        text = (f"Loop: the trained recommendation ranks {rec.rank} of {len(self.references) + 1} among the references "
                f"(composite {rec.composite:.2f}, regret {rec.regret.value:+.2f} [{rec.regret.low:+.2f}, "
                f"{rec.regret.high:+.2f}])")
        if parts:
            text += ("; on the composite it " + ", ".join(parts) + " (paired 95% interval over resampled references"
                     + (" and seeds)" if any(e.repeats > 1 for e in self.entries) else ")"))
        per_domain = self.domain_sentence()
        if per_domain:
            text += f". Per domain, {per_domain}"
        if self.missing:
            text += f"; not trained yet: {', '.join(self.missing)}"
        return text + "."

    def domain_sentence(self) -> str:
        """``the recommendation beats natural by +0.04 [+0.02, +0.06] on code; within noise on general (...)``:
        per domain against the mixture it was asked to beat (natural by default); '' before both are trained."""
        target = self.entry(self.against or "natural")
        if self.entry(RECOMMENDED) is None or target is None or not target.calls:
            return ""
        return f"the recommendation {calls_sentence(target.role, target.calls)}"

    def lines(self) -> list[str]:
        """A printable table."""
        if not self.entries:
            return [self.verdict()]
        domains = list(self.entries[0].domains)
        head = f"{'model':<14}{'reference':<26}" + "".join(f"{d:>10}" for d in domains) + \
            f"{'composite':>11}{'rank':>7}{'regret [95% CI]':>24}{'rec. minus it [95% CI]':>28}  verdict"
        out = [head, "-" * len(head)]
        for e in self.entries:
            regret = f"{e.regret.value:+.2f} [{e.regret.low:+.2f}, {e.regret.high:+.2f}]"
            versus = (f"{e.versus.value:+.2f} [{e.versus.low:+.2f}, {e.versus.high:+.2f}]" if e.versus is not None
                      else "")
            out.append(f"{e.role:<14}{e.name[:25]:<26}" + "".join(f"{e.domains[d]:>10.3f}" for d in domains)
                       + f"{e.composite:>11.2f}{e.rank:>7}{regret:>24}{versus:>28}  "
                       + (outcome(e.versus) if e.versus is not None else ""))
        out.extend(e.calls_line() for e in self.entries if e.calls)
        best = int(np.argmax(self.reference_composite)) if self.reference_composite else -1
        if best >= 0:
            out.append(f"best reference: {self.references[best]} (composite {self.reference_composite[best]:.2f} "
                       f"among {len(self.references)} references)")
        out.append(self.verdict())
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return {"study": self.study, "proxy": self.proxy, "entries": [e.to_json() for e in self.entries],
                "references": self.references,
                "reference_composite": self.reference_composite, "missing": self.missing, "against": self.against,
                "verdict": self.verdict()}


def _against(model: np.ndarray, refs: np.ndarray, weights: Mapping[str, float] | None,
             domains: Sequence[str]) -> tuple[float, np.ndarray]:
    """(the model's composite, the references' composites) in the population references + model."""
    c = trial_composite(np.vstack([refs, model[None, :]]), weights, domains)
    return float(c[-1]), c[:-1]


def loop_report(reference_names: Sequence[str], reference_scores: np.ndarray, models: Mapping[str, tuple[str, Mapping[
        str, float], np.ndarray]], domains: Sequence[str], *, weights: Mapping[str, float] | None = None,
        missing: Mapping[str, str] | None = None, n: int = 1000, seed: int = 0, study: str = "",
        proxy: str = "", floor: Mapping[str, float] | None = None, floor_df: int | None = None,
        against: str | None = None) -> LoopReport:
    """Composite, rank, regret (bootstrap interval) and the paired recommended-vs-baseline differences.

    Args:
        reference_names: The references the models are ranked among (the loop's own models left out).
        reference_scores: (R, D) their domain scores (higher is better).
        models: Role -> (reference name, mixture, (D,) domain scores, or (n, D): one row per trained seed, scored
            by their mean; the bootstrap resamples the seeds as well as the references).
        domains: Column names of the scores.
        weights: Domain weights of the composite (None: equal).
        missing: Role -> name of a model not trained yet.
        n: Bootstrap resamples.
        seed: Bootstrap seed.
        study: The study the plan came from.
        proxy: The proxy kind of the trials the recommendation was fitted on.
        floor: Domain -> noise floor (seed sd; :mod:`demix_core.validation.noise`); a domain without one is called
            ``noise unknown``.
        floor_df: The floor's degrees of freedom (the per-domain intervals use Student's t).
        against: The role the recommendation was asked to beat (the verdict's per-domain sentence).
    """
    refs = np.asarray(reference_scores, dtype=float)
    r = len(refs)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, r, r) for _ in range(n)]
    boot: dict[str, np.ndarray] = {}
    regret_draws: dict[str, np.ndarray] = {}
    entries = []
    seeds = np.random.default_rng(seed + 1)  # the seeds' draws apart, so a one-seed loop keeps its figures
    for role, (name, mixture, scores) in models.items():
        runs = np.atleast_2d(np.asarray(scores, dtype=float))
        s = runs.mean(axis=0)
        comp, ref_c = _against(s, refs, weights, domains)
        means = [runs[seeds.integers(0, len(runs), len(runs))].mean(axis=0) if len(runs) > 1 else s
                 for _ in draws]
        both = [_against(m, refs[idx], weights, domains) for m, idx in zip(means, draws)]
        boot[role] = np.array([c for c, _ in both])
        regret_draws[role] = np.array([rc.max() - c for c, rc in both])
        regret = float(ref_c.max() - comp)
        lo, hi = np.percentile(regret_draws[role], [2.5, 97.5])
        domain_ranks = {d: int(1 + np.sum(refs[:, i] > s[i])) for i, d in enumerate(domains)}
        entries.append(LoopEntry(role, name, dict(mixture), dict(zip(domains, map(float, s))), comp,
                                 int(1 + np.sum(ref_c > comp)), Figure(regret, float(lo), float(hi)), domain_ranks,
                                 repeats=len(runs)))
    rec = next((e for e in entries if e.role == RECOMMENDED), None)
    if rec is not None:
        for e in entries:
            if e.role != RECOMMENDED:
                diff = boot[RECOMMENDED] - boot[e.role]
                lo, hi = np.percentile(diff, [2.5, 97.5])
                e.versus = Figure(rec.composite - e.composite, float(lo), float(hi))
                e.calls = domain_calls(rec.domains, e.domains, floor, repeats=(rec.repeats, e.repeats), df=floor_df)
    order = {role: i for i, role in enumerate((RECOMMENDED, *BASELINES))}
    entries.sort(key=lambda e: order.get(e.role, len(order)))
    ref_comp = trial_composite(refs, weights, domains).tolist() if r else []
    return LoopReport(entries, list(reference_names), [float(x) for x in ref_comp], dict(missing or {}), study, proxy,
                      against)


def workspace_loop(ws: Any, reference_names: Sequence[str], scores: Mapping[str, Mapping[str, float]],
                   domains: Sequence[str], floor: Mapping[str, float] | None = None,
                   floor_df: int | None = None) -> LoopReport | None:
    """The loop of a workspace from validation's scores (every reference's domain scores by name), or None when no
    plan was recorded. The loop's own models are ranked among the other references; a role trained at several
    seeds scores the mean of its trained repeats. ``floor``: the noise floor per domain (see :func:`loop_report`)."""
    plan = read_plan(ws)
    if plan is None:
        return None
    loop_names = plan.all_names()
    others = [n for n in reference_names if n not in loop_names]
    models, missing = {}, {}
    for role, name in plan.names.items():
        trained = [n for n in plan.model_names(role) if n in scores]
        if trained:
            runs = np.array([[scores[n][d] for d in domains] for n in trained], dtype=float)
            models[role] = (name, plan.mixtures[role], runs)
        else:
            missing[role] = name
    weights = plan.weighting if isinstance(plan.weighting, Mapping) else None
    matrix = np.array([[scores[n][d] for d in domains] for n in others], dtype=float).reshape(len(others),
                                                                                              len(domains))
    if not len(others) or not models:
        return LoopReport([], others, [], {**missing, **{k: v[0] for k, v in models.items()}}, plan.study,
                          plan.proxy)
    return loop_report(others, matrix, models, domains, weights=weights, missing=missing, study=plan.study,
                       proxy=plan.proxy, floor=floor, floor_df=floor_df, against=plan.against)



def loop_frame(loop: Mapping[str, Any]) -> Any:
    """A loop report's JSON as a table: one row per trained model (role, reference, domain scores, composite, rank,
    regret with its interval, the recommendation minus it with its interval, and the verdict)."""
    import pandas as pd

    def ci(f: Mapping[str, float] | None) -> str:
        return "" if not f else f"{f['value']:+.2f} [{f['low']:+.2f}, {f['high']:+.2f}]"

    return pd.DataFrame([{"model": e["role"], "reference": e["name"], **e["domains"], "composite": e["composite"],
                          "rank": e["rank"], "regret [95% CI]": ci(e["regret"]),
                          "recommended minus it": ci(e["versus"]), "verdict": e.get("outcome") or ""}
                         for e in loop.get("entries") or []])
