"""The tour's stages, in order: what each does, how long it takes on the demo, and how far it is (from disk).

Every stage calls the library the commands call (``demix demo``, ``demix validate``, ``demix study``,
``demix recommend --train``), so the tour and the commands cannot disagree; and every stage's work is resumable on
its own (models already trained are kept, a training cut short continues, a study runs until it holds its trials).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demix_core.data.datasets import DEMO_DATASETS
from demix_core.train.demo import DemoSettings

STUDY = "tour"  # the tour's study, in the workspace's storage
REFERENCE_FOLDER = "references"


@dataclass
class TourSettings:
    """Sizes of the tour. ``quick()`` gives the tiny variant the tests run."""

    demo: DemoSettings = field(default_factory=DemoSettings)
    references: int = 16
    trials: int = 48
    top_k: int = 128
    samples: int = 100_000
    weighting: str = "composite"
    seed: int = 0
    repeats: int = 2  # seeds of each loop model: the verdict's noise floor

    @classmethod
    def quick(cls) -> TourSettings:
        """Tiny models, few references and trials: the whole tour in a few minutes on CPU."""
        return cls(demo=DemoSettings.quick(), references=6, trials=12, top_k=16, samples=2_000)


@dataclass
class Context:
    """What a stage runs with."""

    root: Path
    settings: TourSettings
    log: Callable[[str], None]
    cache: dict[str, Any] = field(default_factory=dict)  # what a stage keeps for its progress count

    def workspace(self) -> Any:
        """The demo workspace as it is now on disk."""
        from demix_core.workspace.manifest import load_workspace

        return load_workspace(self.root)


@dataclass(frozen=True)
class Stage:
    """One step of the tour."""

    name: str
    title: str  # for people: what it does
    expected: float  # seconds on 2 quiet cores at the demo's sizes: the progress bar's weight
    run: Callable[[Context], None]
    count: Callable[[Context], tuple[int, int] | None] = lambda ctx: None  # (done, total), when it can tell
    page: str = "workspace"  # the dashboard page that this stage fills


def _components(ctx: Context) -> None:
    from demix_core.train.demo import build_demo

    build_demo(ctx.root, settings=ctx.settings.demo, log=ctx.log, progress=True)


def _count_components(ctx: Context) -> tuple[int, int]:
    models = [ctx.root / "base"] + [ctx.root / "components" / d.name for d in DEMO_DATASETS]
    return sum(p.is_dir() for p in models), len(models)


def _references(ctx: Context) -> None:
    from demix_core.train.demo import build_demo

    build_demo(ctx.root, settings=ctx.settings.demo, references=ctx.settings.references, log=ctx.log, progress=True)


def _count_references(ctx: Context) -> tuple[int, int]:
    n = ctx.settings.references
    return sum((ctx.root / REFERENCE_FOLDER / f"ref-{i:02d}").is_dir() for i in range(n)), n


def _validate(suite: str, stage_name: str | None = None) -> Callable[[Context], None]:
    """Validation on ``suite``, recorded; with ``stage_name``, the loop's verdict (the whole sentence and the
    per-domain one) goes into that stage's record for ``demix tour --status`` and the dashboard."""
    def run(ctx: Context) -> None:
        from demix_core.tour.state import update_stage
        from demix_core.validation.report import record_validation
        from demix_core.validation.run import validate_workspace

        ws = ctx.workspace()
        report = validate_workspace(ws, suite=suite, log=ctx.log)
        path = record_validation(ws, report)
        for line in report.lines():
            ctx.log(line)
        ctx.log(f"recorded in {path}")
        if stage_name is not None and report.loop is not None:
            update_stage(ctx.root, stage_name, verdict=report.loop.verdict(),
                         sentence=report.loop.domain_sentence())

    return run


def _study(ctx: Context) -> None:
    from demix_core.search.study import create_study
    from demix_core.search.worker import Worker

    ws = ctx.workspace()
    study = create_study(ws, STUDY, n_trials=ctx.settings.trials, seed=ctx.settings.seed)
    ctx.log(f"study {STUDY!r}: {ctx.settings.trials} trials of the {study.user_attrs.get('proxy')} proxy "
            "(the kind validation picked)")
    ctx.cache["study"] = study  # what the progress count reads
    Worker(ws, STUDY, log=ctx.log).run(ctx.settings.trials)
    count = _count_trials(ctx)
    if count is not None and count[0] < count[1]:  # the worker stopped early: asked to (SIGTERM), or it gave up
        from demix_core.tour.state import Stopped

        raise Stopped(f"the study holds {count[0]} of {count[1]} complete trials")


def _count_trials(ctx: Context) -> tuple[int, int] | None:
    study = ctx.cache.get("study")
    if study is None:
        return None
    done = sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))
    return min(done, ctx.settings.trials), ctx.settings.trials


def _train_loop(ctx: Context) -> None:
    from demix_core.mixing.pairs import parse_weighting
    from demix_core.search import record
    from demix_core.search.recommend import recommend_for_study
    from demix_core.search.study import load_study
    from demix_core.validation.loop import train_loop, train_plan
    from demix_core.workspace.records import read_plan

    ws = ctx.workspace()
    plan = read_plan(ws)
    if plan is not None and plan.study == STUDY:  # resumed: the plan made before stands (no second fit)
        ctx.log(f"the loop's plan of study {STUDY!r} stands; training what is missing")
        train_plan(ws, plan, log=ctx.log)
        return
    s = ctx.settings
    study = load_study(ws, STUDY)
    proxy = record.study_proxy(study)
    weighting = parse_weighting(s.weighting)
    rec = recommend_for_study(ws, study, top_k=s.top_k, samples=s.samples, weighting=weighting, seed=s.seed,
                              proxy=proxy)
    ctx.log(f"recommended (top {rec.top_k} of {rec.samples:,}, {rec.regressor} on {rec.trials} trials): "
            f"{rec.mixture.label(3)}")
    train_loop(ws, study, rec.mixture, weighting=weighting, proxy=proxy, repeats=s.repeats, log=ctx.log)


def _count_loop(ctx: Context) -> tuple[int, int] | None:
    from demix_core.validation.loop import plan_roles
    from demix_core.workspace.records import read_plan

    plan = read_plan(ctx.workspace())
    if plan is None or plan.study != STUDY:
        return None
    names = {n for r in plan_roles(plan) for n in plan.model_names(r)}
    return sum((ctx.root / REFERENCE_FOLDER / n).is_dir() for n in names), len(names)


def _benchmarks(ctx: Context) -> None:
    from demix_core.evaluate.benchdata import prepare_benchmarks

    prepare_benchmarks(log=ctx.log)


STAGES: tuple[Stage, ...] = (
    Stage("components", "the datasets, tokenizer, base and one component per dataset", 420, _components,
          _count_components, "workspace"),
    Stage("references", "reference models trained on sampled mixtures", 760, _references, _count_references,
          "validate"),
    Stage("validate", "validation of both proxy kinds on the quick suite", 25, _validate("quick"), page="validate"),
    Stage("study", "a study on the proxy validation picked", 25, _study, _count_trials, "study"),
    Stage("train", "the recommendation and the baselines, trained", 280, _train_loop, _count_loop, "recommend"),
    Stage("verdict", "validation again: how the trained recommendation ranks", 30, _validate("quick", "verdict"),
          page="validate"),
    Stage("benchmarks", "the paper suite's nine benchmarks, converted once", 20, _benchmarks, page="validate"),
    Stage("paper", "validation on the paper suite", 230, _validate("paper"), page="validate"),
)
NAMES = tuple(s.name for s in STAGES)


def stage(name: str) -> Stage:
    """The stage called ``name``.

    Raises:
        ConfigError: No such stage (the message lists them).
    """
    from demix_core.errors import ConfigError

    for s in STAGES:
        if s.name == name:
            return s
    raise ConfigError(f"unknown tour stage {name!r}; the stages are {', '.join(NAMES)}")


def stages_until(until: str) -> tuple[Stage, ...]:
    """The stages up to and including ``until``."""
    return STAGES[:NAMES.index(stage(until).name) + 1]
