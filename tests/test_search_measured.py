"""The Mixer's add-versus-queue rule: a measured mixture joins a study as a COMPLETE trial only when it is the
study's own kind of trial; otherwise the first setting that differs is named."""

from __future__ import annotations

import pytest

from demix_core.search.measured import Placement, place_measured, scores_in_suite

STUDY = {"suite": "quick", "tasks": None, "method": "linear", "proxy": "merge"}


def test_the_studys_own_kind_of_trial_is_added() -> None:
    assert place_measured(STUDY, suite="quick", method="linear") == Placement(True, "")


def test_a_study_without_method_or_proxy_merges_linearly_on_the_merged_weights() -> None:
    assert place_measured({"suite": "paper"}, suite="paper", method="linear") == Placement(True)
    assert place_measured({"suite": "quick", "proxy": None}, suite="quick", method="linear") == Placement(True)
    assert place_measured({"suite": "quick"}, suite="quick", method="ties") == Placement(
        False, "the study merges with linear, not ties")


@pytest.mark.parametrize("attrs", [
    {**STUDY, "tasks": "arc_easy,hellaswag"},  # its own lm-eval tasks (stored comma-separated)
    {**STUDY, "suite": "paper"},  # another suite
    {**STUDY, "suite": None},  # no suite recorded
    {k: v for k, v in STUDY.items() if k != "suite"},
])
def test_another_suite_or_own_tasks_is_queued(attrs: dict) -> None:
    assert place_measured(attrs, suite="quick", method="linear") == Placement(False, "the study scores with its own "
                                                                                      "tasks")
    assert not scores_in_suite(attrs, "quick")


def test_another_method_is_queued() -> None:
    assert place_measured({**STUDY, "method": "ties"}, suite="quick", method="linear") == Placement(
        False, "the study merges with ties, not linear")


def test_another_proxy_kind_is_queued() -> None:
    assert place_measured({**STUDY, "proxy": "ensemble"}, suite="quick", method="linear") == Placement(
        False, "the study scores the ensemble proxy, not the merged weights")


def test_the_first_difference_is_named() -> None:
    everything = {"suite": "quick", "tasks": "arc_easy", "method": "ties", "proxy": "ensemble"}
    assert place_measured(everything, suite="quick", method="linear").reason == "the study scores with its own tasks"
    assert place_measured({**everything, "tasks": ""}, suite="quick", method="linear").reason == (
        "the study merges with ties, not linear")


def test_scores_in_suite() -> None:
    assert scores_in_suite(STUDY, "quick") and not scores_in_suite(STUDY, "paper")
    assert scores_in_suite({**STUDY, "tasks": ""}, "quick")
