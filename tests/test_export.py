"""Exports reload with transformers, match the in-memory proxy, and reproduce through mergekit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from demix_core.checkpoints import open_checkpoint
from demix_core.errors import OutputExistsError
from demix_core.export import MERGEKIT_FILE, RECIPE_FILE, export_merged
from demix_core.merge import ResidentComponents
from demix_core.mixture import Mixture


@pytest.fixture(scope="module")
def resident(tiny_family: dict[str, Path]) -> ResidentComponents:
    comps = [open_checkpoint(tiny_family[n]) for n in ("alpha", "beta", "gamma")]
    return ResidentComponents(comps, base=open_checkpoint(tiny_family["base"]), device="cpu")


@pytest.mark.parametrize("method", ["linear", "ties"])
def test_export_reloads_with_same_logits(tmp_path: Path, resident: ResidentComponents, method: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    mix = Mixture.from_weights(resident.names, (0.5, 0.3, 0.2))
    out = export_merged(resident, mix, tmp_path / "merged", method=method)
    proxy = resident.new_proxy()
    resident.merge_into(proxy, mix, method=method)
    model = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    ids = tok("the quick brown fox", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, proxy.model(ids).logits, atol=1e-6)
    rec = json.loads((out / RECIPE_FILE).read_text())
    assert rec["method"] == method
    assert rec["mixture"] == pytest.approx({"alpha": 0.5, "beta": 0.3, "gamma": 0.2})
    assert [c["name"] for c in rec["components"]] == ["alpha", "beta", "gamma"]
    assert all(len(c["sha256"]) == 64 and Path(c["path"]).is_dir() for c in rec["components"])
    assert rec["base"]["path"].endswith("base")
    assert not list(tmp_path.glob(".merged.tmp-*"))


def test_exported_mergekit_yaml_reproduces_weights(tmp_path: Path, resident: ResidentComponents) -> None:
    pytest.importorskip("mergekit")
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge
    from safetensors.torch import load_file

    mix = Mixture.from_weights(resident.names, (0.25, 0.25, 0.5))
    out = export_merged(resident, mix, tmp_path / "merged")
    cfg = MergeConfiguration.model_validate(yaml.safe_load((out / MERGEKIT_FILE).read_text()))
    run_merge(cfg, str(tmp_path / "mk"), options=MergeOptions(copy_tokenizer=False, quiet=True))
    ours, theirs = load_file(str(out / "model.safetensors")), load_file(str(tmp_path / "mk" / "model.safetensors"))
    for name, t in ours.items():
        assert torch.allclose(t, theirs[name], atol=1e-6), name


def test_existing_output_is_refused_and_untouched(tmp_path: Path, resident: ResidentComponents) -> None:
    out = tmp_path / "merged"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    mix = Mixture.from_weights(resident.names, (1, 1, 1))
    with pytest.raises(OutputExistsError, match="--force"):
        export_merged(resident, mix, out)
    assert (out / "keep.txt").read_text() == "mine"
    export_merged(resident, mix, out, force=True)
    assert not (out / "keep.txt").exists() and (out / "config.json").exists()


def test_bad_method_parameters_leave_nothing(tmp_path: Path, resident: ResidentComponents) -> None:
    mix = Mixture.from_weights(resident.names, (1, 1, 1))
    with pytest.raises(Exception, match="needs a base|no parameter"):
        export_merged(resident, mix, tmp_path / "bad", method="ties", params={"bogus": 1.0})
    assert list(tmp_path.iterdir()) == []
