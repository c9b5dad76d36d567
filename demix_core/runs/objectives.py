"""The metrics a table study optimises, and which way each one is better.

Objectives are named metrics, or families (``family=m1+m2``: the mean of its metrics), or, when none is named,
every metric as long as there are at most :data:`MAX_DEFAULT_OBJECTIVES`. Lower is better unless a metric is named
higher-is-better. Objective values are stored *oriented*: higher is better, a lower-is-better metric negated (as the
domain scores of a merged study are negated bits per byte), so every study maximises; raw scores are kept as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from demix_core.errors import ConfigError, near_matches
from demix_core.mixing.pairs import parse_named, split_items

MAX_DEFAULT_OBJECTIVES = 8
_SHOWN = 40  # metric names an error lists at most


@dataclass(frozen=True)
class Objectives:
    """A table study's objectives and every metric's direction.

    Attributes:
        groups: Objective -> its metrics (a named metric is a group of one).
        higher: Every metric -> whether higher is better.
    """

    groups: dict[str, tuple[str, ...]]
    higher: dict[str, bool]

    def orient(self, metric: str, value: float) -> float:
        """``value`` with higher meaning better (a lower-is-better metric negated)."""
        return float(value) if self.higher[metric] else -float(value)

    def values(self, scores: Mapping[str, float]) -> dict[str, float] | str:
        """{objective: oriented value} of one run's raw ``scores``, or the first metric an objective lacks."""
        out = {}
        for name, members in self.groups.items():
            missing = [m for m in members if m not in scores]
            if missing:
                return missing[0]
            out[name] = sum(self.orient(m, scores[m]) for m in members) / len(members)
        return out

    def to_json(self) -> dict[str, dict[str, str]]:
        """{objective: {metric: "higher" or "lower" (is better)}}, as printed by ``demix import-runs --json``."""
        return {name: {m: "higher" if self.higher[m] else "lower" for m in members}
                for name, members in self.groups.items()}


def spec_metrics(spec: str | None) -> list[str]:
    """Every metric name that an ``--objectives`` text mentions (for a single CSV: its score columns)."""
    if not spec:
        return []
    return list(dict.fromkeys(m for members in parse_objectives(spec).values() for m in members))


def parse_objectives(spec: str) -> dict[str, tuple[str, ...]]:
    """``a,b,family=m1+m2`` -> {``a``: (a,), ``b``: (b,), ``family``: (m1, m2)}.

    Raises:
        ConfigError: An empty entry, a name given twice, or a family without metrics.
    """
    def members(text: str) -> tuple[str, ...]:
        parts = tuple(p.strip() for p in text.split("+"))
        if not all(parts):
            raise ValueError(text)
        return parts

    entries = split_items(spec)
    bare = {p for p in entries if "=" not in p}  # a metric named as it is (its name may hold a +)
    groups = parse_named([p if "=" in p or not p else f"{p}={p}" for p in entries], what="objectives",
                         example="loss_a,loss_b or math=gsm8k+minerva", value=members, expected="metrics joined by +",
                         shown=spec)
    return {name: (name,) if name in bare else m for name, m in groups.items()}


def _unknown(name: str, metrics: Sequence[str], source: str) -> str:
    return f"{source} has no metric {name!r} ({near_matches(name, list(metrics))})"


def choose_objectives(metrics: Sequence[str], spec: str | None, higher: Iterable[str], *, source: str) -> Objectives:
    """The objectives of a new table study.

    Args:
        metrics: The table's metrics.
        spec: ``--objectives`` (names and ``family=m1+m2`` groups), or None.
        higher: The metrics for which higher is better.
        source: The scores file, for messages.

    Raises:
        ConfigError: An unknown metric, a family named like another metric, or more than
            :data:`MAX_DEFAULT_OBJECTIVES` metrics and none chosen (the message lists them and says how to pick).
    """
    up = list(dict.fromkeys(higher))
    for name in up:
        if name not in metrics:
            raise ConfigError(f"{_unknown(name, metrics, source)}; --higher-is-better names metrics of the scores file")
    directions = {m: m in up for m in metrics}
    if spec is None:
        if len(metrics) > MAX_DEFAULT_OBJECTIVES:
            shown = ", ".join(metrics[:_SHOWN]) + (f" (+{len(metrics) - _SHOWN} more)" if len(metrics) > _SHOWN else "")
            raise ConfigError(f"{source} has {len(metrics)} metrics: {shown}; a study optimises at most "
                              f"{MAX_DEFAULT_OBJECTIVES} unless you choose: name them with --objectives a,b,... or "
                              "average groups with --objectives family=m1+m2,...")
        return Objectives({m: (m,) for m in metrics}, directions)
    groups = parse_objectives(spec)
    for name, members in groups.items():
        for m in members:
            if m not in metrics:
                raise ConfigError(f"{_unknown(m, metrics, source)}; --objectives names metrics of the scores file")
        if name in metrics and members != (name,):
            raise ConfigError(f"objective {name!r} of --objectives is also a metric of {source}; give the family "
                              "another name")
    return Objectives(groups, directions)
