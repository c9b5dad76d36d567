"""Validation metrics against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from demix_core.validation.report import method_report, null_scores
from demix_core.validation.stats import MIN_TOP, bootstrap, recovery, spearman, spread_ratio, top_spearman


def test_spearman_hand_computed() -> None:
    # ranks x: 1 2 3 4 5, ranks y: 2 1 4 3 5 -> d^2 = 1+1+1+1+0 = 4 -> rho = 1 - 6*4/(5*24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [20, 10, 40, 30, 50]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_spearman_equals_scipy_with_ties() -> None:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    for _ in range(20):
        x, y = rng.integers(0, 5, 12).astype(float), rng.normal(size=12)
        assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)


def test_top_quarter_spearman() -> None:
    ref = [8, 7, 6, 5, 4, 3, 2, 1]  # top 25% of 8 = the first two
    proxy = [1, 2, 9, 9, 9, 9, 9, 9]  # ranks the top two backwards
    rho, k = top_spearman(proxy, ref)
    assert k == 2 and rho == pytest.approx(-1.0)
    assert top_spearman(list(range(16)), list(range(16)))[1] == MIN_TOP


def test_recovery_and_spread() -> None:
    # Positive, higher-is-better scores: sum(proxy) / sum(reference).
    assert recovery([0.4, 0.6], [0.5, 0.5]) == pytest.approx(1.0)
    assert recovery([0.3, 0.3], [0.6, 0.6]) == pytest.approx(0.5)
    # Negated BPB (higher is better, negative): sum(ref BPB) / sum(proxy BPB) = 2 / 4.
    assert recovery([-2.0, -2.0], [-1.0, -1.0]) == pytest.approx(0.5)
    assert spread_ratio([1, 2, 3], [0, 4, 2]) == pytest.approx(0.5)


def test_null_model_sums_domain_weights() -> None:
    mixtures = [{"prose": 0.5, "code": 0.2, "docs": 0.3}, {"prose": 0.1, "code": 0.9}]
    domain_of = {"prose": "general", "code": "code", "docs": "code"}
    got = null_scores(mixtures, domain_of, ["general", "code"])
    assert list(got["general"]) == [0.5, 0.1] and list(got["code"]) == pytest.approx([0.5, 0.9])


def test_bootstrap_interval_contains_value_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20)
    proxy = ref + 0.3 * rng.normal(size=20)
    a = bootstrap(spearman, proxy, ref, seed=1)
    b = bootstrap(spearman, proxy, ref, seed=1)
    assert a.low <= a.value <= a.high and (a.low, a.high) == (b.low, b.high)
    assert a.high - a.low < 0.6


def test_method_report_macro_and_meaningfulness() -> None:
    ref = {"general": np.array([1.0, 2, 3, 4, 5, 6, 7, 8]), "code": np.array([8.0, 7, 6, 5, 4, 3, 2, 1])}
    perfect = method_report("p", ref, ref)
    assert perfect.macro.value == pytest.approx(1.0)
    assert perfect.per_domain["code"].value == pytest.approx(1.0)
    assert perfect.top_macro.meaningful is False  # top quarter of 8 references is 2 < 4
    assert perfect.recovery["general"].value == pytest.approx(1.0)
    flipped = method_report("f", {d: -v for d, v in ref.items()}, ref)
    assert flipped.macro.value == pytest.approx(-1.0)


def test_validate_workspace_end_to_end(tiny_workspace) -> None:
    """References that are the components themselves (one-hot mixtures): merged proxies equal them exactly."""
    import json

    import torch

    from demix_core.validation.run import validate_workspace
    from demix_core.workspace.manifest import ReferenceEntry, load_workspace

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on 2 shared cores, 2 spinning threads made tiny-model scoring ~40x slower
    ws = load_workspace(tiny_workspace)
    names = list(ws.component_names)
    paths = {c.name: c.path for c in ws.components}
    one_hot = [{n: float(n == m) for n in names} for m in names]
    ws.references = [ReferenceEntry(name=f"ref-{m}", path=paths[m], mixture=mix) for m, mix in zip(names, one_hot)]
    # Trained proxies matched by mixture (other names), pointing at shuffled checkpoints.
    ws.references += [ReferenceEntry(name=f"tp{i}", path=paths[names[(i + 1) % 3]], mixture=mix, kind="trained_proxy")
                      for i, mix in enumerate(one_hot)]
    ws.save()
    try:
        result = validate_workspace(load_workspace(tiny_workspace), device="cpu", log=lambda s: None)
    finally:
        torch.set_num_threads(threads)
    report = json.loads(json.dumps(result.to_json()))  # what `demix validate --json` prints
    merged, ensemble, trained, null = report["methods"]
    assert [m["name"] for m in report["methods"]] == ["merged proxies (DeMix)", "output ensemble",
                                                      "trained proxies (compute-matched)", "null: domain weight"]
    assert ensemble["macro"]["value"] == pytest.approx(1.0)
    for d in ("general", "code", "math"):
        assert merged["rho"][d]["value"] == pytest.approx(1.0)
        assert merged["recovery"][d]["value"] == pytest.approx(1.0, abs=1e-6)
        assert merged["spread"][d] == pytest.approx(1.0, abs=1e-6)
        assert merged["top25"][d]["meaningful"] is False  # top quarter of 3 references
    assert merged["macro"]["value"] == pytest.approx(1.0) and math.isnan(null["recovery"]["general"]["value"])
    assert len(trained["rho"]) == 3 and set(report["method_scores"]) == {m["name"] for m in report["methods"]}
    assert set(report["drift"]) == set(names) and report["verdict"].startswith("Verdict:")
    text = result.lines()
    assert any(line.startswith("macro rho") for line in text) and "component drift" in text[1]
    assert text[-1].startswith("Verdict")


def _report(merged: dict[str, np.ndarray], baseline: dict[str, np.ndarray], ref: dict[str, np.ndarray]):
    from demix_core.validation.report import ValidationReport

    methods = [method_report("merged", merged, ref), method_report("null", baseline, ref, with_recovery=False)]
    scores = {"merged": {d: list(v) for d, v in merged.items()}, "null": {d: list(v) for d, v in baseline.items()}}
    n = len(next(iter(ref.values())))
    return ValidationReport([f"r{i}" for i in range(n)], [{} for _ in range(n)], list(ref),
                            {d: list(v) for d, v in ref.items()}, methods, {}, "quick", scores)


def test_verdict_weighs_the_difference_against_its_paired_interval() -> None:
    rng = np.random.default_rng(0)
    ref = {d: rng.normal(size=24) for d in ("general", "code")}
    noise = {d: rng.normal(size=24) for d in ref}
    good = {d: v + 0.05 * noise[d] for d, v in ref.items()}  # rho ~1
    unrelated = {d: rng.normal(size=24) for d in ref}  # rho ~0
    report = _report(good, unrelated, ref)
    diff = report.macro_difference("null")
    assert diff.value == pytest.approx(report.methods[0].macro.value - report.methods[1].macro.value)
    assert diff.low > 0 and "beat null by +" in report.verdict() and "can be trusted" in report.verdict()
    assert "do NOT beat null" in _report(unrelated, good, ref).verdict()
    # two predictors of the same quality, a few references: the difference's interval straddles 0
    small = {d: v[:6] for d, v in ref.items()}
    a = {d: v[:6] + 0.8 * rng.normal(size=6) for d, v in ref.items()}
    b = {d: v[:6] + 0.8 * rng.normal(size=6) for d, v in ref.items()}
    verdict = _report(a, b, small).verdict()
    assert verdict.startswith("Verdict: inconclusive with 6 references"), verdict
