"""Per-domain calls with seed noise (issue 26): the interval of a difference of seed means, the call that needs both
the floor and the interval, the verdict's sentence, and the loop's paired interval resampling seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from demix_core.validation.calls import calls_sentence, difference_interval, domain_call, domain_calls
from demix_core.validation.loop import RECOMMENDED, loop_report


def test_the_interval_of_a_difference_of_seed_means_uses_students_t() -> None:
    # t(0.975, 5) = 2.570582; two seeds each: sqrt(1/2 + 1/2) = 1
    lo, hi = difference_interval(0.05, 0.01, 2, 2, df=5)  # type: ignore[misc]
    assert (lo, hi) == pytest.approx((0.05 - 0.0257058, 0.05 + 0.0257058), abs=1e-6)
    lo, hi = difference_interval(0.0, 0.01, 1, 1)  # type: ignore[misc]  # no df: the normal 1.959964
    assert hi == pytest.approx(1.959964 * 0.01 * math.sqrt(2), abs=1e-6) and lo == pytest.approx(-hi)
    assert difference_interval(0.3, None) is None


def test_a_call_needs_the_floor_and_the_interval() -> None:
    assert domain_call(0.015, 0.01, (0.001, 0.029)) == "better"
    assert domain_call(0.015, 0.01, (-0.002, 0.032)) == "within noise"  # beyond the floor, interval spans 0
    assert domain_call(0.008, 0.01, (0.001, 0.015)) == "within noise"  # interval above 0, inside the floor
    assert domain_call(-0.03, 0.01, (-0.05, -0.01)) == "worse"
    assert domain_call(0.5, None, None) == "noise unknown"


def test_the_calls_and_the_sentence_group_domains_by_call() -> None:
    calls = domain_calls({"general": -3.500, "code": -2.900, "math": -3.50, "x": 1.0},
                         {"general": -3.501, "code": -2.950, "math": -3.60, "x": 0.0},
                         {"general": 0.002, "code": 0.007, "math": 0.018}, repeats=(2, 2), df=5)
    assert {d: c["call"] for d, c in calls.items()} == {"general": "within noise", "code": "better",
                                                       "math": "better", "x": "noise unknown"}
    assert calls["code"]["low"] == pytest.approx(0.05 - 2.570582 * 0.007, abs=1e-6)
    assert calls["x"]["low"] is None and calls["x"]["high"] is None
    assert calls_sentence("natural", calls) == (
        "beats natural by +0.050 [+0.032, +0.068] on code and +0.100 [+0.054, +0.146] on math; within noise on "
        "general (+0.001 [-0.004, +0.006], floor 0.002); noise unknown on x (+1.000)")
    flat = domain_calls({"general": -3.5}, {"general": -3.5005}, {"general": 0.002}, repeats=(2, 2), df=5)
    assert calls_sentence("natural", flat) == ("against natural: within noise on general (+0.001 [-0.005, +0.006], "
                                               "floor 0.002)")
    worse = domain_calls({"math": -3.7}, {"math": -3.6}, {"math": 0.01}, repeats=(2, 2), df=5)
    assert calls_sentence("uniform", worse) == "loses to uniform by -0.100 [-0.126, -0.074] on math"


def test_the_paired_interval_resamples_seeds_and_the_verdict_says_so() -> None:
    refs = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0], [2.5, 3.5], [3.5, 2.5]])
    names = [f"r{i}" for i in range(len(refs))]
    one = {RECOMMENDED: ("rec", {}, np.array([3.2, 3.0])), "natural": ("nat", {}, np.array([3.0, 3.1]))}
    # the same means, but each over two seeds that straddle the references between them
    two = {RECOMMENDED: ("rec", {}, np.array([[2.2, 2.0], [4.2, 4.0]])),
           "natural": ("nat", {}, np.array([[3.0, 3.1], [3.0, 3.1]]))}
    a = loop_report(names, refs, one, ["x", "y"], n=400, floor={"x": 0.05, "y": 0.05}, floor_df=4)
    b = loop_report(names, refs, two, ["x", "y"], n=400, floor={"x": 0.05, "y": 0.05}, floor_df=4)
    ea, eb = a.entry("natural"), b.entry("natural")
    assert ea is not None and eb is not None
    assert eb.versus.value == pytest.approx(ea.versus.value)  # type: ignore[union-attr]  # the means agree
    assert (eb.versus.high - eb.versus.low) > (ea.versus.high - ea.versus.low)  # type: ignore[union-attr]
    assert b.entry(RECOMMENDED).repeats == 2 and ea.repeats == 1  # type: ignore[union-attr]
    assert "resampled references and seeds)" in b.verdict() and "and seeds" not in a.verdict()
    assert "Per domain, the recommendation " in b.verdict() and "natural" in b.verdict()
