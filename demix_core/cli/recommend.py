"""``demix recommend``: fit the DeMix predictor on a study and recommend a mixture; ``--against`` asks for one that
beats the mixture a team trains today beyond noise; ``--train`` closes the loop."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from typing import Any

from demix_core.cli.common import lazy_option, positive_int
from demix_core.cli.search import _load, _proxy, _ws
from demix_core.errors import ConfigError
from demix_core.mixing.pairs import parse_weighting


def register(sub: Any) -> None:
    """Add ``demix recommend``."""
    _register_recommend(sub)


def _register_recommend(sub: Any) -> None:
    rc = sub.add_parser("recommend", help="fit the DeMix predictor on a study and recommend a mixture")
    _ws(rc)
    rc.add_argument("--top-k", type=positive_int, default=128)
    rc.add_argument("--samples", type=positive_int, default=100_000)
    rc.add_argument("--weighting", default="composite", help="composite, average, or domain=w,...")
    rc.add_argument("--enqueue", action="store_true", help="queue the recommendation as a trial")
    rc.add_argument("--train", action="store_true",
                    help="then train the recommendation and the baselines (uniform, natural, best trial, null pick) "
                         "as references (workspaces with datasets); `demix validate` reports how it ranks")
    rc.add_argument("--no-baselines", action="store_true", help="with --train: train the recommendation only")
    rc.add_argument("--repeats", type=positive_int, default=1, metavar="N",
                    help="with --train: train each model at training seeds 0..N-1 (default 1); the repeats give "
                         "`demix validate` its noise floor (--seed stays the predictor's seed)")
    rc.add_argument("--seed", type=int, default=0)
    rc.add_argument("--predict-target", action="store_true",
                    help="with --against: use the predictor's scores for the mixture to beat instead of measuring it "
                         "as a trial first (one proxy evaluation, skipped when the study holds one)")
    rc.add_argument("--against", default=None, metavar="MIXTURE",
                    help="natural, uniform or name=w,... (the mixture you train today): rank only candidates the "
                         "predictor expects to beat it by at least the noise floor on every domain, at a lower "
                         "confidence bound from its out-of-fold error; says which domain blocks when none does")
    lazy_option(rc, "--confidence", metavar="LEVEL", texts={"level": lambda: str(_constants().DEFAULT_CONFIDENCE)},
                help="with --against: one-sided level of the lower bound (default %(level)s; 0.5 judges on the "
                     "predictor's mean)").type = float
    lazy_option(rc, "--beat", metavar="HOW", names=_beats,
                help="with --against: every (default: by the floor on every domain), some (by the floor on one "
                     "domain, losing none beyond it) or total (on the --weighting's weighted total, else equal)")
    lazy_option(rc, "--pick", metavar="HOW", names=_picks,
                help="mean: average the top k candidates (default); best: the single best candidate; trial: the "
                     "best measured trial")
    _proxy(rc, "fit only the trials scored by this proxy kind (default: the study's)")
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func=run_recommend)


def _constants() -> Any:
    from demix_core.search import picks  # the registry of picks: read when a command needs it, not by --help

    return picks


def _beats() -> Sequence[str]:
    return _constants().BEATS


def _picks() -> Sequence[str]:
    return _constants().PICKS


def _against(args: argparse.Namespace, ws: Any, study: Any, weighting: Any) -> tuple[Any, str]:
    """(what --against asks, where its noise floor comes from); (None, "") without --against."""
    from demix_core.search import record
    from demix_core.search.against import z_of
    from demix_core.search.recommend import against_mixture
    from demix_core.validation.noise import study_floor

    if args.against is None:
        if args.beat is not None or args.confidence is not None:
            raise ConfigError("--beat and --confidence judge candidates against a mixture; give --against natural "
                              "(or uniform, or name=w,...) too")
        return None, ""
    picks = _constants()
    confidence = picks.DEFAULT_CONFIDENCE if args.confidence is None else args.confidence
    z_of(confidence)  # a bad level fails before the floor is read
    floor, source = study_floor(ws, study)
    return against_mixture(ws, record.domains(study), args.against, floor=floor, confidence=confidence,
                           beat=args.beat or picks.BEATS[0], weighting=weighting), source


def _measure(ws: Any, study: Any, mixture: Any) -> None:
    """Measure the mixture to beat as a trial (one proxy evaluation) unless the study holds one; a mixture outside
    the study's budget stays predicted, with a warning."""
    import sys

    from demix_core.errors import BudgetError
    from demix_core.search.recommend import measure_target

    try:
        measure_target(ws, study, mixture, log=lambda line: print(line, file=sys.stderr, flush=True))
    except BudgetError as exc:
        print(f"warning: the mixture to beat cannot be measured in this study ({exc}); its scores are predicted",
              file=sys.stderr)


def against_lines(judged: dict[str, Any]) -> list[str]:
    """What --against printed: the screen's sentence, the floor's source, and the pick's margins per domain."""
    out = [judged["summary"] + ".", f"noise floor: {judged.get('floor_source', '')}",
           f"the pick against {judged['target']} per domain (predicted gain, its lower bound, the floor):"]
    for d, m in judged["at"].items():
        out.append(f"  {d:<10} {m['gain']:+.4f}  {m['lower']:+.4f}  {m['floor']:.4f}")
    if not judged["pick_qualifies"]:
        out.append("note: the pick averages qualifying candidates but does not clear the screen itself; "
                   "--pick best takes the single best qualifying candidate")
    return out


def run_recommend(args: argparse.Namespace) -> int:
    """Fit, rank, recommend (and optionally enqueue or train)."""
    from demix_core.search import record
    from demix_core.search.against import NothingBeats
    from demix_core.search.recommend import recommend_for_study

    weighting = parse_weighting(args.weighting)
    if args.repeats > 1 and not args.train:
        raise ConfigError(f"--repeats {args.repeats} sets how many seeds --train trains each model at; give --train "
                          "too, or leave --repeats out")
    ws, study = _load(args)
    if args.train:
        from demix_core.train.references import recipe

        recipe(ws)  # a workspace that cannot train references fails before the fit
    proxy = args.proxy or record.study_proxy(study)
    if args.enqueue and ws.is_table:
        raise ConfigError("a table workspace has no checkpoints to score a queued mixture; leave --enqueue out")
    against, floor_source = _against(args, ws, study, weighting)
    if against is not None and not ws.is_table and not args.predict_target:
        _measure(ws, study, against.target.mixture)
    try:
        rec = recommend_for_study(ws, study, top_k=args.top_k, samples=args.samples, weighting=weighting,
                                  seed=args.seed, proxy=proxy, against=against,
                                  pick=args.pick or _constants().DEFAULT_PICK)
    except NothingBeats as exc:
        if args.json:
            print(json.dumps({"mixture": None, "proxy": proxy, "against": {**exc.screen.to_json(),
                                                                           "floor_source": floor_source}}, indent=2))
        else:
            print(exc.screen.summary() + f" (noise floor: {floor_source})")
        return 1
    if rec.against is not None:
        rec.against["floor_source"] = floor_source
    return _answer(args, ws, study, rec, proxy, weighting, against)


def _answer(args: argparse.Namespace, ws: Any, study: Any, rec: Any, proxy: str, weighting: Any,
            against: Any) -> int:
    """Enqueue, train and print what run_recommend found."""
    from demix_core.runs.advice import table_advice
    from demix_core.search.study import enqueue

    advice = table_advice(study, rec.predicted, rec.spearman)  # None unless the study holds imported runs
    if args.enqueue:
        enqueue(study, rec.mixture, source="recommendation")
    if args.json and not args.train:
        extra = {"table": advice.to_json()} if advice is not None else {}
        print(json.dumps({**rec.to_json(), "proxy": proxy, "enqueued": args.enqueue, **extra}, indent=2))
        return 0
    if args.train:
        from demix_core.validation.loop import train_loop

        plan = train_loop(ws, study, rec.mixture, weighting=weighting, proxy=proxy, baselines=not args.no_baselines,
                          repeats=args.repeats, against=against.target if against is not None else None,
                          log=(lambda s: None) if args.json else (lambda s: print(s, flush=True)))
        if args.json:
            print(json.dumps({**rec.to_json(), "proxy": proxy, "enqueued": args.enqueue, "loop": plan.to_json()},
                             indent=2))
            return 0
    print(f"recommended mixture (top {rec.top_k} of {rec.samples:,} ranked by {args.weighting}, "
          f"{rec.regressor} fit on {rec.trials:,} trials of the {proxy} proxy):")
    for name, w in rec.mixture.as_dict().items():
        print(f"  {name:<10} {w:.3f}")
    if advice is not None:
        print("\n".join(advice.lines()))
        return 0
    print("predicted: " + "  ".join(f"{k}={v:.4f}" for k, v in rec.predicted.items() if "/" not in k))
    if rec.against is not None:
        print("\n".join(against_lines(rec.against)))
    print("held-out Spearman of the regressors: " + "  ".join(
        f"{k}={v:.2f}" if not math.isnan(v) else f"{k}=n/a" for k, v in rec.spearman.items()))
    if args.enqueue:
        print(f"queued in study {args.study} (source: recommendation)")
    return 0
