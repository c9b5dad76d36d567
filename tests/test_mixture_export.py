"""Mixture exports for training frameworks: each format round-trips the weights, names every dataset, has the
shape of a config written from the framework's documentation (tests/fixtures/exports), and an infeasible
request fails with one error line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from demix_core.cli import main
from demix_core.export.frameworks import FORMATS, UNITS, plan_export, read_weights, render, source_keys
from demix_core.mixing.mixture import Mixture
from demix_core.workspace.budget import Budget
from demix_core.workspace.manifest import load_workspace

FIXTURES = Path(__file__).parent / "fixtures" / "exports"
FIXTURE_OF = {"olmo-core": "olmo_core.yaml", "megatron": "megatron_per_split.json", "nanotron": "nanotron.yaml",
              "streaming": "streaming.yaml"}
MIX = "alpha=0.2,beta=0.3000000000000004,gamma=0.4999999999999996"  # weights that need every digit kept
TARGET = 6000  # tiny workspace: alpha 1000, beta 2000, gamma 3000 tokens; 2 epochs each


@pytest.fixture()
def ws_path(tiny_workspace: Path) -> Path:
    ws = load_workspace(tiny_workspace)
    ws.budget = Budget.from_dict({"max_epochs": 2, "datasets": {"gamma": {"max_epochs": 1}}})
    ws.save()
    return tiny_workspace


def _load(fmt: str, text: str) -> Any:
    return json.loads(text) if fmt in ("megatron", "demix") else yaml.safe_load(text)


def _shape(obj: Any, at: str = "") -> set[str]:
    """Every key path with the type found there (list items merged), the metadata keys left out."""
    if isinstance(obj, dict):
        out = set()
        for k, v in obj.items():
            if str(k).startswith("_"):
                continue
            out |= _shape(v, f"{at}.{k}")
        return out
    if isinstance(obj, list):
        return set().union(*[_shape(v, f"{at}[]") for v in obj]) if obj else {f"{at}[]"}
    return {f"{at}:{'number' if isinstance(obj, (int, float)) else type(obj).__name__}"}


def _shape_named(obj: Any) -> set[str]:
    """The shape with the names of streams (mapping keys chosen by the user) replaced by ``*``."""
    if isinstance(obj, dict) and "streams" in obj:
        return {s.replace(f".streams.{n}.", ".streams.*.") for n in obj["streams"] for s in _shape(obj)
                if f".streams.{n}." in s}
    return _shape(obj)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_and_names_every_dataset(ws_path: Path, tmp_path: Path, fmt: str, capsys) -> None:
    out = tmp_path / f"mix.{fmt}"
    args = ["export-mixture", "--workspace", str(ws_path), "--mixture", MIX, "--format", fmt,
            "--target-tokens", str(TARGET), "--out", str(out)]
    if fmt == "olmo-core":
        args += ["--global-batch-size", "512"]
    assert main(args) == 0
    assert f"({UNITS[fmt]})" in capsys.readouterr().out
    text = out.read_text()
    assert UNITS[fmt] in text  # each file states its unit
    ws = load_workspace(ws_path)
    mix = ws.parse_mixture(MIX)
    plan = plan_export(ws, mix, target_tokens=TARGET)
    keys = source_keys(plan, fmt)
    back = read_weights(fmt, text)
    assert set(back) == set(keys.values())
    for name, w in mix.as_dict().items():
        assert back[keys[name]] == pytest.approx(w, abs=1e-9)
        assert name in text or keys[name] in text
    for d in ws.datasets:  # the workspace's dataset files
        assert str(ws.path(d.train)).rsplit(".", 1)[0] in text
    if fmt in FIXTURE_OF:  # the same structure as the framework's documented config
        fixture = (FIXTURES / FIXTURE_OF[fmt]).read_text()
        assert _shape_named(_load(fmt, text)) == _shape_named(_load(fmt, fixture))
        assert read_weights(fmt, fixture) == pytest.approx(
            dict(zip(list(read_weights(fmt, fixture)), [0.3, 0.7])))


def test_demix_json_token_counts(ws_path: Path) -> None:
    ws = load_workspace(ws_path)
    plan = plan_export(ws, ws.parse_mixture("alpha=0.25,beta=0.25,gamma=0.5"), target_tokens=TARGET)
    data = json.loads(render(plan, "demix"))
    assert data["unit"] == "tokens" and data["target_tokens"] == TARGET
    assert {n: d["tokens"] for n, d in data["datasets"].items()} == {"alpha": 1500, "beta": 1500, "gamma": 3000}
    assert {n: d["epochs"] for n, d in data["datasets"].items()} == {"alpha": 1.5, "beta": 0.75, "gamma": 1.0}
    odd = plan_export(ws, ws.parse_mixture("alpha=1,beta=1,gamma=1"), target_tokens=1000)
    assert sum(s.tokens for s in odd.sources) == 1000  # whole tokens that add up to the target


def test_olmo_core_caps_and_fractions(ws_path: Path) -> None:
    ws = load_workspace(ws_path)
    ws.budget = Budget.from_dict({"datasets": {"alpha": {"max_epochs": 0.5}, "beta": {"max_epochs": 3}}})
    plan = plan_export(ws, ws.parse_mixture("alpha=0.05,beta=0.45,gamma=0.5"), target_tokens=TARGET)
    sources = yaml.safe_load(render(plan, "olmo-core", global_batch_size=512))["source_mixture_config"][
        "source_list"]["sources"]
    by = {s["source_name"]: s for s in sources}
    assert (by["alpha"]["max_repetition_ratio"], by["alpha"]["max_source_fraction"]) == (1.0, 0.5)
    assert (by["beta"]["max_repetition_ratio"], by["beta"]["max_source_fraction"]) == (3.0, 1.0)
    assert by["gamma"]["max_repetition_ratio"] == 4.0  # the budget states none: the default cap, 4 epochs
    ws.budget = Budget.from_dict({"datasets": {"gamma": {"max_epochs": "none"}}})
    plan = plan_export(ws, ws.parse_mixture("alpha=0.05,beta=0.45,gamma=0.5"), target_tokens=TARGET)
    sources = yaml.safe_load(render(plan, "olmo-core", global_batch_size=512))["source_mixture_config"][
        "source_list"]["sources"]
    by = {s["source_name"]: s for s in sources}
    assert by["gamma"]["max_repetition_ratio"] == 1.0  # no cap: the repetition this mixture needs (3000 / 3000)
    # OLMo-core's own rule holds: int(available x fraction x repetition) >= int(requested x ratio)
    for s in plan.sources:
        src = by[s.name]
        assert int(s.available * src["max_source_fraction"] * src["max_repetition_ratio"]) >= int(TARGET * s.weight)


def test_with_the_frameworks_own_code_where_installed(ws_path: Path) -> None:
    utils = pytest.importorskip("megatron.core.datasets.utils", reason="megatron-core is not installed; "
                                "`pip install megatron-core==0.16.1` installs beside our pins")
    ws = load_workspace(ws_path)
    plan = plan_export(ws, ws.parse_mixture(MIX), target_tokens=TARGET)
    data = json.loads(render(plan, "megatron"))
    for split in ("train", "valid", "test"):
        prefixes, weights = utils.get_blend_from_list(data[split])
        assert len(prefixes) == 3 and sum(weights) == pytest.approx(1.0, abs=1e-12)
    prefixes, weights = utils.get_blend_from_list(data["_demix"]["data_path"].split())  # the --data-path list
    assert dict(zip(prefixes, weights)) == pytest.approx(
        {source_keys(plan, "megatron")[n]: w for n, w in ws.parse_mixture(MIX).as_dict().items()}, abs=1e-12)


def test_infeasible_requests_fail_with_one_error_line(ws_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.json"
    base = ["export-mixture", "--workspace", str(ws_path), "--format", "demix", "--out", str(out)]
    # 2 x 1000 + 2 x 2000 + 1 x 3000 = 9000 tokens at the caps
    assert main([*base, "--mixture", "alpha=0.2,beta=0.3,gamma=0.5", "--target-tokens", "12000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # needs / caps: alpha 2.4 / 2, beta 1.8 / 2, gamma 2 / 1: gamma limits this mixture (not the largest dataset)
    assert err == ["error: dataset 'gamma' would be repeated 2 times (cap 1 epoch): this mixture asks 0.5 x 12,000 = "
                   "6,000 tokens of its 3,000, over by 3,000 tokens (past their caps too: alpha); no mixture fits "
                   "12,000 target tokens at these caps (they allow 9,000), so lower the target tokens to 6,000 for "
                   "this mixture"]
    # a reachable target, but this mixture overdraws alpha: 0.5 x 6000 = 3000 > 2 x 1000
    assert main([*base, "--mixture", "alpha=0.5,beta=0.3,gamma=0.2", "--target-tokens", "6000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: dataset 'alpha' would be repeated 3 times (cap 2 epochs): this mixture asks 0.5 x 6,000 = "
                   "3,000 tokens of its 1,000, over by 1,000 tokens; lower alpha's weight to 0.3333 or the target "
                   "tokens to 4,000, or allow alpha 3 epochs"]
    assert main([*base, "--mixture", "alpha=0.2,beta=0.3,gamma=0.5"]) == 2  # no target anywhere
    assert "--target-tokens" in capsys.readouterr().err
    olmo = ["export-mixture", "--workspace", str(ws_path), "--format", "olmo-core", "--out", str(out),
            "--mixture", "alpha=0.2,beta=0.3,gamma=0.5", "--target-tokens", "6000"]
    assert main(olmo) == 2 and "--global-batch-size" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".x.json*"))  # nothing half-written


def test_budget_command_sets_measures_and_refuses_infeasible(ws_path: Path, capsys) -> None:
    root = ["budget", "--workspace", str(ws_path)]
    assert main([*root, "--target-tokens", "3000", "--max-epochs", "alpha=1", "--max-weight", "gamma=0.6"]) == 0
    shown = capsys.readouterr().out
    assert "3,000 target tokens" in shown and "alpha" in shown
    ws = load_workspace(ws_path)
    assert ws.budget.target_tokens == 3000 and ws.budget.epochs_of("alpha") == 1 and ws.budget.epochs_of("beta") == 2
    assert main([*root, "--json"]) == 0
    hi = json.loads(capsys.readouterr().out)["bounds"]["hi"]
    assert hi == pytest.approx([1 / 3, 1.0, 0.6])  # alpha 1000 / 3000; beta 2 x 2000 / 3000 > 1; gamma max 0.6
    before = (ws_path / "demix.yaml").read_text()
    assert main([*root, "--target-tokens", "90000"]) == 2  # beyond every cap: refused, the manifest unchanged
    assert capsys.readouterr().err.count("\n") == 1
    assert (ws_path / "demix.yaml").read_text() == before
    assert main([*root, "--available", "alpha=5000", "--max-epochs", "3"]) == 0
    ws = load_workspace(ws_path)
    assert ws.budget.max_epochs == 3 and ws.budget.entry("alpha").available_tokens == 5000
    assert main([*root, "--measure"]) == 2  # the tiny workspace has no tokenizer to measure with
    assert "declare" in capsys.readouterr().err
    assert main([*root, "--clear"]) == 0 and load_workspace(ws_path).budget.empty


def test_export_names_mixture_in_workspace_order(ws_path: Path) -> None:
    ws = load_workspace(ws_path)
    mix = Mixture.from_weights(("gamma", "alpha", "beta"), [0.5, 0.2, 0.3])
    plan = plan_export(ws, mix, target_tokens=TARGET)
    assert [s.name for s in plan.sources] == ["alpha", "beta", "gamma"]
    assert [s.weight for s in plan.sources] == pytest.approx([0.2, 0.3, 0.5])


def test_default_epoch_cap_is_stated_and_enforced_and_lifted_with_a_warning(tiny_workspace: Path, tmp_path: Path,
                                                                             capsys) -> None:
    root = str(tiny_workspace)  # no budget: every dataset gets the default cap, 4 epochs
    out = tmp_path / "m.demix.json"
    base = ["export-mixture", "--workspace", root, "--format", "demix", "--out", str(out), "--force",
            "--mixture", "alpha=0.5,beta=0.25,gamma=0.25"]
    # 0.5 x 10,000 = 5,000 of alpha's 1,000 tokens: 5 epochs, past the default 4
    assert main([*base, "--target-tokens", "10000"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: dataset 'alpha' would be repeated 5 times (cap 4 epochs): this mixture asks 0.5 x 10,000 = 5,000 "
        "tokens of its 1,000, over by 1,000 tokens; lower alpha's weight to 0.4 or the target tokens to 8,000, or "
        "allow alpha 5 epochs"]
    assert not out.exists()
    assert main([*base, "--target-tokens", "8000"]) == 0  # exactly 4 epochs of alpha: allowed, no warning
    shown = capsys.readouterr()
    assert shown.err == "" and "alpha        0.5000           4,000 tokens  4 epochs (default cap 4)" in shown.out
    data = json.loads(out.read_text())["datasets"]
    assert {n: (d["max_epochs"], d["max_epochs_default"]) for n, d in data.items()} == dict.fromkeys(
        ("alpha", "beta", "gamma"), (4.0, True))
    # raised for this export only (the manifest keeps no budget): written, with one warning line on stderr
    assert main([*base, "--target-tokens", "10000", "--max-epochs", "alpha=6"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: this mixture repeats alpha 5 times (cap 6), above 4 epochs: repeated data beyond ~4 "
                   "epochs loses most of its value (Muennighoff et al. 2023); lower the target tokens or those "
                   "weights"]
    assert load_workspace(tiny_workspace).budget.empty
    assert main([*base, "--target-tokens", "100000", "--max-epochs", "none"]) == 0  # unlimited: 50, 12.5, 8.33
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "alpha 50 times (no cap), beta 12.5 times (no cap), gamma 8.33 times (no cap)" in err[0]
    assert json.loads(out.read_text())["datasets"]["alpha"]["max_epochs"] is None
    text = tmp_path / "m.yaml"
    assert main(["export-mixture", "--workspace", root, "--format", "streaming", "--out", str(text),
                 "--mixture", "alpha=0.5,beta=0.25,gamma=0.25", "--target-tokens", "8000"]) == 0
    header = [line for line in text.read_text().splitlines() if line.startswith("#")]
    assert "# alpha: weight 0.5, 4,000 of 1,000 tokens (4 epochs, default cap 4)" in header
    assert header[-1] == ("# 4 epochs is the default cap where the budget states none: repeating data beyond ~4 "
                          "epochs loses most of its value (Muennighoff et al. 2023); set one with demix budget "
                          "--max-epochs N (none: unlimited)")
    assert main([*base, "--target-tokens", "8000", "--max-epochs", "many"]) == 2
    assert "none (unlimited)" in capsys.readouterr().err


def test_megatron_export_states_the_caps(ws_path: Path) -> None:
    ws = load_workspace(ws_path)
    ws.budget = Budget.from_dict({"datasets": {"gamma": {"max_epochs": 1}}})  # alpha, beta: the default cap
    plan = plan_export(ws, ws.parse_mixture("alpha=0.25,beta=0.25,gamma=0.5"), target_tokens=TARGET)
    meta = json.loads(render(plan, "megatron"))["_demix"]
    assert meta["max_epochs"] == {"alpha": 4.0, "beta": 4.0, "gamma": 1.0}
    assert meta["max_epochs_default"] == ["alpha", "beta"]
    assert meta["epochs"] == {"alpha": 1.5, "beta": 0.75, "gamma": 1.0}


def test_budget_command_states_the_default_cap_and_none_lifts_it(tiny_workspace: Path, capsys) -> None:
    root = ["budget", "--workspace", str(tiny_workspace)]
    assert main(root) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "epoch caps: alpha 4 (default), beta 4 (default), gamma 4 (default)"
    assert lines[2] == ("  4 epochs is the default cap where the budget states none: repeating data beyond ~4 epochs "
                        "loses most of its value (Muennighoff et al. 2023); set one with --max-epochs N, or "
                        "--max-epochs none for unlimited")
    assert main([*root, "--target-tokens", "10000"]) == 0  # 4 x 1,000 / 10,000 = 0.4; 0.8; 1
    assert "alpha        0.0000 .. 0.4000 (1,000 tokens x 4 epochs = 0.4 of the target)" in capsys.readouterr().out
    assert main([*root, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["bounds"]["hi"] == pytest.approx([0.4, 0.8, 1.0])
    assert (shown["default_max_epochs"], shown["max_epochs_default"]) == (4.0, ["alpha", "beta", "gamma"])
    assert main([*root, "--max-epochs", "none,"]) == 2  # not a number, not none
    capsys.readouterr()
    assert main([*root, "--max-epochs", "none"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "epoch caps: alpha unlimited, beta unlimited, gamma unlimited"
    assert yaml.safe_load((tiny_workspace / "demix.yaml").read_text())["budget"] == {"target_tokens": 10000,
                                                                                     "max_epochs": "none"}
    assert load_workspace(tiny_workspace).budget.epochs_of("alpha") is None
    assert main([*root, "--max-epochs", "beta=2,gamma=none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bounds"]["max_epochs"] == [None, 2.0, None]
